-- Lists the live sessions of a subject as a flat {sid, c, u, ...} array and
-- prunes its stale index entries (a single node: the families' keys are
-- built from their prefix; a cluster runs session_state per family).
-- KEYS[1]: the subject index. ARGV: family key prefix, now_us, pending_us.
local entries = index_read(KEYS[1])
if entries.err then
  return entries
end
local now, pending = tonumber(ARGV[2]), tonumber(ARGV[3])
local out, stale = {}, {}
for _, e in ipairs(entries) do
  local fam, marker = family_keys(ARGV[1], e[1])
  local s = family_state(fam, marker, now)
  if s.err then
    return s
  end
  if entry_stale(e, s[1], now, pending) then
    stale[#stale + 1] = e[1]
  elseif s[1] == 1 then
    out[#out + 1] = e[1]
    out[#out + 1] = s[2]
    out[#out + 1] = s[3]
  end
end
for _, sid in ipairs(stale) do
  redis.call('HDEL', KEYS[1], sid)
end
return out
