-- Inserts or replaces an API-key record and indexes its id.
-- KEYS[1]: the record. KEYS[2]: the index (a set of ids, same slot).
-- ARGV: id, record, ttl_ms ("" = no expiry; "0" = already expired).
local ttl = ARGV[3]
if ttl == '' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif tonumber(ttl) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
