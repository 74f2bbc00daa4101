-- Lists tenant records as a flat {id, version, data, ...} array, dropping
-- index entries whose record is gone.
-- KEYS[1]: the index. ARGV: the record key prefix (same hash tag, same slot).
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HMGET', ARGV[1] .. id, 'v', 'd')
  if h[1] or h[2] then
    -- A half record comes back with a nil (false) part: Rust calls it corrupt.
    out[#out + 1] = id
    out[#out + 1] = h[1]
    out[#out + 1] = h[2]
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
