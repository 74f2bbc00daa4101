-- Counts one request against several GCRA limits, all or nothing.
-- KEYS: the rate cells; ARGV: the limits (lib_rate.lua).
-- Returns {allowed (1|0), then per key the TAT stored before this call or ""}.
local out, writes = rate_decide(#KEYS)
if writes and out[1] == 1 then
  rate_commit(writes)
end
return out
