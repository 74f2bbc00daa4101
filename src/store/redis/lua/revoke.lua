-- Revokes an id (session family or token jti): deletes the family of that
-- id and revokes the id for ttl (never shortening a revocation).
-- KEYS[1]: the family. KEYS[2]: the revoked marker. ARGV: ttl_ms.
family_end(KEYS[1], KEYS[2], ARGV[1])
return 1
