-- Revokes one session of a subject, only if it is indexed under the subject
-- and live at now (a single node; a cluster checks the index, runs
-- session_end, then drops the entry).
-- KEYS[1]: the subject index. KEYS[2]: the family. KEYS[3]: its marker.
-- ARGV: sid, now_us, ttl_ms. Returns 1 when it revoked, else 0 (nothing
-- changed).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local s = family_state(KEYS[2], KEYS[3], tonumber(ARGV[2]))
if s.err then
  return s
end
if s[1] ~= 1 then
  return 0
end
family_end(KEYS[2], KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
