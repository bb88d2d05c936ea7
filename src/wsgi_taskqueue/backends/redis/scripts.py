"""The Lua scripts of the Redis queue: every move of a message is one of
them (or a MULTI), so it is atomic.  This module holds what they all
share (the Cluster's migration guard, the PRELUDE of helpers) and the
promotion of a transaction's staged batches (PROMOTE; the stage and the
staged batches are ``staging.py``'s); a consumer's scripts are in
``consuming_scripts.py``, an operator's in ``operations_scripts.py``.

Conventions: keys of one queue start with its base ``P:{Q}:`` (see the
package docstring); the status log of a queue is written by the same
script that moves the message, so it costs no extra round trip.  A status
TTL of 0 turns the status log off.  Where a pending message waits, by its
priority, is ``priority.py``'s.
"""
from . import priority
from .dependencies import DEPENDENCIES
from .jobs import JOBS
from .names import NAME_KEPT
from .staging import UNPACK_LUA

#: Put first in every script on a Redis Cluster: reading a key that never
#: exists (in the queue's slot, as KEYS[1]) is refused while the slot
#: migrates, so the script stops before it writes anything.  Without it, a
#: script whose declared keys are all still on the source runs, and stops
#: half done at the first status record already migrated (or new).
MIGRATION_GUARD = r"""redis.call('EXISTS', KEYS[1] .. ':migrating')
"""

#: Helpers shared by the scripts (these, those of the modules named above
#: and ``completion.py``'s SETTLE).
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

-- How much longer than the TTL a record is kept from the moment its task
-- starts running (mark_running): the acknowledgement of a task whose
-- dispatch took less than a second (``quick``) then writes its record
-- without setting its expiry again, one command less per task, and the
-- record still outlives the TTL counted from the task's end, unless the
-- task waited longer than this in its consumer's prefetch.
local RUNNING_SLACK = 300

-- ``set_status`` for the end of a task that ``mark_running`` started.
local function end_status(base, ttl, t, id, quick, ...)
  if quick and ttl > 0 and id then
    redis.call('HSET', base .. 'task:' .. id, 'updated', t, ...)
  else
    set_status(base, ttl, t, id, ...)
  end
end

-- What a status record keeps of a message's header: all of it but its
-- environ (cookies and credentials must not outlive the task), or nil.
-- String operations only: the encoder writes "e" after "m" and before
-- "uid", and no unescaped quote can occur inside a JSON string.
local function kept_header(message)
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  local environ = first and string.find(message, ',"e":', first, true)
  local user = environ and string.find(message, ',"uid":', environ, true)
  if not second or not user or user > second then return nil end
  return string.sub(message, first + 1, environ - 1) ..
         string.sub(message, user, second - 1)
end

-- A status record for a message's task, written whole (id, state,
-- header, then the other ``...`` fields), whether it had one or not;
-- returns the task id, for the caller to index (one ZADD for many), or
-- nil when the log is off or the message is not a task's.
local function new_status(base, ttl, t, message, state, ...)
  if ttl <= 0 then return nil end
  local id = id_of(message)
  local kept = id and kept_header(message)
  if not kept then return nil end
  set_status(base, ttl, t, id, 'id', id, 'state', state, 'header', kept, ...)
  return id
end

-- The record of a task that starts running, unless the attempt already
-- finished (its 'f' field is the last finished attempt): then the message
-- is a replay, left for the caller to bury, and 1 is returned.  A task
-- that was simply pending has no record yet (PROMOTE writes none): this
-- is its first, written whole.  Its expiry is the TTL and RUNNING_SLACK,
-- which a quick task's end leaves as it is (end_status).
local function mark_running(base, ttl, t, message, consumer)
  local id = id_of(message)
  if ttl <= 0 or not id then return 0 end
  local key = base .. 'task:' .. id
  local attempt = attempt_of(message)
  if attempt then
    local finished = tonumber(redis.call('HGET', key, 'f') or '0')
    if finished and tonumber(attempt) <= finished then return 1 end
  end
  local fields = {'updated', t, 'state', 'running', 'consumer', consumer,
                  'started', t, 'id', id}
  if attempt then
    fields[#fields + 1] = 'attempt'
    fields[#fields + 1] = attempt
  end
  local kept = kept_header(message)
  if kept then
    fields[#fields + 1] = 'header'
    fields[#fields + 1] = kept
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, ttl + RUNNING_SLACK)
  return 0
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
""" + priority.LUA

#: Make staged batches pending; a task scheduled for later (its header's
#: due time) joins the delayed ones instead, as a retry waits, and one
#: that waits for other tasks is parked (dependencies.py); a job's marker
#: is taken in, and a job's task counted (jobs.py).  A task that simply
#: becomes pending gets no status record, only its entry in the ``tasks``
#: index (id -> time queued): its message holds its header, and its record
#: is first written when it starts running (mark_running) or leaves the
#: queue otherwise (cancel, purge).  ``promoted`` tells ``park`` which of
#: them came earlier in the same batch (not indexed yet).
#: A task whose name another task holds is dropped (names.NAME_KEPT).
#: KEYS: (staged hash, pending, delayed) per queue.
#: ARGV: batch id, then per queue: its status TTL, the base of the keys
#: of its names ('' for none), its name TTL.
PROMOTE = PRELUDE + UNPACK_LUA + DEPENDENCIES + JOBS + NAME_KEPT + r"""
local t = now()
for q = 1, #KEYS, 3 do
  local ttl = tonumber(ARGV[q + 1])
  local names, name_ttl = ARGV[q + 2], ARGV[q + 3]
  local base = base_of(KEYS[q + 1])
  local items = unpacked(redis.call('HGET', KEYS[q], ARGV[1]))
  local ready = {}
  local index = {}
  local promoted = {}
  local ranked = 0
  for i = 1, #items do
    local at = t + i / 1000000
    local due = due_of(items[i])
    local id
    if not name_kept(names, name_ttl, items[i]) then
      -- dropped: its name is another task's
    elseif job_take(base, ttl, at, items[i]) then
      -- a job's marker, taken in
    elseif park(base, ttl, at, items[i], promoted) then
      -- parked or condemned, its record and index entry written
    elseif due and due > t then
      redis.call('ZADD', KEYS[q + 2], due, items[i])
      id = new_status(base, ttl, at, items[i], 'scheduled', 'next', due)
    else
      local priority = priority_of(items[i])
      if priority and priority ~= DEFAULT_PRIORITY then
        ranked = ranked + place(KEYS[q + 1], items[i], false)
      else
        ready[#ready + 1] = items[i]
      end
      -- No record: its index entry is its trace while it waits.
      id = ttl > 0 and id_of(items[i]) or nil
      if id then promoted[id] = true end
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
  wake(KEYS[q + 1], ranked)
  for i = 1, #index, 1000 do
    redis.call('ZADD', base .. 'tasks',
               unpack(index, i, math.min(i + 999, #index)))
  end
  redis.call('HDEL', KEYS[q], ARGV[1])
end
"""
