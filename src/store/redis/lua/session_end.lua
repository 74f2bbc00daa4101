-- Ends a family (for the revocations on a cluster): deletes it and revokes
-- its id, when it is live at now or when `only_live` is 0.
-- KEYS[1]: the family. KEYS[2]: its marker. ARGV: now_us, ttl_ms, only_live.
-- Returns the family's state before (family_state's first element).
local s = family_state(KEYS[1], KEYS[2], tonumber(ARGV[1]))
if s.err then
  return s
end
if s[1] == 1 or ARGV[3] == '0' then
  family_end(KEYS[1], KEYS[2], ARGV[2])
end
return s[1]
