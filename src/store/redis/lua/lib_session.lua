-- Session families and the subject indexes.
--
-- A family is a hash: cur, data (after a rotation also prev, prev_at,
-- spent), and its times in µs on the caller's clock, as decimals: c created,
-- u last used, e deadline, a absolute deadline. Its revoked marker is the
-- family key followed by ':x'. The deadlines decide; PEXPIRE only reclaims.
-- A subject index is a hash: family id -> 'created_us:absolute_us'.
-- Functions that can meet unreadable data return an error reply (a table
-- with `err`), which the script returns as it is.

-- The keys of family `sid` from the family key prefix (`Keys::family`).
local function family_keys(prefix, sid)
  local fam = prefix .. sid .. '}'
  return fam, fam .. ':x'
end

-- session_start(fam, marker, a): (re)starts a family with its first
-- refresh token, unless its id is revoked (revoked while being created: then
-- it only deletes). ARGV[a..a+5]: refresh_hash, data, now_us, until_us,
-- absolute_us, reclaim_ms.
local function session_start(fam, marker, a)
  redis.call('DEL', fam)
  -- GET, not EXISTS: a script's commands count as the server's, and an
  -- EXISTS is what a revocation check sends (tests tell them apart).
  if redis.call('GET', marker) then
    return
  end
  local now = ARGV[a + 2]
  redis.call('HSET', fam, 'cur', ARGV[a], 'data', ARGV[a + 1], 'c', now, 'u', now,
    'e', ARGV[a + 3], 'a', ARGV[a + 4])
  redis.call('PEXPIRE', fam, ARGV[a + 5])
end

-- The entries {sid, created_us, absolute_us} of a subject index.
local function index_read(idx)
  local flat = redis.call('HGETALL', idx)
  local out = {}
  for i = 1, #flat, 2 do
    local c, abs = string.match(flat[i + 1], '^(%d+):(%d+)$')
    if not c then
      return redis.error_reply('CORRUPT session index')
    end
    out[#out + 1] = {flat[i], tonumber(c), tonumber(abs)}
  end
  return out
end

-- index_add(idx, a): drops the entries past their absolute deadline, then
-- indexes a family created now unless `max` entries remain (returns 0, and
-- adds nothing); PEXPIRE = the longest absolute deadline + slack. Returns 1
-- when it added. ARGV[a..a+4]: sid, now_us, absolute_us, max, slack_ms.
local function index_add(idx, a)
  local entries = index_read(idx)
  if entries.err then
    return entries
  end
  local now, longest = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local n = 0
  for _, e in ipairs(entries) do
    if e[3] <= now then
      redis.call('HDEL', idx, e[1])
    else
      n = n + 1
      longest = math.max(longest, e[3])
    end
  end
  if n >= tonumber(ARGV[a + 3]) then
    return 0
  end
  redis.call('HSET', idx, ARGV[a], ARGV[a + 1] .. ':' .. ARGV[a + 2])
  local ms = math.ceil((longest - now) / 1000) + tonumber(ARGV[a + 4])
  redis.call('PEXPIRE', idx, string.format('%.0f', ms))
  return 1
end

-- family_state(fam, marker, now): {1, c, u} live at now; {-1} dead (past
-- its deadline, or gone with its id revoked); {0} missing.
local function family_state(fam, marker, now)
  local f = redis.call('HMGET', fam, 'c', 'u', 'e')
  if not f[1] then
    if redis.call('GET', marker) then
      return {-1}
    end
    return {0}
  end
  local e = tonumber(f[3])
  if e == nil or tonumber(f[1]) == nil or tonumber(f[2]) == nil then
    return redis.error_reply('CORRUPT session family')
  end
  if e <= now then
    return {-1}
  end
  return {1, f[1], f[2]}
end

-- Whether index entry e (index_read) of a family in `state` may be pruned
-- at now: as `FamilyState::stale_entry` in Rust.
local function entry_stale(e, state, now, pending)
  return e[3] <= now or state == -1 or (state == 0 and e[2] + pending <= now)
end

-- family_end(fam, marker, ttl_ms): deletes the family and revokes its id
-- for ttl_ms; a revocation is never shortened.
local function family_end(fam, marker, ttl_ms)
  redis.call('DEL', fam)
  local ttl = tonumber(ttl_ms)
  if ttl > 0 and redis.call('PTTL', marker) < ttl then
    redis.call('SET', marker, '1', 'PX', ttl_ms)
  end
end
