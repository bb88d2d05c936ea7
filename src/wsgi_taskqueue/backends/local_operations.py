"""What operators do to an in-process queue: counts, listings, status
records, dead letters, cancel, purge, requeue, reset (the read side and the
bulk writes of IQueueBackend), as ``redis/operations.py`` and
``sql/operations.py`` do for theirs."""
from __future__ import annotations

import heapq
import time

from ..status import MemoryStatusLog
from ..task import identity_of
from .base import peek

__all__ = ['LocalOperations']


class LocalOperations:
    """Mixed into LocalQueue, under its lock (``_changed``); see
    IQueueBackend."""

    def counts(self):
        with self._changed:
            return {
                'pending': len(self._pending),
                'delayed': len(self._delayed),
                'dead': len(self._dead),
                'staged': len(self._staged),
                'processing': {name: count for name, count
                               in self._in_flight().items() if count},
            }

    def consumers(self):
        now = time.monotonic()
        with self._changed:
            in_flight = self._in_flight()
            result = []
            for name, (_, expiry) in sorted(self._leases.items()):
                info = dict(self._info.get(name, {}))
                lease = info.pop('lease', 0)
                result.append(dict(
                    info, name=name, alive=expiry > now,
                    in_flight=in_flight.get(name, 0),
                    heartbeat_age=max(0.0, now - (expiry - lease))))
            return result

    def task_status(self, task_id):
        with self._changed:
            status = self._log.get(task_id)
            if status is not None:
                return status
            for messages in self._staged.values():
                for message in messages:
                    task = peek(message)
                    if task is not None and task.id == task_id:
                        log = MemoryStatusLog(self)
                        log.new(task, 'staged')
                        return log.get(task_id)
        return None

    def task_result(self, task_id):
        with self._changed:
            return self._settlements.result(task_id)

    def tasks(self, state=None, start=0, count=50):
        with self._changed:
            if state == 'staged':
                staged = MemoryStatusLog(self)
                for messages in self._staged.values():
                    for message in messages:
                        staged.new(peek(message), 'staged')
                return staged.list(start=start, count=count)
            return self._log.list(state, start, count)

    def throughput(self, minutes=15):
        with self._changed:
            return self._log.throughput(minutes)

    def dead_letters(self, start=0, stop=-1):
        with self._changed:
            records = list(self._dead)
        return records[start:None if stop == -1 else stop + 1]

    def requeue_dead(self, record, message):
        with self._changed:
            try:
                self._dead.remove(record)
            except ValueError:
                return False
            self._pending.append(message)
            task = peek(message)
            # Its attempts count from 1 again: none of them has finished.
            self._log.update(task and task.id, state='queued', attempt=1,
                             next='', f=0)
            self._changed.notify_all()
            return True

    def purge_dead(self):
        with self._changed:
            count = len(self._dead)
            self._dead.clear()
            return count

    def purge(self):
        with self._changed:
            purged = [*self._pending, *(m for _, _, m in self._delayed)]
            self._pending.clear()
            self._delayed.clear()
            for message in purged:
                task = peek(message)
                self._log.update(task and task.id, state='purged', next='')
                if task is not None:
                    self._settlements.release(task.id, 'purged')
            return len(purged)

    def cancel(self, task_id):
        with self._changed:
            for message in self._pending:
                if identity_of(message)[0] == task_id:
                    self._pending.remove(message)
                    return self._cancelled(task_id)
            for entry in self._delayed:
                if identity_of(entry[2])[0] == task_id:
                    self._delayed.remove(entry)
                    heapq.heapify(self._delayed)
                    return self._cancelled(task_id)
            if self._settlements.cancel(task_id):
                return 'cancelled'
            if any(identity_of(message)[0] == task_id
                   for held in self._processing.values() for message in held):
                return 'running'
            return None

    def _cancelled(self, task_id) -> str:
        self._log.update(task_id, state='cancelled', next='')
        self._settlements.release(task_id, 'cancelled')
        return 'cancelled'

    def job_status(self, job_id):
        with self._changed:
            return self.jobs.status(job_id)

    def job_list(self, start=0, count=50):
        with self._changed:
            return self.jobs.list(start, count)

    def requeue_delayed(self):
        with self._changed:
            due = [message for _, _, message in sorted(self._delayed)]
            self._delayed.clear()
            self._pending.put_first(due)
            for message in due:
                task = peek(message)
                self._log.update(task and task.id, state='queued', next='')
            self._changed.notify_all()
            return len(due)

    def reset(self):
        with self._changed:
            for collection in (self._staged, self._staged_at, self._pending,
                               self._processing, self._delayed, self._dead,
                               self._leases, self._info, self._deliveries):
                collection.clear()
            self._log = MemoryStatusLog(self)
            self._settlements.reset()
            self.jobs.clear()
        self.names.clear()
