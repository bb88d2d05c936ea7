"""An in-process queue: the zero-configuration default and the test twin.

Volatile (tasks live as long as the process) and private to one process:
only consumers in the same process see it.  It keeps the same life cycle
as the Redis queue (staged, pending, processing, delayed, dead), so code
written against it behaves the same in production.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import threading
import time

from zope.interface import implementer

from ..deadletter import DeadLetter
from ..interfaces import IQueueBackend
from ..status import MemoryStatusLog
from .base import REPLAYED, QueueBase, owner_of, peek, unfinished_reason
from .dependencies import check_known
from .jobs import JobBook
from .local_operations import LocalOperations
from .names import NameBook, claimed
from .priority import PendingLine
from .rules import Settlements

__all__ = ['LocalQueue']


@implementer(IQueueBackend)
class LocalQueue(LocalOperations, QueueBase):
    """See IQueueBackend."""

    def __init__(self, name: str = 'default', **options):
        super().__init__(name, **options)
        self._changed = threading.Condition()
        self._staged: dict[str, list[bytes]] = {}
        self._pending = PendingLine()
        self._processing: dict[str, list[bytes]] = collections.defaultdict(list)
        self._delayed: list[tuple[float, int, bytes]] = []
        # Newest at the left; past dead_max the oldest drop off the right.
        self._dead: collections.deque[bytes] = collections.deque()
        self._interruptions: collections.Counter = collections.Counter()
        self._staged_at: dict[str, float] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._deliveries: collections.Counter = collections.Counter()
        self._sequence = itertools.count()
        self._info: dict[str, dict] = {}
        self._log = MemoryStatusLog(self)
        self._settlements = Settlements(self)
        self.names = NameBook(self)
        self.jobs = JobBook(self)

    def stage_batches(self, batch_id, batches):
        [messages] = batches.values()
        messages = claimed(self, batch_id, messages, self.names)
        with self._changed:
            check_known(self, messages, lambda ids: [
                task_id for task_id in ids if self._log.get(task_id)])
            self.jobs.check(messages)
            self._staged[batch_id] = list(messages)
            self._staged_at[batch_id] = time.time()

    def promote_batches(self, batch_id, queues, failed=None):
        with self._changed:
            self._queue(self.jobs.take(self._staged.pop(batch_id, ())))
            self._staged_at.pop(batch_id, None)
        self.names.settle(batch_id)

    def discard(self, batch_id):
        with self._changed:
            self._staged.pop(batch_id, None)
            self._staged_at.pop(batch_id, None)
        self.names.release(batch_id)

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        deadline = time.monotonic() + timeout
        owner = owner_of(slot)
        with self._changed:
            processing = self._processing[slot]
            for message, report in done:
                if message in processing:
                    processing.remove(message)
                    self._log.outcome(report, 'done', 'done',
                                      finished=time.time())
                    self._settlements.settled(report, 'done')
            if recover:
                self._pending.put_first(processing)
                processing.clear()
            if limit == 0:
                return []
            interruptions = self._interruptions[owner]
            while True:
                self._move_due_retries()
                if self._pending:
                    count = min(limit, len(self._pending))
                    taken = [self._pending.popleft() for _ in range(count)]
                    processing.extend(taken)
                    taken = [message for message in taken
                             if self._runs(message, slot)]
                    if taken:
                        return taken
                    continue
                wait = deadline - time.monotonic()
                if self._interruptions[owner] != interruptions or wait <= 0:
                    return []
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - time.time())
                self._changed.wait(max(wait, 0.001))

    def _runs(self, message, slot) -> bool:
        """Mark a reserved message running, unless it is a replay of an
        attempt that finished: that one is buried."""
        task = peek(message)
        if task is not None:
            status = self._log.fields(task.id)
            if status is not None and task.attempt <= int(status.get('f', 0)):
                self.bury_unusable(slot, message, REPLAYED, recorded=False)
                return False
        self._log.update(task and task.id, state='running', consumer=slot,
                         started=time.time(), attempt=task and task.attempt)
        return True

    def interrupt(self, consumer):
        with self._changed:
            self._interruptions[consumer] += 1
            self._changed.notify_all()

    def ack(self, slot, done):
        self.reserve(slot, 0, 0, done)

    def retry(self, slot, message, new_message, due, report):
        with self._changed:
            if not self._take_back(slot, message):
                return
            heapq.heappush(self._delayed,
                           (due, next(self._sequence), new_message))
            self._log.outcome(report, 'retrying', 'retried', next=due)
            self._changed.notify_all()

    def bury(self, slot, message, record, report=None):
        with self._changed:
            if not self._take_back(slot, message):
                return
            self._dead.appendleft(record)
            while len(self._dead) > self.dead_max:
                self._dead.pop()
            self._log.outcome(report, 'dead', 'dead')
            self._settlements.settled(report, 'dead')

    def requeue_processing(self, consumer, max_deliveries=0):
        requeued = dead = 0
        with self._changed:
            for slot in [s for s in self._processing
                         if consumer in (s, owner_of(s))]:
                moved, buried = self._requeue(slot, max_deliveries)
                requeued += moved
                dead += buried
        return requeued, dead

    def acquire(self, consumer, token, ttl, info=None, gone_pid=None):
        with self._changed:
            owner, expiry = self._leases.get(consumer, (None, 0.0))
            held = self._info.get(consumer, {})
            gone = (gone_pid is not None and held.get('pid') == gone_pid
                    and held.get('host') == (info or {}).get('host'))
            if owner not in (None, token) and expiry > time.monotonic() \
                    and not gone:
                return False
            self._leases[consumer] = (token, time.monotonic() + ttl)
            self._info[consumer] = dict(info or {}, lease=ttl)
            return True

    def release(self, consumer, token):
        with self._changed:
            if self._leases.get(consumer, (None,))[0] == token:
                del self._leases[consumer]
                self._info.pop(consumer, None)

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        with self._changed:
            now = time.monotonic()
            for slot in sorted(self._processing):
                consumer = owner_of(slot)
                if self._leases.get(consumer, (None, 0.0))[1] > now:
                    continue
                requeued, dead = self._requeue(slot, max_deliveries)
                if requeued or dead:
                    if consumer not in report['consumers']:
                        report['consumers'].append(consumer)
                    report['requeued'] += requeued
                    report['dead'] += dead
            old = time.time() - grace
            report['batches'] = [batch for batch, staged_at
                                 in self._staged_at.items() if staged_at < old]
            self._expire_dead(time.time() - self.dead_ttl)
        for batch in report['batches']:
            self.promote(batch)
        return report

    def close(self):
        with self._changed:
            for consumer in list(self._interruptions):
                self._interruptions[consumer] += 1
            self._changed.notify_all()

    def _take_back(self, slot, message) -> bool:
        """Remove a message from its slot; False if it was not there (a
        sweep requeued it meanwhile)."""
        processing = self._processing[slot]
        if message not in processing:
            return False
        processing.remove(message)
        return True

    def _in_flight(self) -> dict:
        totals: dict = {}
        for slot, messages in self._processing.items():
            totals[owner_of(slot)] = totals.get(owner_of(slot), 0) + len(
                messages)
        return totals

    def _requeue(self, slot, max_deliveries):
        """Put the unfinished messages of a slot back at the head of the
        line, burying those found unfinished ``max_deliveries`` times."""
        requeued, condemned = [], []
        for message in list(self._processing[slot]):
            self._deliveries[message] += 1
            deliveries = self._deliveries[message]
            if max_deliveries and deliveries >= max_deliveries:
                condemned.append((message, deliveries))
                continue
            self._processing[slot].remove(message)
            requeued.append(message)
            task = peek(message)
            self._log.update(task and task.id, state='queued', consumer='')
        self._pending.put_first(requeued)
        for message, deliveries in condemned:
            self.bury_unusable(slot, message, unfinished_reason(deliveries))
        if not self._processing[slot]:
            del self._processing[slot]
        self._changed.notify_all()
        return len(requeued), len(condemned)

    def _expire_dead(self, oldest: float) -> None:
        """Forget dead letters that died before ``oldest``, and those whose
        time cannot be read."""
        while self._dead:
            dead_at = DeadLetter.decode(self._dead[-1]).dead_at  # or None
            if dead_at is not None and dead_at >= oldest:
                return
            self._dead.pop()

    def _queue(self, messages):
        """Make messages pending, each with a new status record; those
        scheduled for later (``countdown``, ``eta``) wait among the
        delayed ones until due, those waiting for others are parked."""
        now = time.time()
        for message in messages:
            task = peek(message)
            if self._settlements.parked(message, task):
                continue
            due = task.options.due if task is not None else None
            if due is not None and due > now:
                heapq.heappush(self._delayed,
                               (due, next(self._sequence), message))
                self._log.new(task, 'scheduled')
                self._log.update(task.id, next=due)
            else:
                self._pending.append(message)
                self._log.new(task, 'queued')
        self._changed.notify_all()

    def _move_due_retries(self):
        """Retries that fell due go to the head of the line, earliest due
        first."""
        now = time.time()
        due = []
        while self._delayed and self._delayed[0][0] <= now:
            due.append(heapq.heappop(self._delayed)[2])
        self._pending.put_first(due)
