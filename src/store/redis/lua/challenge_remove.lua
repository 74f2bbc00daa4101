-- Deletes the challenge if it is still the one with this id.
-- KEYS[1]: the challenge. ARGV: id. Returns 1 when this call deleted it.
if challenge_take(KEYS[1], ARGV[1]) then
  return 1
end
return 0
