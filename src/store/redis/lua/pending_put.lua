-- Keeps a pending signup, replacing what was there.
-- KEYS[1]: the pending signup (a hash: d data, exp deadline in µs on the
-- caller's clock). ARGV: data, exp_us, ttl_ms (0: only removes).
-- Reads the key first, so one of the wrong type fails (WRONGTYPE) rather
-- than being overwritten.
redis.call('HGET', KEYS[1], 'exp')
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], 'd', ARGV[1], 'exp', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
