-- redplate stampede lock: fill. Writes a freshly loaded value only if the
-- placeholder this loader put in the key is still there. A writer that
-- invalidated the key meanwhile (DEL) or a lock that expired and was taken
-- by another loader makes the fill a no-op, so a stale load is never cached.
-- KEYS[1] the cache key
-- ARGV[1] this loader's placeholder (`__redplate_lock__:<token>`)
-- ARGV[2] the value
-- ARGV[3] the TTL in milliseconds, jitter applied (0: no expiry)
-- Returns 1 when the value was written, 0 otherwise.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = tonumber(ARGV[3]) or 0
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
