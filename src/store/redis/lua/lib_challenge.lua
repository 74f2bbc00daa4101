-- challenge_is(key, id): whether the challenge (a hash: id, mac, exp, n, ch)
-- is still the one with this id.
local function challenge_is(key, id)
  return redis.call('HGET', key, 'id') == id
end

