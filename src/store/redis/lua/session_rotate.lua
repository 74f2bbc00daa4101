-- Presents a refresh token (by hash) with reuse detection.
-- KEYS[1]: the family (lib_session.lua). KEYS[2]: its revoked marker.
-- ARGV: presented, successor, grace_us, now_us, idle_us, absolute_us,
-- spent_bytes_kept, slack_ms, reuse_ttl_ms.
-- Returns {1, data} rotated (last used now, deadline min(now + idle,
-- created + absolute, the absolute deadline of its creation): as
-- `SessionLifetime::refreshed` in Rust), {2, data} grace, {3} reused (family
-- deleted, its id revoked for reuse_ttl), {0} invalid (unknown, past its
-- deadline, or a token of no rotation).
local f = redis.call('HMGET', KEYS[1], 'cur', 'data', 'prev', 'prev_at', 'spent', 'c', 'e', 'a')
local cur, data, prev, prev_at, spent = f[1], f[2], f[3], f[4], f[5]
if not cur then
  return {0}
end
local created, deadline, absolute = tonumber(f[6]), tonumber(f[7]), tonumber(f[8])
if not data or created == nil or deadline == nil or absolute == nil then
  return redis.error_reply('CORRUPT session family')
end
local presented, successor = ARGV[1], ARGV[2]
local grace = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local keep = tonumber(ARGV[7])
if deadline <= now then
  return {0}
end

if cur == presented then
  local until_us = math.min(now + tonumber(ARGV[5]), created + tonumber(ARGV[6]), absolute)
  if until_us <= now then
    -- A lowered absolute lifetime ended it already.
    redis.call('DEL', KEYS[1])
    return {0}
  end
  spent = spent or ''
  if prev then
    spent = spent .. prev
    if #spent > keep then
      spent = string.sub(spent, #spent - keep + 1)
    end
  end
  redis.call('HSET', KEYS[1], 'cur', successor, 'prev', presented, 'prev_at', ARGV[4],
    'spent', spent, 'u', ARGV[4], 'e', string.format('%.0f', until_us))
  local ms = math.ceil((until_us - now) / 1000) + tonumber(ARGV[8])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ms))
  return {1, data}
end

local reused = false
if prev and prev == presented then
  local at = tonumber(prev_at)
  if at == nil then
    return redis.error_reply('CORRUPT session family')
  end
  if now - at <= grace and cur == successor then
    return {2, data}
  end
  reused = true
elseif spent then
  for i = 1, #spent, 32 do
    if string.sub(spent, i, i + 31) == presented then
      reused = true
      break
    end
  end
end
if reused then
  family_end(KEYS[1], KEYS[2], ARGV[9])
  return {3}
end
return {0}
