-- Starts a session family, indexed under its subject, in one step (a single
-- node; on a cluster the store runs session_index_add then session_start).
-- KEYS[1]: the subject index. KEYS[2]: the family. KEYS[3]: its marker.
-- ARGV[1..5]: index_add's; ARGV[6..11]: session_start's (lib_session.lua).
-- Returns 1, or 0 when the subject's index is full (nothing started).
local added = index_add(KEYS[1], 1)
if added ~= 1 then
  return added
end
session_start(KEYS[2], KEYS[3], 6)
return 1
