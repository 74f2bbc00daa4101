-- Counts one request against several GCRA limits, all or nothing: the
-- arithmetic of `crate::quota::gcra` in microseconds, over every key.
-- KEYS[i]: the rate cells (strings holding TATs), all in one hash slot.
-- ARGV[1]: now_us; then for KEYS[i]: ARGV[2i] = emission interval t_us,
-- ARGV[2i+1] = tau_us (= t * burst).
-- Returns {allowed (1|0), then per key the TAT stored before this call or ""}.
-- Every cell is read and decided before anything is written: a refused
-- request, or one that meets an unreadable cell, writes nothing. A key named
-- twice sees its earlier limit's count. An allowed request stores each new
-- TAT with PEXPIRE = reset_after (rounded up).
local now = tonumber(ARGV[1])
local out = {1}
local tat_of = {}
local wait_of = {}
for i, key in ipairs(KEYS) do
  local stored = redis.call('GET', key)
  local tat = tat_of[key]
  if stored then
    local s = tonumber(stored)
    if s == nil then
      return redis.error_reply('CORRUPT rate cell')
    end
    tat = tat or s
  else
    stored = ''
  end
  out[i + 1] = stored
  if tat == nil or tat < now then
    tat = now
  end
  local new_tat = tat + tonumber(ARGV[2 * i])
  local wait = new_tat - now
  if wait > tonumber(ARGV[2 * i + 1]) then
    out[1] = 0
  else
    tat_of[key] = new_tat
    wait_of[key] = wait
  end
end
if out[1] == 1 then
  for key, new_tat in pairs(tat_of) do
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(wait_of[key] / 1000)))
  end
end
return out
