-- session_start(key, refresh_hash, data, ttl_ms): (re)starts a session family
-- (a hash: cur, data) with its first refresh token; a ttl of 0 only deletes.
local function session_start(key, refresh_hash, data, ttl_ms)
  redis.call('DEL', key)
  local ttl = tonumber(ttl_ms)
  if ttl > 0 then
    redis.call('HSET', key, 'cur', refresh_hash, 'data', data)
    redis.call('PEXPIRE', key, ttl)
  end
end

