-- Replaces a tenant record if its version is the expected one.
-- KEYS[1]: the record (a hash: v version, d data).
-- ARGV: expected version, next version (both decimal), data.
-- Returns 1 when replaced, 0 when the tenant is missing or its version
-- differs (nothing changes).
local v = redis.call('HGET', KEYS[1], 'v')
if not v then
  return 0
end
if not string.find(v, '^%d+$') then
  return redis.error_reply('CORRUPT tenant version')
end
-- Compared as text: exact for every u64, where a Lua number is not.
if v ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
return 1
