-- Counts one verification against its limits, all or nothing, and when all
-- allow counts one attempt against the challenge.
-- KEYS[1..n]: the rate cells; KEYS[n+1]: the challenge (same slot).
-- ARGV: the limits (lib_rate.lua), then max_attempts.
-- Returns the rate reply head (lib_rate.lua); when allowed, followed by 0
-- when there is no live challenge (an expired or exhausted one is deleted),
-- else by id, mac, expires_us, remaining, channel. The attempt that reaches
-- max_attempts leaves the challenge exhausted: it takes no further attempt,
-- but can still be consumed.
local n = #KEYS - 1
local key = KEYS[n + 1]
-- The challenge is read and checked first (what Rust will parse: a 16-byte
-- id, a 32-byte MAC, numbers), so a corrupt one fails before anything counts.
local h = redis.call('HMGET', key, 'id', 'mac', 'exp', 'n', 'ch')
local exp, tries = tonumber(h[3]), tonumber(h[4])
if h[1] and (#h[1] ~= 16 or (not h[2]) or #h[2] ~= 32 or exp == nil or tries == nil or not h[5]) then
  return redis.error_reply('CORRUPT challenge')
end
local out, writes = rate_decide(n)
if not writes or out[1] == 0 then
  return out
end
rate_commit(writes)
local max, now = tonumber(ARGV[2 * n + 2]), tonumber(ARGV[1])
if not h[1] then
  out[#out + 1] = 0
  return out
end
if exp <= now or tries >= max then
  redis.call('DEL', key)
  out[#out + 1] = 0
  return out
end
tries = tries + 1
-- The key keeps the TTL its put gave it (the challenge's expiry).
redis.call('HSET', key, 'n', tries)
for _, v in ipairs({1, h[1], h[2], h[3], max - tries, h[5]}) do
  out[#out + 1] = v
end
return out
