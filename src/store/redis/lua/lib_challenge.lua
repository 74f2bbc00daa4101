-- challenge_take(key, id): deletes the challenge (a hash: id, mac, exp, n) if
-- it is still the one with this id; returns whether it did.
local function challenge_take(key, id)
  if redis.call('HGET', key, 'id') == id then
    redis.call('DEL', key)
    return true
  end
  return false
end

