-- Counts one code request against its limits, all or nothing, and when all
-- allow stores the challenge, voiding any previous one; its attempt count
-- starts at 0.
-- KEYS[1..n]: the rate cells; KEYS[n+1]: the challenge (a hash, same slot).
-- ARGV: the limits (lib_rate.lua), then id, mac, expires_us, ttl_ms,
-- channel (its name).
-- A ttl of 0 (already expired) only voids the previous challenge.
-- Returns the rate reply head (lib_rate.lua).
local n = #KEYS - 1
local out, writes = rate_decide(n)
if not writes or out[1] == 0 then
  return out
end
rate_commit(writes)
local key, a = KEYS[n + 1], 2 * n + 2
local ttl = tonumber(ARGV[a + 3])
if ttl > 0 then
  -- Every field is written, so the previous challenge leaves nothing behind.
  redis.call('HSET', key, 'id', ARGV[a], 'mac', ARGV[a + 1], 'exp', ARGV[a + 2], 'n', 0,
    'ch', ARGV[a + 4])
  redis.call('PEXPIRE', key, ttl)
else
  redis.call('DEL', key)
end
return out
