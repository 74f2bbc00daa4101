-- Counts one verification attempt.
-- KEYS[1]: the challenge. ARGV: max_attempts, now_us.
-- Returns {0} when there is no live challenge (an expired or exhausted one is
-- deleted), else {1, id, mac, expires_us, remaining}; the attempt that reaches
-- max_attempts deletes (burns) the challenge in the same step.
local h = redis.call('HMGET', KEYS[1], 'id', 'mac', 'exp', 'n')
if not h[1] then
  return {0}
end
local exp = tonumber(h[3])
local n = tonumber(h[4])
if (not h[2]) or exp == nil or n == nil then
  return redis.error_reply('CORRUPT challenge')
end
local max = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if exp <= now or n >= max then
  redis.call('DEL', KEYS[1])
  return {0}
end
n = n + 1
local left = max - n
if left == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'n', n)
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((exp - now) / 1000)))
end
return {1, h[1], h[2], h[3], left}
