-- redplate stampede lock: release. Removes the placeholder after a failed
-- load, only if it is still this loader's, so waiting readers retry at once
-- instead of waiting for the lock to expire.
-- KEYS[1] the cache key (or the refresh lock key)
-- ARGV[1] this loader's placeholder
-- Returns 1 when the placeholder was removed, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
