-- Deletes the challenge if it is still the one with this id.
-- KEYS[1]: the challenge. ARGV: id. Returns 1 when this call deleted it.
if challenge_is(KEYS[1], ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
