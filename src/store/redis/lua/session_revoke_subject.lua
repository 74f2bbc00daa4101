-- Revokes every session of a subject but one (or all), in one step (a
-- single node; a cluster reads the index, runs session_end per family, then
-- drops the entries). Every indexed id not past its absolute deadline is
-- revoked, whether or not its family is live.
-- KEYS[1]: the subject index. ARGV: family key prefix, now_us, ttl_ms,
-- keep ('' = none), then the kept sid.
-- Returns how many of them were live.
local entries = index_read(KEYS[1])
if entries.err then
  return entries
end
local now = tonumber(ARGV[2])
local keep = ARGV[4] == '1' and ARGV[5] or nil
-- Every family is read first: an unreadable one fails the call before
-- anything is revoked.
local ended = {}
for _, e in ipairs(entries) do
  if e[1] ~= keep then
    local fam, marker = family_keys(ARGV[1], e[1])
    local s = family_state(fam, marker, now)
    if s.err then
      return s
    end
    ended[#ended + 1] = {e, fam, marker, s[1]}
  end
end
local n = 0
for _, x in ipairs(ended) do
  local e = x[1]
  if e[3] > now then
    family_end(x[2], x[3], ARGV[3])
    if x[4] == 1 then
      n = n + 1
    end
  end
  redis.call('HDEL', KEYS[1], e[1])
end
return n
