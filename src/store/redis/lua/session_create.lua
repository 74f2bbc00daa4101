-- Starts a session family with its first refresh token (by hash).
-- KEYS[1]: the family (a hash). ARGV: refresh_hash, data, ttl_ms.
session_start(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
