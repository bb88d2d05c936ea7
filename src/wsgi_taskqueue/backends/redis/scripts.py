"""The Lua scripts of the Redis queue: every move of a message is one of
them (or a MULTI), so it is atomic.

Conventions: keys of one queue start with its base ``P:{Q}:`` (see the
package docstring); the status log of a queue is written by the same
script that moves the message, so it costs no extra round trip.  A status
TTL of 0 turns the status log off.
"""

#: Put first in every script on a Redis Cluster: reading a key that never
#: exists (in the queue's slot, as KEYS[1]) is refused while the slot
#: migrates, so the script stops before it writes anything.  Without it, a
#: script whose declared keys are all still on the source runs, and stops
#: half done at the first status record already migrated (or new).
MIGRATION_GUARD = r"""redis.call('EXISTS', KEYS[1] .. ':migrating')
"""

#: Helpers shared by the scripts below.
PRELUDE = r"""
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- The JSON header of a message (second line), or nil.
local function header(message)
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  if not second then return nil end
  local ok, decoded = pcall(cjson.decode,
                            string.sub(message, first + 1, second - 1))
  if ok and type(decoded) == 'table' then return decoded end
  return nil
end

-- The task id and attempt of a message, cheaply, or nil.  The encoder
-- writes the id first; ',"a":' can only be the attempt's key, as quotes
-- inside JSON strings are escaped and header keys are upper case.
local function id_of(message)
  return string.match(message, '^[^\n]*\n{"v":1,"id":"(%x+)"')
end
local function attempt_of(message)
  local at = string.find(message, ',"a":', 1, true)
  return at and string.match(message, '^%d+', at + 5)
end

-- The due time of a task scheduled for later (countdown, eta), or nil.
-- The encoder writes it after the fields of every task, only when set;
-- ',"d":' can be no other key (see attempt_of).
local function due_of(message)
  local at = string.find(message, ',"d":', 1, true)
  if not at then return nil end
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  if not second or at > second then return nil end
  return tonumber(string.match(string.sub(message, at + 5, second - 1),
                               '^([^,}]+)[,}]'))
end

local function set_status(base, ttl, t, id, ...)
  if ttl <= 0 or not id then return end
  local key = base .. 'task:' .. id
  redis.call('HSET', key, 'updated', t, ...)
  redis.call('EXPIRE', key, ttl)
end

-- The record of a task that starts running, unless the attempt already
-- finished (its 'f' field is the last finished attempt): then the message
-- is a replay, left for the caller to bury, and 1 is returned.  Its
-- expiry is left alone: whatever the task comes to next (done, retrying,
-- dead, requeued) sets it.
local function mark_running(base, ttl, t, message, consumer)
  local id = id_of(message)
  if ttl <= 0 or not id then return 0 end
  local key = base .. 'task:' .. id
  local attempt = attempt_of(message)
  if not attempt then
    redis.call('HSET', key, 'updated', t, 'state', 'running',
               'consumer', consumer, 'started', t)
    return 0
  end
  local finished = tonumber(redis.call('HGET', key, 'f') or '0')
  if finished and tonumber(attempt) <= finished then return 1 end
  redis.call('HSET', key, 'updated', t, 'state', 'running',
             'consumer', consumer, 'started', t, 'attempt', attempt)
  return 0
end

-- A new status record, holding the message's header without its environ
-- (cookies and credentials must not outlive the task); returns the task
-- id, for the caller to index (one ZADD for many).  String operations
-- only: the encoder writes "e" after "m" and before "uid", and no
-- unescaped quote can occur inside a JSON string.
local function new_status(base, ttl, t, message, state)
  if ttl <= 0 then return nil end
  local id = id_of(message)
  if not id then return nil end
  local first = string.find(message, '\n', 1, true)
  local second = string.find(message, '\n', first + 1, true)
  local environ = string.find(message, ',"e":', first, true)
  local user = environ and string.find(message, ',"uid":', environ, true)
  if not second or not user or user > second then return nil end
  set_status(base, ttl, t, id, 'id', id, 'state', state, 'header',
             string.sub(message, first + 1, environ - 1) ..
             string.sub(message, user, second - 1))
  return id
end

-- Outcomes per minute, for throughput charts; kept an hour from the
-- first count of the minute.
local function count(base, t, outcome, n)
  if n == 0 then return end
  local key = base .. 'minute:' .. math.floor(t / 60)
  if redis.call('HINCRBY', key, outcome, n) == n then
    redis.call('EXPIRE', key, 3600)
  end
end

-- A new dead letter, at the newest end; the oldest beyond the maximum go.
local function bury(dead, record, dead_max)
  redis.call('LPUSH', dead, record)
  redis.call('LTRIM', dead, 0, dead_max - 1)
end

local function base_of(pending_key)
  return string.sub(pending_key, 1, #pending_key - #'pending')
end
"""

#: Make staged batches pending; a task scheduled for later (its header's
#: due time) joins the delayed ones instead, as a retry waits.
#: KEYS: (staged batch, pending, staged index, delayed) per queue.
#: ARGV: batch id, then the status TTL of each queue.
PROMOTE = PRELUDE + r"""
local t = now()
for q = 1, #KEYS, 4 do
  local ttl = tonumber(ARGV[1 + (q + 3) / 4])
  local base = base_of(KEYS[q + 1])
  local items = redis.call('LRANGE', KEYS[q], 0, -1)
  local ready = {}
  local index = {}
  for i = 1, #items do
    local at = t + i / 1000000
    local due = due_of(items[i])
    local id
    if due and due > t then
      redis.call('ZADD', KEYS[q + 3], due, items[i])
      id = new_status(base, ttl, at, items[i], 'scheduled')
      if id then set_status(base, ttl, at, id, 'next', due) end
    else
      ready[#ready + 1] = items[i]
      id = new_status(base, ttl, at, items[i], 'queued')
    end
    if id then
      index[#index + 1] = at
      index[#index + 1] = id
    end
  end
  for i = 1, #ready, 1000 do
    redis.call('LPUSH', KEYS[q + 1],
               unpack(ready, i, math.min(i + 999, #ready)))
  end
  for i = 1, #index, 1000 do
    redis.call('ZADD', base .. 'tasks',
               unpack(index, i, math.min(i + 999, #index)))
  end
  redis.call('DEL', KEYS[q])
  redis.call('ZREM', KEYS[q + 2], ARGV[1])
end
"""

#: Stage messages under a batch id, invisible to consumers.  Idempotent (a
#: stage sent again after a lost reply leaves the same batch), and timed
#: by Redis's clock, which the sweep's grace period is measured against.
#: KEYS: (staged batch, staged index) per queue.  ARGV: batch id, the
#: message count of each queue, then all messages in queue order.
STAGE = PRELUDE + r"""
local t = now()
local pos = #KEYS / 2 + 2
for q = 1, #KEYS, 2 do
  local n = tonumber(ARGV[1 + (q + 1) / 2])
  redis.call('DEL', KEYS[q])
  for i = pos, pos + n - 1, 1000 do
    redis.call('RPUSH', KEYS[q], unpack(ARGV, i, math.min(i + 999, pos + n - 1)))
  end
  redis.call('ZADD', KEYS[q + 1], t, ARGV[1])
  pos = pos + n
end
"""

#: Acknowledge finished messages, then take up to a limit.  With
#: "recover", the caller lost track of what its slot holds (a reply was
#: lost): all but the finished messages go back to the head of pending.
#: A message whose attempt already finished (a replay) is not returned
#: with the others but apart, for the caller to bury.
#: KEYS: pending, processing (the slot's), delayed, consumers.
#: ARGV: limit, slot, status TTL, '1' to recover, count of finished
#: messages, then per finished message: message, attempt, status line,
#: duration (ms).  Returns {taken, due time of the next retry or false,
#: replays}.
RESERVE = PRELUDE + r"""
local t = now()
local base = base_of(KEYS[1])
local ttl = tonumber(ARGV[3])
local finished = tonumber(ARGV[5])
for i = 6, 5 + 4 * finished, 4 do
  local message = ARGV[i]
  redis.call('LREM', KEYS[2], -1, message)
  set_status(base, ttl, t, id_of(message), 'state', 'done',
             'status', ARGV[i + 2], 'finished', t, 'f', ARGV[i + 1],
             'a' .. ARGV[i + 1], ARGV[i + 2] .. '\t' .. t .. '\t' .. ARGV[i + 3])
end
count(base, t, 'done', finished)
if ARGV[4] == '1' then
  while true do
    local message = redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT')
    if not message then break end
    set_status(base, ttl, t, id_of(message), 'state', 'queued', 'consumer', '')
  end
end
redis.call('SADD', KEYS[4], ARGV[2])
-- Retries that fell due go to the head of the line, earliest due first.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', t, 'LIMIT', 0, 100)
for i = #due, 1, -1 do
  redis.call('RPUSH', KEYS[1], due[i])
  redis.call('ZREM', KEYS[3], due[i])
end
local taken, replays = {}, {}
for i = 1, tonumber(ARGV[1]) do
  local message = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not message then break end
  if mark_running(base, ttl, t, message, ARGV[2]) == 1 then
    replays[#replays + 1] = message
  else
    taken[#taken + 1] = message
  end
end
if #taken > 0 or #replays > 0 then return {taken, false, replays} end
local next_retry = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {taken, next_retry[2] or false, replays}
"""

#: Mark the message a BLMOVE just put in a processing list as running;
#: sent right behind the BLMOVE.  KEYS: processing.  ARGV: consumer, TTL.
#: Returns 1 for a replay (see RESERVE), 0 otherwise.
MARK_RUNNING = PRELUDE + r"""
local message = redis.call('LINDEX', KEYS[1], 0)
if not message then return 0 end
return mark_running(string.match(KEYS[1], '^(.*:)processing:'),
                    tonumber(ARGV[2]), now(), message, ARGV[1])
"""

#: Take or renew the lease on a consumer name; take it over from a holder
#: known to be gone (a process of this host that no longer runs).
#: KEYS: leases, owners, consumer info.  ARGV: name, token, ttl, info JSON,
#: pid of a gone holder on this host ('' for none).
ACQUIRE = PRELUDE + r"""
local t = now()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if expiry and tonumber(expiry) > t and owner and owner ~= ARGV[2] then
  local ok, held = pcall(cjson.decode, redis.call('HGET', KEYS[3], ARGV[1]) or '')
  local mine = cjson.decode(ARGV[4])
  if ARGV[5] == '' or not ok or type(held) ~= 'table'
      or held.host ~= mine.host or tostring(held.pid) ~= ARGV[5] then
    return 0
  end
end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1
"""

#: KEYS: leases, owners, consumer info.  ARGV: name, token.
RELEASE = r"""
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
"""

#: Put the unfinished messages of a consumer's slot back at the head of
#: pending, counting deliveries; those delivered too often stay in the
#: slot and are returned, for the caller to bury (it drops their
#: credentials, which a script cannot do without breaking the signature).
#: KEYS: processing (the slot's), pending, leases, owners, consumers,
#: info.  ARGV: slot, max deliveries (0: no limit), '1' to act only if the
#: consumer's lease is gone, status TTL, consumer.
#: Returns {requeued count, {message, deliveries, ...} to bury}.
REQUEUE = PRELUDE + r"""
local t = now()
local base = base_of(KEYS[2])
local ttl = tonumber(ARGV[4])
if ARGV[3] == '1' then
  local expiry = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if expiry and tonumber(expiry) > t then return {0, {}} end
  redis.call('ZREM', KEYS[3], ARGV[5])
  redis.call('HDEL', KEYS[4], ARGV[5])
  redis.call('HDEL', KEYS[6], ARGV[5])
end
local limit = tonumber(ARGV[2])
local requeued, condemned = 0, {}
local messages = redis.call('LRANGE', KEYS[1], 0, -1)
for _, message in ipairs(messages) do
  local h = header(message)
  local id = h and type(h.id) == 'string' and h.id or nil
  local counter = base .. 'deliveries:' .. (id or redis.sha1hex(message))
  local deliveries = redis.call('INCR', counter)
  redis.call('EXPIRE', counter, 86400)
  if limit > 0 and deliveries >= limit then
    condemned[#condemned + 1] = message
    condemned[#condemned + 1] = deliveries
  else
    redis.call('LREM', KEYS[1], 1, message)
    redis.call('RPUSH', KEYS[2], message)
    set_status(base, ttl, t, id, 'state', 'queued', 'consumer', '')
    requeued = requeued + 1
  end
end
if ARGV[3] == '1' and #condemned == 0 then
  redis.call('SREM', KEYS[5], ARGV[1])
end
return {requeued, condemned}
"""

#: Schedule a retry: the message leaves the slot for the delayed set.
#: Idempotent: nothing happens if it is no longer in the slot.
#: KEYS: processing (the slot's), delayed.  ARGV: message, new message, due
#: time, status TTL, task id, attempt, status line, duration (ms).
RETRY = PRELUDE + r"""
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local t = now()
local base = string.match(KEYS[1], '^(.*:)processing:')
set_status(base, tonumber(ARGV[4]), t, ARGV[5], 'state', 'retrying',
           'status', ARGV[7], 'next', ARGV[3], 'f', ARGV[6],
           'a' .. ARGV[6], ARGV[7] .. '\t' .. t .. '\t' .. ARGV[8])
count(base, t, 'retried', 1)
return 1
"""

#: Bury a message among the dead letters.  Idempotent, as RETRY.
#: KEYS: processing (the slot's), dead.  ARGV: message, dead-letter record,
#: status TTL, task id ('' to leave the status log alone), attempt,
#: status line, duration (ms), most dead letters kept.
BURY = PRELUDE + r"""
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
bury(KEYS[2], ARGV[2], tonumber(ARGV[8]))
local t = now()
local base = string.match(KEYS[1], '^(.*:)processing:')
if ARGV[4] ~= '' then
  set_status(base, tonumber(ARGV[3]), t, ARGV[4], 'state', 'dead',
             'status', ARGV[6], 'next', '', 'f', ARGV[5],
             'a' .. ARGV[5], ARGV[6] .. '\t' .. t .. '\t' .. ARGV[7])
end
count(base, t, 'dead', 1)
return 1
"""

#: KEYS: dead, pending.  ARGV: record, message, status TTL.
REQUEUE_DEAD = PRELUDE + r"""
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
local id = id_of(ARGV[2])
set_status(base_of(KEYS[2]), tonumber(ARGV[3]), now(), id,
           'state', 'queued', 'attempt', '1', 'next', '')
-- Its attempts count from 1 again: none of them has finished.
if id then redis.call('HDEL', base_of(KEYS[2]) .. 'task:' .. id, 'f') end
return 1
"""

#: Every task waiting for a retry, pending now (at the head: next).
#: KEYS: delayed, pending.
#: Keep the status log within its bounds: forget index entries older than
#: the TTL (their records expired) and delete the oldest records beyond
#: the maximum.  KEYS: the status index.  ARGV: oldest time kept, maximum.
TRIM_STATUS = r"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if excess <= 0 then return 0 end
local base = string.sub(KEYS[1], 1, #KEYS[1] - #'tasks')
local ids = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
for i = 1, #ids, 1000 do
  local keys = {}
  for j = i, math.min(i + 999, #ids) do keys[#keys + 1] = base .. 'task:' .. ids[j] end
  redis.call('DEL', unpack(keys))
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
return excess
"""

#: ARGV: status TTL.
REQUEUE_DELAYED = PRELUDE + r"""
local t = now()
local base = base_of(KEYS[2])
local messages = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = #messages, 1, -1 do
  redis.call('RPUSH', KEYS[2], messages[i])
  set_status(base, tonumber(ARGV[1]), t, id_of(messages[i]),
             'state', 'queued', 'next', '')
end
redis.call('DEL', KEYS[1])
return #messages
"""

#: Remove a pending or delayed task, marking it cancelled; or say that a
#: consumer holds it.  KEYS: pending, delayed, consumers.  ARGV: task id,
#: status TTL.  Returns 'cancelled', 'running' or false.
CANCEL = PRELUDE + r"""
local base = base_of(KEYS[1])
local function cancelled(message)
  set_status(base, tonumber(ARGV[2]), now(), ARGV[1], 'state', 'cancelled',
             'next', '')
  return 'cancelled'
end
for _, message in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if id_of(message) == ARGV[1] then
    redis.call('LREM', KEYS[1], 1, message)
    return cancelled(message)
  end
end
for _, message in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if id_of(message) == ARGV[1] then
    redis.call('ZREM', KEYS[2], message)
    return cancelled(message)
  end
end
for _, slot in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  for _, message in ipairs(redis.call('LRANGE', base .. 'processing:' .. slot,
                                      0, -1)) do
    if id_of(message) == ARGV[1] then return 'running' end
  end
end
return false
"""

#: Delete every pending and delayed task, marking them purged.
#: KEYS: pending, delayed.  ARGV: status TTL.
PURGE = PRELUDE + r"""
local t = now()
local base = base_of(KEYS[1])
local ttl = tonumber(ARGV[1])
local pending = redis.call('LRANGE', KEYS[1], 0, -1)
local delayed = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, list in ipairs({pending, delayed}) do
  for i = 1, #list do
    set_status(base, ttl, t, id_of(list[i]), 'state', 'purged', 'next', '')
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
return #pending + #delayed
"""

#: Forget dead letters older than a time, oldest first, at most 1000 a
#: call; a record whose time cannot be read is forgotten too (it can only
#: have been written by hand).  KEYS: dead.  ARGV: oldest time kept.
#: Returns how many went.
EXPIRE_DEAD = r"""
local oldest = tonumber(ARGV[1])
for n = 0, 999 do
  local record = redis.call('LINDEX', KEYS[1], -1)
  if not record then return n end
  local line = string.sub(record, 1, (string.find(record, '\n', 1, true) or 0) - 1)
  local ok, header = pcall(cjson.decode, line)
  local t = ok and type(header) == 'table' and tonumber(header.t)
  if t and t >= oldest then return n end
  redis.call('RPOP', KEYS[1])
end
return 1000
"""

#: Delete the dead letters.  KEYS: dead.  Returns how many there were.
PURGE_DEAD = r"""
local count = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return count
"""
