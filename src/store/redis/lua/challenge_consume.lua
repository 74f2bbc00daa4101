-- Consumes a challenge into a session, in one step: when the challenge is
-- still the one with this id, deletes it, indexes the session under its
-- subject and starts the family.
-- KEYS[1]: the challenge. KEYS[2]: the subject index. KEYS[3]: the family.
-- KEYS[4]: its marker (a single node only: on a cluster these live in
-- different slots and the store runs the steps).
-- ARGV[1]: the challenge id; ARGV[2..6]: index_add's; ARGV[7..12]:
-- session_start's (lib_session.lua).
-- Returns 1 when this call consumed it, 0 when it is not (or no longer)
-- that challenge, 2 when the subject's index is full (nothing changed).
if not challenge_is(KEYS[1], ARGV[1]) then
  return 0
end
local added = index_add(KEYS[2], 2)
if added ~= 1 then
  if added == 0 then
    return 2
  end
  return added
end
redis.call('DEL', KEYS[1])
session_start(KEYS[3], KEYS[4], 7)
return 1
