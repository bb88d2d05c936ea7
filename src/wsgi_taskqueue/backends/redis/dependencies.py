"""Tasks that wait for other tasks, on Redis: the Lua functions that park
a task at promotion and release what waits for a task in the script that
settles it (``backends/dependencies.py`` states the rules;
``backends/rules.py`` is their plain reading).

Keys beside the queue's (package docstring):

- ``P:{Q}:waiting:<id>`` (hash: message, left): a parked task and how
  many of the tasks it waits for are not done yet;
- ``P:{Q}:dependents:<id>`` (set): the ids of the tasks parked on ``id``;
- ``P:{Q}:depended`` (set): the ids that have such a set, so that the
  script settling tasks nobody waits for learns it with one ``EXISTS``
  for all of them;
- ``P:{Q}:processing:~doomed`` (list): tasks condemned by a dependency
  that died, until ``bury_doomed`` buries them with their dead letter and
  on_failure callback (which need the queue's secret, so Python's work;
  their status record says ``dead`` at once).  No consumer holds that
  list, so no sweep requeues it; every sweep buries what it holds.

The scripts that settle a task (RESERVE's acknowledgement, BURY, SETTLE,
CANCEL, PURGE) call ``release``; PROMOTE calls ``park``.  Tasks nobody
waits for cost the script that settles them one ``EXISTS``, whatever
their number, and no round trip.
"""
from __future__ import annotations

from ...errors import UnknownDependency
from ...task import identity_of
from ..dependencies import DOOMED_SLOT, dependencies_of
from .queued import waits_unrecorded

__all__ = ['DEPENDENCIES', 'bury_doomed', 'known', 'shard_of_dependencies']

#: A condemned task's reason when its status record lacks one.
DEFAULT_REASON = 'not run: a task it waited for did not finish'

#: Put after the PRELUDE of the scripts that park or release tasks.
DEPENDENCIES = r"""
local DYING = {dead = true, cancelled = true, purged = true}

local function doom(base, ttl, t, message, id, dependency, state)
  redis.call('RPUSH', base .. 'processing:~doomed', message)
  set_status(base, ttl, t, id, 'state', 'dead', 'next', '', 'status',
             'not run: the task it waited for, ' .. dependency .. ', is ' ..
             state)
end

-- Queue a message that waits no more: pending, or delayed while its due
-- time is ahead.
local function unpark(base, ttl, t, message, id)
  local due = due_of(message)
  if due and due > t then
    redis.call('ZADD', base .. 'delayed', due, message)
    set_status(base, ttl, t, id, 'state', 'scheduled', 'next', due)
  else
    -- In the list of its priority (priority.py), waking a consumer
    -- blocked on the default one.
    local pending = base .. 'pending'
    wake(pending, place(pending, message, false))
    set_status(base, ttl, t, id, 'state', 'queued')
  end
end

-- Whether task ``id``, which has no status record, waits in the queue:
-- a task that simply became pending has only its entry in the status
-- index (PROMOTE), fresh; an entry older than the TTL is one whose record
-- expired, and counts as done, as a missing record always did.
local function pending_unrecorded(base, ttl, t, id)
  local queued = redis.call('ZSCORE', base .. 'tasks', id)
  return queued and tonumber(queued) > t - ttl
end

-- Park a message being promoted if it waits for tasks not done yet (or
-- condemn it if one of them died); true when it is taken care of here,
-- false when it is to be queued as any other.  ``promoted``: the ids
-- made pending earlier in the same promotion (not indexed yet).
local function park(base, ttl, t, message, promoted)
  if not string.find(message, ',"af":[', 1, true) then return false end
  local h = header(message)
  if not h or type(h.af) ~= 'table' or type(h.id) ~= 'string' then
    return false
  end
  local left = {}
  for _, dependency in ipairs(h.af) do
    local state = redis.call('HGET', base .. 'task:' .. dependency, 'state')
    if not state and (promoted[dependency] or
                      pending_unrecorded(base, ttl, t, dependency)) then
      state = 'queued'
    end
    if state and DYING[state] then
      new_status(base, ttl, t, message, 'dead')
      redis.call('ZADD', base .. 'tasks', t, h.id)
      doom(base, ttl, t, message, h.id, dependency, state)
      return true
    end
    if state and state ~= 'done' then left[#left + 1] = dependency end
  end
  if #left == 0 then return false end
  for _, dependency in ipairs(left) do
    redis.call('SADD', base .. 'dependents:' .. dependency, h.id)
  end
  redis.call('SADD', base .. 'depended', unpack(left))
  redis.call('HSET', base .. 'waiting:' .. h.id, 'message', message,
             'left', #left)
  new_status(base, ttl, t, message, 'waiting')
  redis.call('ZADD', base .. 'tasks', t, h.id)
  return true
end

-- Whether the queue of ``base`` has tasks that others wait for, asked
-- once per script run: settling a batch of tasks nobody waits for costs
-- one command in all.  No script parks a task after it released one.
local depended = {}
local function any_depended(base)
  if depended[base] == nil then
    depended[base] = redis.call('EXISTS', base .. 'depended') == 1
  end
  return depended[base]
end

-- Task ``id`` is done, dead, cancelled or purged (``state``): the tasks
-- parked on it count it done, or are condemned with it.
local function release(base, ttl, t, id, state)
  if not id or id == '' or not any_depended(base) then return end
  if redis.call('SREM', base .. 'depended', id) == 0 then return end
  local key = base .. 'dependents:' .. id
  local parked = redis.call('SMEMBERS', key)
  redis.call('DEL', key)
  for _, waiting in ipairs(parked) do
    local entry = base .. 'waiting:' .. waiting
    local message = redis.call('HGET', entry, 'message')
    if message then
      if state ~= 'done' then
        redis.call('DEL', entry)
        doom(base, ttl, t, message, waiting, id, state)
      elseif redis.call('HINCRBY', entry, 'left', -1) <= 0 then
        redis.call('DEL', entry)
        unpark(base, ttl, t, message, waiting)
      end
    end
  end
end

-- Cancel a parked task: true if ``id`` was one.
local function cancel_parked(base, ttl, t, id)
  if redis.call('DEL', base .. 'waiting:' .. id) == 0 then return false end
  set_status(base, ttl, t, id, 'state', 'cancelled', 'next', '')
  release(base, ttl, t, id, 'cancelled')
  return true
end
"""


#: Rounds of ``bury_doomed`` at most in one call: each buries what the
#: previous one condemned (a chain a -> b -> c needs two).
MAX_ROUNDS = 100


def bury_doomed(queue) -> int:
    """Bury, with dead letter and on_failure callback, the tasks that
    dependencies condemned (``processing:~doomed``); return how many."""
    key = queue.processing_key(DOOMED_SLOT)
    buried = 0
    for _ in range(MAX_ROUNDS):
        messages = queue.client.lrange(key, 0, 99)
        if not messages:
            break
        for message in messages:
            task_id = identity_of(message)[0]
            reason = task_id and queue.client.hget(queue.task_key(task_id),
                                                   'status')
            queue.bury_unusable(DOOMED_SLOT, message, reason.decode(
                'utf-8', 'replace') if reason else DEFAULT_REASON)
            buried += 1
    return buried


def known(queue, ids) -> list:
    """Those of ``ids`` whose status record ``queue`` keeps, or that wait
    in it without one yet (``queued.py``)."""
    pipe = queue.client.pipeline(transaction=False)
    pipe.time()
    for task_id in ids:
        pipe.exists(queue.task_key(task_id))
        pipe.zscore(queue.tasks_key, task_id)
    (seconds, micros), *found = pipe.execute()
    now = seconds + micros / 1e6
    return [task_id for task_id, recorded, queued_at
            in zip(ids, found[::2], found[1::2], strict=True)
            if recorded or waits_unrecorded(queue, queued_at, now)]


def shard_of_dependencies(sharded, messages):
    """The shard of ``sharded`` that knows the tasks ``messages`` wait for
    (beside those of the same batch), or None when they wait for none;
    UnknownDependency when no one shard knows them all."""
    earlier, wanted = set(), []
    for message in messages:
        task_id, after = dependencies_of(sharded.codec, message)
        wanted += [dependency for dependency in after
                   if dependency not in earlier and dependency not in wanted]
        earlier.add(identity_of(message)[0])
    if not wanted:
        return None
    for shard in sharded.shards:
        with shard._talking:
            if len(known(shard, wanted)) == len(wanted):
                return shard
    raise UnknownDependency(
        f'the tasks {", ".join(wanted)} that a task of sharded queue '
        f'{sharded.name!r} is to run after are not all known to one of its '
        f'shards: it can wait for tasks of the same transaction, or of '
        f'one earlier transaction (unknown: never queued there, or their '
        f'status records expired)')
