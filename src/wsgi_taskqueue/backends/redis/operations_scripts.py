"""The Lua scripts an operator's actions run on the Redis queue
(``operations.py`` sends them): requeue dead letters and delayed tasks,
cancel a task, purge the queue or its dead letters.

They are apart from the scripts a task's own way runs (``scripts.py``,
``consuming_scripts.py``), as the Python that sends them is; they follow
the conventions of ``scripts.py`` and start with its PRELUDE where they
need its helpers.
"""
from .dependencies import DEPENDENCIES
from .jobs import JOBS
from .scripts import PRELUDE

#: KEYS: dead, pending.  ARGV: record, message, status TTL.
REQUEUE_DEAD = PRELUDE + r"""
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
wake(KEYS[2], place(KEYS[2], ARGV[2], false))
local id = id_of(ARGV[2])
set_status(base_of(KEYS[2]), tonumber(ARGV[3]), now(), id,
           'state', 'queued', 'attempt', '1', 'next', '')
-- Its attempts count from 1 again: none of them has finished.
if id then redis.call('HDEL', base_of(KEYS[2]) .. 'task:' .. id, 'f') end
return 1
"""

#: Every task waiting for a retry, pending now (at the head: next).
#: KEYS: delayed, pending.  ARGV: status TTL.
REQUEUE_DELAYED = PRELUDE + r"""
local t = now()
local base = base_of(KEYS[2])
local messages = redis.call('ZRANGE', KEYS[1], 0, -1)
local ranked = 0
for i = #messages, 1, -1 do
  ranked = ranked + place(KEYS[2], messages[i], true)
  set_status(base, tonumber(ARGV[1]), t, id_of(messages[i]),
             'state', 'queued', 'next', '')
end
wake(KEYS[2], ranked)
redis.call('DEL', KEYS[1])
return #messages
"""

#: Remove a pending, delayed or parked task, marking it cancelled (and
#: condemning what waits for it); or say that a consumer holds it.
#: KEYS: pending, delayed, consumers.  ARGV: task id, status TTL.
#: Returns 'cancelled', 'running' or false.
CANCEL = PRELUDE + DEPENDENCIES + JOBS + r"""
local base = base_of(KEYS[1])
local parked = redis.call('HGET', base .. 'waiting:' .. ARGV[1], 'message')
if cancel_parked(base, tonumber(ARGV[2]), now(), ARGV[1]) then
  job_settle(base, tonumber(ARGV[2]), now(), parked, 'cancelled')
  return 'cancelled'
end
local function cancelled(message)
  -- A pending task may have no record yet (PROMOTE writes none).
  if not new_status(base, tonumber(ARGV[2]), now(), message, 'cancelled',
                    'next', '') then
    set_status(base, tonumber(ARGV[2]), now(), ARGV[1], 'state',
               'cancelled', 'next', '')
  end
  release(base, tonumber(ARGV[2]), now(), ARGV[1], 'cancelled')
  job_settle(base, tonumber(ARGV[2]), now(), message, 'cancelled')
  return 'cancelled'
end
for _, line in ipairs(lines_of(KEYS[1])) do
  for _, message in ipairs(redis.call('LRANGE', line, 0, -1)) do
    if id_of(message) == ARGV[1] then
      redis.call('LREM', line, 1, message)
      return cancelled(message)
    end
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
PURGE = PRELUDE + DEPENDENCIES + JOBS + r"""
local t = now()
local base = base_of(KEYS[1])
local ttl = tonumber(ARGV[1])
local lists = {redis.call('ZRANGE', KEYS[2], 0, -1)}
local count = -tonumber(redis.call('GET', KEYS[1] .. ':wakes') or '0')
for _, line in ipairs(lines_of(KEYS[1])) do
  lists[#lists + 1] = redis.call('LRANGE', line, 0, -1)
  redis.call('DEL', line)
end
for _, list in ipairs(lists) do
  count = count + #list
  for i = 1, #list do
    -- A pending task may have no record yet (PROMOTE writes none).
    if not new_status(base, ttl, t, list[i], 'purged', 'next', '') then
      set_status(base, ttl, t, id_of(list[i]), 'state', 'purged', 'next', '')
    end
    release(base, ttl, t, id_of(list[i]), 'purged')
    job_settle(base, ttl, t, list[i], 'purged')
  end
end
redis.call('DEL', KEYS[2], KEYS[1] .. ':levels', KEYS[1] .. ':wakes')
return count
"""

#: Delete the dead letters.  KEYS: dead.  Returns how many there were.
PURGE_DEAD = r"""
local count = redis.call('LLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return count
"""
