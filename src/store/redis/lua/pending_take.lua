-- Takes a pending signup: deletes it and returns its data if it has not
-- expired, else nil. A script runs alone, so exactly one caller gets it.
-- KEYS[1]: the pending signup (pending_put.lua). ARGV: now_us.
local h = redis.call('HMGET', KEYS[1], 'd', 'exp')
if not (h[1] or h[2]) then
  return false
end
local exp = tonumber(h[2])
if not h[1] or exp == nil then
  return redis.error_reply('CORRUPT pending signup')
end
redis.call('DEL', KEYS[1])
if exp > tonumber(ARGV[1]) then
  return h[1]
end
return false
