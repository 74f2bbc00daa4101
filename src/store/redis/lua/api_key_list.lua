-- Lists live API-key records as a flat {id, record, id, record, ...} array,
-- dropping index entries whose record has expired.
-- KEYS[1]: the index. ARGV: the record key prefix (same hash tag, same slot).
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('GET', ARGV[1] .. id)
  if record then
    out[#out + 1] = id
    out[#out + 1] = record
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
