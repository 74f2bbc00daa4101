-- Reads counter groups of one tenant (counters_add.lua has the layout).
-- KEYS: the groups. ARGV: now_us.
-- Returns per key an array {field, value, ...}, empty when the group is
-- missing or expired.
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local h = redis.call('HGETALL', key)
  local fields, e = {}, nil
  for j = 1, #h, 2 do
    if h[j] == ' exp' then
      e = tonumber(h[j + 1])
      if e == nil then
        return redis.error_reply('CORRUPT counter group deadline')
      end
    else
      fields[#fields + 1] = h[j]
      fields[#fields + 1] = h[j + 1]
    end
  end
  if #h > 0 and e == nil then
    return redis.error_reply('CORRUPT counter group without deadline')
  end
  if e == nil or e <= now then
    fields = {}
  end
  out[i] = fields
end
return out
