-- Stores a challenge, voiding any previous one; its attempt count starts at 0.
-- KEYS[1]: the challenge (a hash). ARGV: id, mac, expires_us, ttl_ms.
-- A ttl of 0 (already expired) only voids the previous challenge.
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'mac', ARGV[2], 'exp', ARGV[3], 'n', 0)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
