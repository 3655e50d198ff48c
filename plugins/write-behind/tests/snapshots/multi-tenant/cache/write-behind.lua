-- redplate write-behind queue (Redis 7.0 or later): a durable queue in a
-- Redis Stream with a consumer group. Entries are acknowledged only after the
-- backing store committed them, entries of dead workers are reclaimed, writes
-- of one key are coalesced to the newest, and an entry delivered too often
-- goes to a dead-letter stream instead of being dropped.
--
-- One script, one operation per call:
--   EVALSHA <sha> 3 <stream> <latest> <dead> <operation> <arguments...>
-- KEYS[1] the queue stream
-- KEYS[2] a hash: data key -> id of its newest queued entry (coalescing)
-- KEYS[3] the dead-letter stream
-- The three keys share one hash tag, so they live in one cluster slot.
--
-- Never trim the queue with MAXLEN/MINID: that drops entries the store has
-- not seen. Entries leave the stream only through `ack`, coalescing, or the
-- dead-letter stream.

local stream, latest, dead = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]

local function fields(entry)
  local f = {}
  local kv = entry[2] or {}
  for i = 1, #kv, 2 do
    f[kv[i]] = kv[i + 1]
  end
  f.key = f.key or ''
  f.action = f.action or 'set'
  f.value = f.value or ''
  return f
end

-- Acknowledges and deletes an entry; clears the key's coalescing slot if
-- this entry is still its newest. Returns 1 if the entry was pending.
local function settle(group, id, key)
  local acked = redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  if key and redis.call('HGET', latest, key) == id then
    redis.call('HDEL', latest, key)
  end
  return acked
end

-- ARGV: 'group', <group>. Creates the consumer group (and the stream) from
-- the start of the stream, so nothing enqueued before a worker's first start
-- is skipped. Returns 1 when created, 0 when it already existed.
if op == 'group' then
  local r = redis.pcall('XGROUP', 'CREATE', stream, ARGV[2], '0', 'MKSTREAM')
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'BUSYGROUP', 1, true) then
      return 0
    end
    return redis.error_reply(r.err)
  end
  return 1
end

-- ARGV: 'enqueue', <key>, <action: set|del>, <value>. Call it before writing
-- the cache key: a crash in between leaves a cold cache, never a lost write.
-- Returns the entry id (the write's version: ids only grow).
if op == 'enqueue' then
  local action = ARGV[3] or 'set'
  if action ~= 'set' and action ~= 'del' then
    return redis.error_reply('ERR write-behind action must be set or del')
  end
  local id = redis.call('XADD', stream, '*', 'key', ARGV[2], 'action', action, 'value', ARGV[4] or '')
  redis.call('HSET', latest, ARGV[2], id)
  return id
end

-- ARGV: 'peek', <key>. The newest queued write of a key, for a reader that
-- missed the cache: {id, action, value}, or nil when nothing is queued (then
-- the store is up to date for that key).
if op == 'peek' then
  local id = redis.call('HGET', latest, ARGV[2])
  if not id then
    return nil
  end
  local e = redis.call('XRANGE', stream, id, id)
  if not e[1] then
    return nil
  end
  local f = fields(e[1])
  return {id, f.action, f.value}
end

-- ARGV: 'take', <group>, <consumer>, <count>. Up to <count> new entries for
-- this consumer; entries superseded by a newer write of the same key are
-- settled at once and not returned. Returns {{id, key, action, value}, ...}.
if op == 'take' then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', stream, '>')
  local out = {}
  if not r then
    return out
  end
  for _, e in ipairs(r[1][2]) do
    local f = fields(e)
    if redis.call('HGET', latest, f.key) == e[1] then
      table.insert(out, {e[1], f.key, f.action, f.value})
    else
      settle(ARGV[2], e[1], nil)
    end
  end
  return out
end

-- ARGV: 'ack', <group>, <id>, <key>, <id>, <key>, ... Only after the store
-- committed these entries. Returns how many were still pending.
if op == 'ack' then
  local n = 0
  for i = 3, #ARGV - 1, 2 do
    n = n + settle(ARGV[2], ARGV[i], ARGV[i + 1])
  end
  return n
end

-- ARGV: 'reclaim', <group>, <consumer>, <min idle ms>, <count>,
-- <max deliveries>, <start id>. Claims entries left pending longer than
-- <min idle ms> (a dead worker, or a store write that failed and was not
-- acknowledged). Superseded entries are settled; an entry delivered more than
-- <max deliveries> times moves to the dead-letter stream. Returns
-- {next start id, {{id, key, action, value}, ...}, dead-lettered count}.
if op == 'reclaim' then
  local r = redis.call('XAUTOCLAIM', stream, ARGV[2], ARGV[3], ARGV[4], ARGV[7] or '0-0', 'COUNT', ARGV[5])
  local max = tonumber(ARGV[6]) or 1
  local out, buried = {}, 0
  for _, e in ipairs(r[2]) do
    local f = fields(e)
    local p = redis.call('XPENDING', stream, ARGV[2], e[1], e[1], 1)
    local deliveries = (p[1] and p[1][4]) or 0
    if redis.call('HGET', latest, f.key) ~= e[1] then
      settle(ARGV[2], e[1], nil)
    elseif deliveries > max then
      redis.call('XADD', dead, '*', 'id', e[1], 'key', f.key, 'action', f.action, 'value', f.value,
        'deliveries', deliveries, 'group', ARGV[2])
      settle(ARGV[2], e[1], f.key)
      buried = buried + 1
    else
      table.insert(out, {e[1], f.key, f.action, f.value})
    end
  end
  return {r[1], out, buried}
end

return redis.error_reply('ERR unknown write-behind operation: ' .. tostring(op))
