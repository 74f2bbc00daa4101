-- Reads what lies under a family id (for a listing on a cluster).
-- KEYS[1]: the family. KEYS[2]: its marker. ARGV: now_us.
-- Returns family_state's reply (lib_session.lua).
return family_state(KEYS[1], KEYS[2], tonumber(ARGV[1]))
