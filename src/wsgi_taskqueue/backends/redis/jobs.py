"""Jobs of many tasks on Redis: the Lua functions that take a job's
markers in and count its tasks at promotion, and count a task in the
script that settles it (``backends/jobs.py`` states the rules, and is
their plain reading for the in-process queues).

Keys beside the queue's (package docstring):

- ``P:{Q}:job:<id>`` (hash): the job's record (label, state, total, done,
  failed, created, closed, completed, on_complete) and, until it
  completes, its on_complete message (``message``);
- ``P:{Q}:job:<id>:todo`` (set): the ids of its tasks counted in
  total and not settled yet; removing one is what counts it done or
  failed, so a task is counted once however often it is settled;
- ``P:{Q}:jobs`` (zset): job id -> time created, for listing.

The record and its set expire ``JOB_TTL`` seconds after their last change.
A task of no job costs the scripts one string search of its header.
"""
from __future__ import annotations

import zlib

from ...errors import InvalidTask
from ..jobs import JOB_TTL, job_fields, status_of

__all__ = ['JOBS', 'job_states', 'job_status', 'job_list', 'job_shard',
           'shard_of_jobs']

#: Put after the PRELUDE of the scripts that promote or settle tasks.
JOBS = r"""
local JOB_TTL = """ + str(JOB_TTL) + r"""

-- The job id of a message (its header's "jb"), or nil.
local function job_of(message)
  local at = string.find(message, ',"jb":"', 1, true)
  if not at then return nil end
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  if not second or at > second then return nil end
  return string.match(message, '^(%x+)"', at + 7)
end

local function job_touched(key)
  redis.call('EXPIRE', key, JOB_TTL)
  redis.call('EXPIRE', key .. ':todo', JOB_TTL)
end

-- Complete the job of ``key`` if it is closed and none of its tasks is
-- unfinished: its on_complete message becomes pending.
local function job_complete(base, ttl, t, key)
  local f = redis.call('HMGET', key, 'state', 'total', 'done', 'failed',
                       'message')
  if f[1] ~= 'closed' or tonumber(f[3]) + tonumber(f[4]) < tonumber(f[2])
  then return end
  redis.call('HSET', key, 'state', 'complete', 'completed', t)
  redis.call('HDEL', key, 'message')
  if f[5] then
    local pending = base .. 'pending'
    wake(pending, place(pending, f[5], false))
    local id = new_status(base, ttl, t, f[5], 'queued')
    if id then redis.call('ZADD', base .. 'tasks', t, id) end
  end
end

-- A message being promoted: a marker is taken in (true: it is not to be
-- queued); a task of an open or closed job is counted in its total.
local function job_take(base, ttl, t, message)
  local job = job_of(message)
  if not job then return false end
  local key = base .. 'job:' .. job
  if not string.find(message, ',"jm":{', 1, true) then
    local state = redis.call('HGET', key, 'state')
    if (state == 'open' or state == 'closed') and
        redis.call('SADD', key .. ':todo', id_of(message)) == 1 then
      redis.call('HINCRBY', key, 'total', 1)
      job_touched(key)
    end
    return false
  end
  local h = header(message)
  local marker = h and h.jm
  if type(marker) ~= 'table' then return true end
  if marker.op == 'open' and redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'state', 'open', 'total', 0, 'done', 0,
               'failed', 0, 'created', t)
    if type(marker.label) == 'string' then
      redis.call('HSET', key, 'label', marker.label)
    end
    if marker.cb == true then
      redis.call('HSET', key, 'on_complete', h.id, 'message', message)
    end
    redis.call('ZADD', base .. 'jobs', t, job)
    job_touched(key)
  elseif marker.op == 'close' and
      redis.call('HGET', key, 'state') == 'open' then
    redis.call('HSET', key, 'state', 'closed', 'closed', t)
    job_touched(key)
    job_complete(base, ttl, t, key)
  end
  return true
end

-- ``message`` was settled (``state``: done, dead, cancelled, purged):
-- counted in its job, once, which may complete it.
local function job_settle(base, ttl, t, message, state)
  local job = message and job_of(message)
  if not job then return end
  local key = base .. 'job:' .. job
  if redis.call('SREM', key .. ':todo', id_of(message)) == 0 then
    return
  end
  redis.call('HINCRBY', key, state == 'done' and 'done' or 'failed', 1)
  job_touched(key)
  job_complete(base, ttl, t, key)
end
"""


def job_key(queue, job_id: str) -> str:
    return f'{queue.base}job:{job_id}'


def job_states(queue, ids) -> list:
    """(id, state) of those of ``ids`` whose record ``queue`` keeps."""
    pipe = queue.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(job_key(queue, job_id), 'state')
    return [(job_id, state.decode()) for job_id, state
            in zip(ids, pipe.execute(), strict=True) if state is not None]


def job_status(queue, job_id: str) -> dict | None:
    fields = queue.client.hgetall(job_key(queue, job_id))
    if not fields.get(b'state'):
        return None
    return status_of(queue.name, job_id, _texts(fields))


def job_list(queue, start: int = 0, count: int = 50) -> list:
    """Newest first; index entries of expired records are dropped."""
    index = f'{queue.base}jobs'
    ids = [job_id.decode() for job_id in queue.client.zrevrange(
        index, start, start + count - 1)]
    pipe = queue.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(job_key(queue, job_id))
    found, gone = [], []
    for job_id, fields in zip(ids, pipe.execute(), strict=True):
        if fields.get(b'state'):
            found.append(status_of(queue.name, job_id, _texts(fields)))
        else:
            gone.append(job_id)
    if gone:
        queue.client.zrem(index, *gone)
    return found


def _texts(fields: dict) -> dict:
    return {key.decode(): value.decode('utf-8', 'replace')
            for key, value in fields.items() if key != b'message'}


def job_shard(sharded, job_id: str):
    """The shard of ``sharded`` a job lives on, with all its tasks."""
    return sharded.shards[zlib.crc32(job_id.encode()) % len(sharded.shards)]


def shard_of_jobs(sharded, messages, home):
    """The shard of the jobs ``messages`` name (or ``home``, the shard of
    the tasks they wait for, when they name none); InvalidTask when they
    need more than one shard."""
    shards = {job_shard(sharded, job_id) for _, job_id, _ in (
        job_fields(sharded.codec, message) for message in messages)
        if job_id is not None}
    if not shards:
        return home
    if len(shards) > 1 or home is not None and home not in shards:
        raise InvalidTask(
            f'the tasks of one transaction for sharded queue '
            f'{sharded.name!r} belong to jobs (or wait for tasks) of '
            f'different shards; on a sharded queue add to one job per '
            f'transaction')
    return shards.pop()
