-- Creates a tenant record at version 1 and indexes its id, unless the
-- tenant exists (then nothing changes).
-- KEYS[1]: the record (a hash: v version, d data). KEYS[2]: the index (a set
-- of ids, same slot). ARGV: id, data. Returns 1 when created, else 0.
-- Both keys are read before anything is written, so a key of the wrong type
-- fails the call (WRONGTYPE) with nothing written.
redis.call('SISMEMBER', KEYS[2], ARGV[1])
if redis.call('HLEN', KEYS[1]) > 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
