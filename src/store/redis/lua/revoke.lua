-- Revokes an id (session family or token jti): sets the revoked marker for
-- ttl and deletes the family of that id.
-- KEYS[1]: the family. KEYS[2]: the revoked marker. ARGV: ttl_ms.
redis.call('DEL', KEYS[1])
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
else
  redis.call('DEL', KEYS[2])
end
return 1
