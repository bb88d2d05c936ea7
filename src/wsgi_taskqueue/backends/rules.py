"""What settling a task sets off, for the in-process queues: the result
kept, the tasks released (completion callbacks, tasks waiting for it:
``dependencies.py`` states the rules).

The Redis queue does the same in a Lua script (``redis/completion.py``)
and the SQL queue in the transaction that settles the task
(``sql/results.py``); this module is the plain reading of those rules.
Everything here runs under the queue's lock, in the same step that takes
the task out of its processing list, and only if it was there.
"""
from __future__ import annotations

import time

from ..errors import DecodeError
from .dependencies import DOOMED_SLOT, DYING, doomed_reason

__all__ = ['Settlements']


class Settlements:
    """The results of one in-process queue, and the release of what a
    settled task lets go."""

    def __init__(self, queue):
        self.queue = queue
        #: task id -> (expiry, stored result), oldest first.
        self._results: dict[str, tuple[float, str]] = {}
        #: Parked tasks: id -> [message, ids of the tasks it still waits
        #: for]; and task id -> the ids of the tasks waiting for it.
        self._waiting: dict[str, list] = {}
        self._dependents: dict[str, list[str]] = {}

    def settled(self, report, outcome: str) -> None:
        """A task left its processing list (``outcome``: done or dead) as
        ``report`` (None: not a task) says: keep its result, queue its
        callbacks, release what waits for it."""
        if report is None:
            return
        if report.result is not None and self.queue.result_ttl:
            self._results.pop(report.task_id, None)
            self._results[report.task_id] = (
                time.time() + self.queue.result_ttl, report.result)
            self._expire()
        if report.then:
            self.queue._queue(report.then)
        self.release(report.task_id, outcome)

    def parked(self, message: bytes, task) -> bool:
        """Whether ``task`` (of ``message``, being queued) waits for
        others: then it is parked, or dead-lettered when one of them died
        already.  A dependency whose record expired counts as done."""
        after = task.options.after if task is not None else None
        if not after:
            return False
        left = set()
        for dependency in after:
            fields = self.queue._log.fields(dependency) or {}
            state = fields.get('state')
            if state in DYING:
                self.queue._log.new(task, 'waiting')
                self._doom(message, doomed_reason(dependency, state))
                return True
            if state is not None and state != 'done':
                left.add(dependency)
        if not left:
            return False
        self._waiting[task.id] = [message, left]
        for dependency in left:
            self._dependents.setdefault(dependency, []).append(task.id)
        self.queue._log.new(task, 'waiting')
        return True

    def release(self, task_id: str, state: str) -> None:
        """``task_id`` is done, dead, cancelled or purged: the tasks
        waiting for it count it done, or die with it; its job counts it
        (and may complete)."""
        completed = self.queue.jobs.settled(task_id, state)
        if completed:
            self.queue._queue(completed)
        for waiting in self._dependents.pop(task_id, ()):
            entry = self._waiting.get(waiting)
            if entry is None:
                continue  # cancelled, or condemned by another
            if state == 'done':
                entry[1].discard(task_id)
                if not entry[1]:
                    del self._waiting[waiting]
                    self.queue._queue([entry[0]])
            else:
                del self._waiting[waiting]
                self._doom(entry[0], doomed_reason(task_id, state))

    def cancel(self, task_id: str) -> bool:
        """Cancel ``task_id`` if it is parked."""
        if self._waiting.pop(task_id, None) is None:
            return False
        self.queue._log.update(task_id, state='cancelled')
        self.release(task_id, 'cancelled')
        return True

    def _doom(self, message: bytes, reason: str) -> None:
        """Dead-letter a task that will not run because of a dependency,
        with its record and its on_failure callback (as any task buried
        unrun), and so what waits for it."""
        self.queue._processing[DOOMED_SLOT].append(message)
        try:
            task = self.queue.codec.decode(message)
        except DecodeError:
            task = None
        self.queue.bury_unusable(DOOMED_SLOT, message, reason, task)

    def result(self, task_id: str) -> str | None:
        self._expire()
        found = self._results.get(task_id)
        return None if found is None else found[1]

    def reset(self) -> None:
        for kept in (self._results, self._waiting, self._dependents):
            kept.clear()

    def _expire(self) -> None:
        """Forget results past their time (kept in the order stored, with
        one TTL: the oldest expire first)."""
        now = time.time()
        for task_id, (expiry, _) in list(self._results.items()):
            if expiry > now:
                break
            del self._results[task_id]
