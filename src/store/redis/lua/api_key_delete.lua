-- Deletes an API-key record and its index entry.
-- KEYS[1]: the record. KEYS[2]: the index. ARGV: id. Returns 1 if it existed.
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
