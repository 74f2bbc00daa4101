-- GCRA over the first n KEYS (the rate cells of one request, all in one
-- hash slot): the arithmetic of `crate::quota::gcra` in microseconds.
-- ARGV[1]: now_us; then for KEYS[i]: ARGV[2i] = emission interval t_us,
-- ARGV[2i+1] = tau_us (= t * burst). A script's own arguments start at
-- ARGV[2n + 2].
--
-- rate_decide(n) reads and decides every cell and writes nothing. It returns
-- the reply head {allowed (1|0), then per key the TAT stored before this
-- call or ""} and the writes to make, or an error reply and nil when a cell
-- is unreadable. A key named twice sees its earlier limit's count.
-- rate_commit(writes) stores each new TAT with PEXPIRE = reset_after
-- (rounded up) plus one second; a script calls it only when every limit
-- allowed, so a refused request writes nothing. The second is slack for the
-- caller's clock, which decides (a stored TAT in the caller's past reads as
-- no TAT), against Redis's, which expires: a caller a little behind Redis
-- must still see a cell it may not yet ignore.
local function rate_decide(n)
  local now = tonumber(ARGV[1])
  local out = {1}
  local tat_of = {}
  local wait_of = {}
  for i = 1, n do
    local key = KEYS[i]
    -- GET, not one MGET for all: MGET reads a key of the wrong type as
    -- missing (and SET would then overwrite it), GET fails on it.
    local stored = redis.call('GET', key)
    local tat = tat_of[key]
    if stored then
      local s = tonumber(stored)
      if s == nil then
        return redis.error_reply('CORRUPT rate cell'), nil
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
  return out, {tat_of, wait_of}
end

local function rate_commit(writes)
  local tat_of, wait_of = writes[1], writes[2]
  for key, new_tat in pairs(tat_of) do
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(wait_of[key] / 1000) + 1000)
  end
end

