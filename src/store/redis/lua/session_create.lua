-- Starts a session family with its first refresh token (by hash).
-- KEYS[1]: the family (a hash). ARGV: refresh_hash, data, ttl_ms.
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'cur', ARGV[1], 'data', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
