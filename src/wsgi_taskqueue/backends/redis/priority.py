"""Priorities on Redis: one pending list per priority in use.

Tasks of the default priority (5, not written in their header) wait in
the queue's ``pending`` list as they always did; a task of another
priority N waits in ``pending:N``, and N is in the set ``pending:levels``
while that list may hold tasks.  A queue whose tasks have no priority
has neither key, and pays one SMEMBERS of an absent set per reservation.
Every script that makes a message pending puts it in the list of its
priority (``line_of``); reservations take from the highest list first
(``take_next``).  Within one list order is FIFO, as in ``pending``.

A consumer with nothing to do blocks on ``pending`` alone (BLMOVE takes
one list).  So when a script (a promotion, a requeue, retries falling
due) puts tasks of another priority into their lists while ``pending``
is empty (a consumer may be blocked), it also pushes one wake token per
such task into ``pending``: a consumer
that takes a token drops it and reserves again, from the priority lists
(``woke`` after the BLMOVE, ``take_next`` in a reservation).  The tokens
are counted in ``pending:wakes``, so ``pending_count`` leaves them out.
"""
from __future__ import annotations

from ...validation import DEFAULT_PRIORITY

__all__ = ['LUA', 'PENDING_COUNT', 'WAKE', 'WOKEN']

#: What a wake token is: never a message (messages hold newlines).
WAKE = 'wake'
#: What MARK_RUNNING answers for a wake token: reserve again.
WOKEN = 2

#: Helpers for the scripts (``scripts.PRELUDE`` includes them).
LUA = r"""
local DEFAULT_PRIORITY = """ + str(DEFAULT_PRIORITY) + r"""
local WAKE = '""" + WAKE + r"""'

-- The priority a message's header carries, or nil for the default.  The
-- encoder writes it after the fields of every task as ',"p":N', one
-- digit, only when set; ',"p":' can be no other key (see attempt_of).
local function priority_of(message)
  local at = string.find(message, ',"p":', 1, true)
  if not at then return nil end
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  if not second or at > second then return nil end
  return tonumber(string.sub(message, at + 5, at + 5))
end

-- The list a message waits in while pending, given the queue's pending
-- list: that one for the default priority, else the list of its own.
local function line_of(pending, message)
  local p = priority_of(message)
  if not p or p == DEFAULT_PRIORITY then return pending end
  redis.call('SADD', pending .. ':levels', p)
  return pending .. ':' .. p
end

-- Put ``message`` in the list of its priority, at its head (the next to
-- be taken) or its tail; 1 if that list is not the pending list (so that
-- a wake may be due: see wake), else 0.
local function place(pending, message, at_head)
  local line = line_of(pending, message)
  redis.call(at_head and 'RPUSH' or 'LPUSH', line, message)
  if line == pending then return 0 end
  return 1
end

-- The priorities in use besides the default, highest first.
local function levels_of(pending)
  local levels = redis.call('SMEMBERS', pending .. ':levels')
  for i = 1, #levels do levels[i] = tonumber(levels[i]) end
  table.sort(levels, function(a, b) return a > b end)
  return levels
end

-- Every list a pending message may wait in, highest priority first.
local function lines_of(pending)
  local lines = {}
  local placed = false
  for _, level in ipairs(levels_of(pending)) do
    if not placed and level < DEFAULT_PRIORITY then
      lines[#lines + 1] = pending
      placed = true
    end
    lines[#lines + 1] = pending .. ':' .. level
  end
  if not placed then lines[#lines + 1] = pending end
  return lines
end

-- Move the next message to run from pending to ``processing`` (its
-- left): the oldest of the highest priority; false when none is pending.
-- Wake tokens met on the way are dropped; a priority's list found empty
-- leaves the set of levels.
local function take_next(pending, processing, lines)
  for _, line in ipairs(lines) do
    while true do
      local message = redis.call('LMOVE', line, processing, 'RIGHT', 'LEFT')
      if not message then
        if line ~= pending then
          redis.call('SREM', pending .. ':levels',
                     string.sub(line, #pending + 2))
        end
        break
      end
      if message ~= WAKE then return message end
      redis.call('LPOP', processing)
      redis.call('DECR', pending .. ':wakes')
    end
  end
  return false
end

-- After a script put ``n`` messages in priority lists: if a consumer may
-- be blocked on the empty pending list, wake as many.
local function wake(pending, n)
  if n == 0 or redis.call('LLEN', pending) > 0 then return end
  for _ = 1, n do redis.call('LPUSH', pending, WAKE) end
  redis.call('INCRBY', pending .. ':wakes', n)
end

-- Whether the message a BLMOVE just put at the left of ``processing``
-- was a wake token; it is dropped.
local function woke(pending, processing)
  if redis.call('LINDEX', processing, 0) ~= WAKE then return false end
  redis.call('LPOP', processing)
  redis.call('DECR', pending .. ':wakes')
  return true
end
"""

#: How many tasks are pending, in every priority's list.
#: KEYS: pending.
PENDING_COUNT = LUA + r"""
local count = -tonumber(redis.call('GET', KEYS[1] .. ':wakes') or '0')
for _, line in ipairs(lines_of(KEYS[1])) do
  count = count + redis.call('LLEN', line)
end
return count
"""
