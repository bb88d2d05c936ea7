"""The Lua scripts a consumer runs on the Redis queue (``consuming.py``
sends them): take and acknowledge tasks, retry and bury them, hold its
lease, and the sweep's part, which hands back what a gone consumer held
and keeps the status log and the dead letters within their bounds.

They are apart from the transaction's (``scripts.py``) and the
operator's (``operations_scripts.py``), as the Python that sends them is;
they follow the conventions of ``scripts.py`` and start with its PRELUDE
where they need its helpers.
"""
from .dependencies import DEPENDENCIES
from .jobs import JOBS
from .scripts import PRELUDE

#: The record of a message handed back to pending from a processing list,
#: written whole: it may have none yet, if its consumer went between
#: taking it (BLMOVE) and marking it running (MARK_RUNNING).
REQUEUED_STATUS = r"""
local function requeued_status(base, ttl, t, message)
  if not new_status(base, ttl, t, message, 'queued', 'consumer', '') then
    set_status(base, ttl, t, id_of(message), 'state', 'queued',
               'consumer', '')
  end
end
"""

#: Acknowledge finished messages (those the slot still holds), then take
#: up to a limit.  With "recover", the caller lost track of what its slot
#: holds (a reply was lost): all but the finished messages go back to the
#: head of pending.
#: A message whose attempt already finished (a replay) is not returned
#: with the others but apart, for the caller to bury.
#: KEYS: pending, processing (the slot's), delayed, consumers.
#: ARGV: limit, slot, status TTL, '1' to recover, count of finished
#: messages, then per finished message: message, attempt, status line,
#: duration (ms).  Returns {taken, due time of the next retry or false,
#: replays}.
RESERVE = PRELUDE + DEPENDENCIES + JOBS + REQUEUED_STATUS + r"""
local t = now()
local base = base_of(KEYS[1])
local ttl = tonumber(ARGV[3])
local finished = tonumber(ARGV[5])
-- The finished messages leave the slot: when it holds exactly them (what
-- a batch leaves), one DEL does it, else one LREM each.
local held = finished >= 3 and redis.call('LRANGE', KEYS[2], 0, -1) or {}
local left = {}
for i = 6, 5 + 4 * finished, 4 do left[ARGV[i]] = (left[ARGV[i]] or 0) + 1 end
for _, message in ipairs(held) do
  if (left[message] or 0) == 0 then held = {} break end
  left[message] = left[message] - 1
end
local emptied = #held == finished and finished > 0
if emptied then redis.call('DEL', KEYS[2]) end
-- One no longer held (the sweep took it back: it runs elsewhere now, or
-- an ack sent again already settled it) records nothing.
local settled = 0
for i = 6, 5 + 4 * finished, 4 do
  local message = ARGV[i]
  if emptied or redis.call('LREM', KEYS[2], -1, message) > 0 then
    settled = settled + 1
    end_status(base, ttl, t, id_of(message),
               tonumber(ARGV[i + 3]) < 1000, 'state', 'done',
               'status', ARGV[i + 2], 'finished', t, 'f', ARGV[i + 1],
               'a' .. ARGV[i + 1], ARGV[i + 2] .. '\t' .. t .. '\t' .. ARGV[i + 3])
    release(base, ttl, t, id_of(message), 'done')
    job_settle(base, ttl, t, message, 'done')
  end
end
count(base, t, 'done', settled)
local ranked = 0
if ARGV[4] == '1' then
  while true do
    local message = redis.call('LPOP', KEYS[2])
    if not message then break end
    ranked = ranked + place(KEYS[1], message, true)
    requeued_status(base, ttl, t, message)
  end
end
redis.call('SADD', KEYS[4], ARGV[2])
-- Retries that fell due go to the head of the line, earliest due first.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', t, 'LIMIT', 0, 100)
for i = #due, 1, -1 do
  ranked = ranked + place(KEYS[1], due[i], true)
  redis.call('ZREM', KEYS[3], due[i])
end
wake(KEYS[1], ranked)
local taken, replays = {}, {}
local lines = tonumber(ARGV[1]) > 0 and lines_of(KEYS[1])
for i = 1, tonumber(ARGV[1]) do
  local message = take_next(KEYS[1], KEYS[2], lines)
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
#: Returns 1 for a replay (see RESERVE), 2 for a wake token (dropped: a
#: task of another priority is pending), 0 otherwise.
MARK_RUNNING = PRELUDE + r"""
local message = redis.call('LINDEX', KEYS[1], 0)
if not message then return 0 end
local base = string.match(KEYS[1], '^(.*:)processing:')
if woke(base .. 'pending', KEYS[1]) then return 2 end
return mark_running(base, tonumber(ARGV[2]), now(), message, ARGV[1])
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
REQUEUE = PRELUDE + REQUEUED_STATUS + r"""
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
local requeued, condemned, ranked = 0, {}, 0
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
    ranked = ranked + place(KEYS[2], message, true)
    requeued_status(base, ttl, t, message)
    requeued = requeued + 1
  end
end
wake(KEYS[2], ranked)
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
BURY = PRELUDE + DEPENDENCIES + JOBS + r"""
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
bury(KEYS[2], ARGV[2], tonumber(ARGV[8]))
local t = now()
local base = string.match(KEYS[1], '^(.*:)processing:')
if ARGV[4] ~= '' then
  set_status(base, tonumber(ARGV[3]), t, ARGV[4], 'state', 'dead',
             'status', ARGV[6], 'next', '', 'f', ARGV[5],
             'a' .. ARGV[5], ARGV[6] .. '\t' .. t .. '\t' .. ARGV[7])
  release(base, tonumber(ARGV[3]), t, ARGV[4], 'dead')
  job_settle(base, tonumber(ARGV[3]), t, ARGV[1], 'dead')
end
count(base, t, 'dead', 1)
return 1
"""

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
