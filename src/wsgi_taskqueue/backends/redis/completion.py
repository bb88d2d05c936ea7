"""What settling a task sets off on Redis: its result kept, its
completion callbacks made pending — in the Lua script that takes it out of
its processing list, and only if it was there (``backends/rules.py`` is
the plain reading of these rules).

A task that keeps no result and has no callbacks is settled as before, by
RESERVE's acknowledgement or BURY (``consuming_scripts.py``); one that
has either costs one more round trip, through SETTLE.  Its result is kept
under ``P:{Q}:result:<id>`` (a string, expiring after ``result_ttl``; see
the key table in the package docstring).
"""
from __future__ import annotations

from .dependencies import DEPENDENCIES
from .jobs import JOBS
from .scripts import PRELUDE

__all__ = ['Settlements', 'SETTLE']

#: Make the messages ARGV[from .. from + n - 1] pending, each with a new
#: status record: a settled task's callbacks.
QUEUE_CALLBACKS = r"""
local function queue_callbacks(base, ttl, t, pending, from, n)
  for j = from, from + n - 1 do
    redis.call('LPUSH', pending, ARGV[j])
    local at = t + (j - from + 1) / 1000000
    local id = new_status(base, ttl, at, ARGV[j], 'queued')
    if id then redis.call('ZADD', base .. 'tasks', at, id) end
  end
end
"""

#: Settle finished messages (done: acknowledged; dead: buried), keeping
#: each one's result and releasing its callbacks.  Idempotent: a message
#: no longer in the slot is skipped, with all it would have set off.
#: KEYS: processing (the slot's), pending, dead.
#: ARGV: status TTL, result TTL, most dead letters kept, count, then per
#: message: 'done' or 'dead', message, dead-letter record ('' when done),
#: task id ('' to leave the status log alone), attempt, status line,
#: duration (ms), result ('' for none), count of callbacks, callbacks.
#: Returns how many were settled.
SETTLE = PRELUDE + DEPENDENCIES + JOBS + QUEUE_CALLBACKS + r"""
local t = now()
local base = base_of(KEYS[2])
local ttl = tonumber(ARGV[1])
local result_ttl = tonumber(ARGV[2])
local i = 5
local settled = 0
for _ = 1, tonumber(ARGV[4]) do
  local kind, message, record, id = ARGV[i], ARGV[i + 1], ARGV[i + 2],
                                    ARGV[i + 3]
  local attempt, status, result = ARGV[i + 4], ARGV[i + 5], ARGV[i + 7]
  local history = status .. '\t' .. t .. '\t' .. ARGV[i + 6]
  local callbacks = tonumber(ARGV[i + 8])
  local first = i + 9
  i = first + callbacks
  if redis.call('LREM', KEYS[1], -1, message) > 0 then
    settled = settled + 1
    if kind == 'dead' then
      bury(KEYS[3], record, tonumber(ARGV[3]))
    end
    if id ~= '' then
      set_status(base, ttl, t, id, 'state', kind, 'status', status,
                 'next', '', 'f', attempt, 'a' .. attempt, history)
      if kind == 'done' then set_status(base, ttl, t, id, 'finished', t) end
      if result ~= '' and result_ttl > 0 then
        redis.call('SET', base .. 'result:' .. id, result, 'EX', result_ttl)
      end
    end
    count(base, t, kind, 1)
    queue_callbacks(base, ttl, t, KEYS[2], first, callbacks)
    release(base, ttl, t, id, kind)
    if id ~= '' then job_settle(base, ttl, t, message, kind) end
  end
end
return settled
"""


def sets_off(report) -> bool:
    """Whether settling ``report``'s task does more than the status log:
    it keeps a result or releases callbacks."""
    return report is not None and (report.result is not None
                                   or bool(report.then))


class Settlements:
    """SETTLE for one Redis queue."""

    def __init__(self, queue, register):
        self.queue = queue
        self._settle = register(SETTLE)

    def ack(self, slot, done, retried) -> list:
        """Settle those of ``done`` that set something off; return the
        others, for RESERVE's plain acknowledgement.  ``retried`` runs an
        idempotent operation (once more after a broken connection)."""
        rich = [(message, report) for message, report in done
                if sets_off(report)]
        if not rich:
            return done
        self.run(slot, [('done', message, b'', report)
                        for message, report in rich], retried)
        return [entry for entry in done if not sets_off(entry[1])]

    def bury(self, slot, message, record, report, retried) -> None:
        self.run(slot, [('dead', message, record, report)], retried)

    def run(self, slot, entries, retried) -> None:
        queue = self.queue
        args = [queue.status_ttl, queue.result_ttl, queue.dead_max,
                len(entries)]
        for kind, message, record, report in entries:
            args += [kind, message, record, report.task_id, report.attempt,
                     report.status, f'{report.duration * 1000:.1f}',
                     report.result or '', len(report.then), *report.then]
        retried(self._settle, keys=[queue.processing_key(slot),
                                    queue.pending_key, queue.dead_key],
                args=args)

    def result(self, task_id: str) -> str | None:
        found = self.queue.client.get(f'{self.queue.base}result:{task_id}')
        return None if found is None else found.decode('utf-8', 'replace')
