-- Writes a session family (after its index entry: the second step of a
-- create on a cluster), unless its id was revoked meanwhile.
-- KEYS[1]: the family. KEYS[2]: its marker. ARGV: session_start's
-- (lib_session.lua).
session_start(KEYS[1], KEYS[2], 1)
return 1
