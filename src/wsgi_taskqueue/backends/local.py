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
from ..errors import DecodeError
from ..interfaces import IQueueBackend
from ..task import Codec
from .base import QueueBase

__all__ = ['LocalQueue']


@implementer(IQueueBackend)
class LocalQueue(QueueBase):
    """See IQueueBackend."""

    def __init__(self, name: str = 'default', **options):
        super().__init__(name, **options)
        self._changed = threading.Condition()
        self._staged: dict[str, list[bytes]] = {}
        self._pending: collections.deque[bytes] = collections.deque()
        self._processing: dict[str, list[bytes]] = collections.defaultdict(list)
        self._delayed: list[tuple[float, int, bytes]] = []
        self._dead: collections.deque[bytes] = collections.deque()
        self._interruptions: collections.Counter = collections.Counter()
        self._staged_at: dict[str, float] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._deliveries: collections.Counter = collections.Counter()
        self._sequence = itertools.count()

    def stage_batches(self, batch_id, batches):
        [messages] = batches.values()
        with self._changed:
            self._staged[batch_id] = list(messages)
            self._staged_at[batch_id] = time.time()

    def promote_batches(self, batch_id, queues):
        with self._changed:
            self._pending.extend(self._staged.pop(batch_id, ()))
            self._staged_at.pop(batch_id, None)
            self._changed.notify_all()

    def push_batches(self, batches):
        [messages] = batches.values()
        with self._changed:
            self._pending.extend(messages)
            self._changed.notify_all()

    def discard(self, batch_id):
        with self._changed:
            self._staged.pop(batch_id, None)
            self._staged_at.pop(batch_id, None)

    def reserve(self, consumer, limit, timeout, done=()):
        deadline = time.monotonic() + timeout
        with self._changed:
            processing = self._processing[consumer]
            for message in done:
                processing.remove(message)
            interruptions = self._interruptions[consumer]
            while True:
                self._move_due_retries()
                if self._pending:
                    count = min(limit, len(self._pending))
                    taken = [self._pending.popleft() for _ in range(count)]
                    self._processing[consumer].extend(taken)
                    return taken
                wait = deadline - time.monotonic()
                if self._interruptions[consumer] != interruptions or wait <= 0:
                    return []
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - time.time())
                self._changed.wait(max(wait, 0.001))

    def interrupt(self, consumer):
        with self._changed:
            self._interruptions[consumer] += 1
            self._changed.notify_all()

    def ack(self, consumer, messages):
        with self._changed:
            processing = self._processing[consumer]
            for message in messages:
                processing.remove(message)

    def retry(self, consumer, message, new_message, due):
        with self._changed:
            self._processing[consumer].remove(message)
            heapq.heappush(self._delayed,
                           (due, next(self._sequence), new_message))
            self._changed.notify_all()

    def bury(self, consumer, message, record):
        with self._changed:
            self._processing[consumer].remove(message)
            self._dead.appendleft(record)

    def requeue_processing(self, consumer, max_deliveries=0):
        with self._changed:
            return self._requeue(consumer, max_deliveries)

    def acquire(self, consumer, token, ttl):
        with self._changed:
            owner, expiry = self._leases.get(consumer, (None, 0.0))
            if owner not in (None, token) and expiry > time.monotonic():
                return False
            self._leases[consumer] = (token, time.monotonic() + ttl)
            return True

    def release(self, consumer, token):
        with self._changed:
            if self._leases.get(consumer, (None,))[0] == token:
                del self._leases[consumer]

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        with self._changed:
            now = time.monotonic()
            for consumer in sorted(self._processing):
                if self._leases.get(consumer, (None, 0.0))[1] > now:
                    continue
                requeued, dead = self._requeue(consumer, max_deliveries)
                if requeued or dead:
                    report['consumers'].append(consumer)
                    report['requeued'] += requeued
                    report['dead'] += dead
            old = time.time() - grace
            report['batches'] = [batch for batch, staged_at
                                 in self._staged_at.items() if staged_at < old]
        for batch in report['batches']:
            self.promote(batch)
        return report

    def counts(self):
        with self._changed:
            return {
                'pending': len(self._pending),
                'delayed': len(self._delayed),
                'dead': len(self._dead),
                'staged': len(self._staged),
                'processing': {name: len(messages) for name, messages
                               in self._processing.items() if messages},
            }

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
            self._changed.notify_all()
            return True

    def purge_dead(self):
        with self._changed:
            count = len(self._dead)
            self._dead.clear()
            return count

    def close(self):
        with self._changed:
            for consumer in list(self._interruptions):
                self._interruptions[consumer] += 1
            self._changed.notify_all()

    def _requeue(self, consumer, max_deliveries):
        """Put ``consumer``'s unfinished messages back at the head of the
        line, burying those found unfinished ``max_deliveries`` times."""
        leftovers = self._processing.pop(consumer, [])
        requeued = []
        for message in leftovers:
            self._deliveries[message] += 1
            deliveries = self._deliveries[message]
            if max_deliveries and deliveries >= max_deliveries:
                self._dead.appendleft(_unfinished_record(
                    self.name, message, deliveries))
            else:
                requeued.append(message)
        self._pending.extendleft(reversed(requeued))
        self._changed.notify_all()
        return len(requeued), len(leftovers) - len(requeued)

    def _move_due_retries(self):
        now = time.time()
        while self._delayed and self._delayed[0][0] <= now:
            self._pending.appendleft(heapq.heappop(self._delayed)[2])


def _unfinished_record(queue: str, message: bytes, deliveries: int) -> bytes:
    try:
        task = Codec().decode_unverified(message)
    except DecodeError:
        task = None
    return DeadLetter.of(
        queue, message, task, None,
        f'delivered {deliveries} times without finishing: its consumer '
        f'stopped or died each time', task.attempt if task else 0).encode()
