-- Changes counters of one tenant, all at once, if every guard holds.
-- KEYS: the counter groups the call names, each once (hashes in the
-- tenant's slot: a field per counter, and ' exp', the group's deadline in
-- µs on the caller's clock; no counter name holds a space).
-- ARGV: now_us, the number of guards g, then per guard: key index, field,
-- max (clamped to the counter range); then per change: key index, field,
-- delta, until_us (now + its ttl), ttl_ms.
-- Returns {1, guarded values after the changes} when every guard held (its
-- counter below its max) and the changes were made; {0, guarded values as
-- they are} when one failed and nothing changed; {2} when a counter would
-- leave ±(2^53 - 1) (exact in a Lua number) and nothing changed.
-- Every group and counter the call names is read and checked before the
-- first write, so a key of the wrong type (WRONGTYPE) or an unreadable
-- value (CORRUPT) fails the call with nothing written.
local LIMIT = 9007199254740991
local now, g = tonumber(ARGV[1]), tonumber(ARGV[2])

-- Each group's deadline, if it is live; an expired or missing group reads
-- as empty.
local live = {}
for i, key in ipairs(KEYS) do
  local e = redis.call('HGET', key, ' exp')
  if e then
    e = tonumber(e)
    if e == nil then
      return redis.error_reply('CORRUPT counter group deadline')
    end
    if e > now then
      live[i] = e
    end
  elseif redis.call('HLEN', key) > 0 then
    return redis.error_reply('CORRUPT counter group without deadline')
  end
end

-- value[i][field]: the counter as this call sees it.
local value = {}
for i = 1, #KEYS do
  value[i] = {}
end
local function read(i, field)
  if value[i][field] == nil then
    local v = 0
    if live[i] then
      local s = redis.call('HGET', KEYS[i], field)
      if s then
        v = tonumber(s)
        if not string.find(s, '^-?%d+$') or math.abs(v) > LIMIT then
          return false
        end
      end
    end
    value[i][field] = v
  end
  return true
end

local first_change = 3 + 3 * g
local held = true
local out = {1}
for at = 3, first_change - 1, 3 do
  local i, field = tonumber(ARGV[at]), ARGV[at + 1]
  if not read(i, field) then
    return redis.error_reply('CORRUPT counter')
  end
  if value[i][field] >= tonumber(ARGV[at + 2]) then
    held = false
  end
  out[#out + 1] = value[i][field]
end
if not held then
  out[1] = 0
  return out
end

-- The changes, computed before anything is written.
local changed, until_of, ttl_of = {}, {}, {}
for at = first_change, #ARGV, 5 do
  local i, field = tonumber(ARGV[at]), ARGV[at + 1]
  if not read(i, field) then
    return redis.error_reply('CORRUPT counter')
  end
  local v = value[i][field] + tonumber(ARGV[at + 2])
  if math.abs(v) > LIMIT then
    return {2}
  end
  value[i][field] = v
  changed[i] = changed[i] or {}
  changed[i][field] = true
  until_of[i] = math.max(until_of[i] or live[i] or 0, tonumber(ARGV[at + 3]))
  ttl_of[i] = math.max(ttl_of[i] or 0, tonumber(ARGV[at + 4]))
end

for i, fields in pairs(changed) do
  local key = KEYS[i]
  if not live[i] then
    -- Expired: its old counters go, the group starts afresh.
    redis.call('DEL', key)
  end
  local args = {' exp', string.format('%.0f', until_of[i])}
  for field in pairs(fields) do
    args[#args + 1] = field
    args[#args + 1] = string.format('%.0f', value[i][field])
  end
  redis.call('HSET', key, unpack(args))
  -- The key's real TTL: the longest ttl of its changes, never shortened.
  redis.call('PEXPIRE', key, math.max(redis.call('PTTL', key), ttl_of[i]))
end

local n = 1
for at = 3, first_change - 1, 3 do
  n = n + 1
  out[n] = value[tonumber(ARGV[at])][ARGV[at + 1]]
end
return out
