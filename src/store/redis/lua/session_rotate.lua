-- Presents a refresh token (by hash) with reuse detection.
-- KEYS[1]: the family (hash: cur, data, prev, prev_at, spent).
-- KEYS[2]: the family's revoked marker.
-- ARGV: presented, successor, grace_us, ttl_ms, now_us, spent_bytes_kept.
-- Returns {1, data} rotated, {2, data} grace, {3} reused (family deleted and
-- revoked marker set for ttl), {0} invalid.
local f = redis.call('HMGET', KEYS[1], 'cur', 'data', 'prev', 'prev_at', 'spent')
local cur, data, prev, prev_at, spent = f[1], f[2], f[3], f[4], f[5]
if not cur then
  return {0}
end
if not data then
  return redis.error_reply('CORRUPT session family')
end
local presented, successor = ARGV[1], ARGV[2]
local grace = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])

local function reused()
  redis.call('DEL', KEYS[1])
  if ttl > 0 then
    redis.call('SET', KEYS[2], '1', 'PX', ttl)
  else
    redis.call('DEL', KEYS[2])
  end
  return {3}
end

if cur == presented then
  spent = spent or ''
  if prev then
    spent = spent .. prev
    if #spent > keep then
      spent = string.sub(spent, #spent - keep + 1)
    end
  end
  if ttl > 0 then
    redis.call('HSET', KEYS[1], 'cur', successor, 'prev', presented, 'prev_at', ARGV[5], 'spent', spent)
    redis.call('PEXPIRE', KEYS[1], ttl)
  else
    redis.call('DEL', KEYS[1])
  end
  return {1, data}
end

if prev and prev == presented then
  local at = tonumber(prev_at)
  if at == nil then
    return redis.error_reply('CORRUPT session family')
  end
  if now - at <= grace and cur == successor then
    return {2, data}
  end
  return reused()
end

if spent then
  for i = 1, #spent, 32 do
    if string.sub(spent, i, i + 31) == presented then
      return reused()
    end
  end
end
return {0}
