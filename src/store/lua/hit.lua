-- One GCRA step, the arithmetic of `crate::quota::gcra` in microseconds.
-- KEYS[1]: the rate cell (a string holding the TAT).
-- ARGV: now_us, emission interval t_us, tau_us (= t * burst).
-- Returns {allowed (1|0), stored TAT or ""}. A refused request writes nothing;
-- an allowed one stores the new TAT with PEXPIRE = reset_after (rounded up).
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  local s = tonumber(stored)
  if s == nil then
    return redis.error_reply('CORRUPT rate cell')
  end
  if s > now then
    tat = s
  end
else
  stored = ''
end
local new_tat = tat + t
local wait = new_tat - now
if wait > tau then
  return {0, stored}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil(wait / 1000)))
return {1, stored}
