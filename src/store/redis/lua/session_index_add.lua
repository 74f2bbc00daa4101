-- Indexes a family under its subject: the first step of a create on a
-- cluster, before session_start writes the family.
-- KEYS[1]: the subject index. ARGV: index_add's (lib_session.lua).
-- Returns 1, or 0 when the index is full.
return index_add(KEYS[1], 1)
