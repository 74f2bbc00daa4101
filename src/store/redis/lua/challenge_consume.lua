-- Consumes a challenge into a session, in one step: when the challenge is
-- still the one with this id, deletes it and starts the session family.
-- KEYS[1]: the challenge. KEYS[2]: the family (a single node only: on a
-- cluster the two live in different slots and the store runs the steps).
-- ARGV: id, refresh_hash, data, ttl_ms. Returns 1 when this call consumed it.
if challenge_take(KEYS[1], ARGV[1]) then
  session_start(KEYS[2], ARGV[2], ARGV[3], ARGV[4])
  return 1
end
return 0
