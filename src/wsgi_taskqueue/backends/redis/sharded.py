"""One queue over several hash tags: for a queue hotter than one Redis
Cluster primary can take (docs/scale.rst, "One queue hotter than one
primary").

A sharded queue ``Q`` with N shards is N Redis queues whose keys carry
the hash tags ``{Q~0}`` ... ``{Q~N-1}``, so that a Cluster spreads them
over its primaries; their messages carry the name ``Q``, as any task of
``Q`` does. A transaction's tasks for ``Q`` go to one shard, chosen by
its batch id (so its stage, promotion and discard meet in one place, and
its tasks stay in order), or by the job its tasks belong to: a job lives
on the shard its id hashes to, with all its tasks. A consumer thread
takes from every shard in turn and waits on one of its own (thread ``n``
on shard ``n - 1`` modulo N): a consumer of at least N threads waits on
all of them; with fewer, a task in a shard nobody waits on is taken
within ``poll_interval``. Each message taken is acknowledged, retried or
buried in the shard it came from.
Leases, sweeps and the operations span every shard; counts, listings and
throughput add them up.
"""
from __future__ import annotations

import inspect
import threading
import zlib

from zope.interface import implementer

from ...interfaces import IQueueBackend
from ..base import QueueBase
from . import RedisQueue
from .dependencies import shard_of_dependencies
from .jobs import job_shard, shard_of_jobs

__all__ = ['ShardedRedisQueue']

#: The settings of every queue (QueueBase's), as opposed to Redis's.
_QUEUE_OPTIONS = frozenset(
    inspect.signature(QueueBase.__init__).parameters) - {'self', 'name'}


@implementer(IQueueBackend)
class ShardedRedisQueue(QueueBase):
    """See the module docstring and IQueueBackend."""

    shared = True
    #: What ``status`` calls its type.
    kind = 'redis'

    def __init__(self, name: str = 'default', *, shards: int, **settings):
        if shards < 2:
            raise ValueError(f'a sharded queue needs 2 shards at least, not '
                             f'{shards}')
        self.shards = [RedisQueue(name, shard=number, **settings)
                       for number in range(shards)]
        for shard in self.shards[1:]:  # one name per queue, not per shard
            shard.names = self.shards[0].names
        self._taken = threading.local()
        self.max_connections = self.shards[0].max_connections
        #: Batches staged on another shard than their id's (their tasks
        #: wait for tasks of that shard), until promoted or discarded.
        self._placed: dict[str, RedisQueue] = {}
        super().__init__(name, **{key: value for key, value
                                  in settings.items()
                                  if key in _QUEUE_OPTIONS})
        self.where = (f'{self.shards[0].where}, {shards} shards '
                      f'{{{name}~0}}..{{{name}~{shards - 1}}}')

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value
        for shard in getattr(self, 'shards', ()):
            shard.name = value

    # -- the transaction's side ------------------------------------------

    def _shard_of(self, batch_id: str) -> RedisQueue:
        placed = self._placed.get(batch_id)
        if placed is not None:
            return placed
        return self.shards[zlib.crc32(batch_id.encode()) % len(self.shards)]

    def stage_batches(self, batch_id, batches):
        messages = batches[self]
        shard = self._shard_of(batch_id)
        home = shard_of_jobs(self, messages, shard_of_dependencies(
            self, messages))
        if home is not None and home is not shard:
            # Its tasks wait for tasks of another shard, or belong to a
            # job of another shard: staged there, as a task is released
            # (and counted in its job) by the script that settles it.
            self._placed[batch_id] = shard = home
        shard.stage_batches(batch_id, {shard: messages})

    def promote_batches(self, batch_id, queues, failed=None):
        shard = self._shard_of(batch_id)
        self._placed.pop(batch_id, None)
        shard.promote_batches(batch_id, [shard], failed)

    def discard(self, batch_id):
        self._shard_of(batch_id).discard(batch_id)
        self._placed.pop(batch_id, None)

    # -- the consumer's side ---------------------------------------------

    def _origins(self) -> dict:
        """This thread's messages taken and not yet finished -> shard."""
        return self._taken.__dict__.setdefault('origins', {})

    def _by_shard(self, done) -> dict:
        origins = self._origins()
        grouped: dict = {}
        for message, report in done:
            grouped.setdefault(origins.pop(message, None), []).append(
                (message, report))
        unknown = grouped.pop(None, [])
        for shard in self.shards:  # not taken by this thread: every shard
            if unknown:
                grouped.setdefault(shard, []).extend(unknown)
        return grouped

    def _home(self, slot: str) -> int:
        number = slot.rpartition('#')[2]
        return (int(number) - 1 if number.isdigit()
                else zlib.crc32(slot.encode())) % len(self.shards)

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        for shard, finished in self._by_shard(done).items():
            shard.ack(slot, finished)
        if recover:
            for shard in self.shards:
                shard.reserve(slot, 0, 0, recover=True)
        home = self._home(slot)
        order = self.shards[home:] + self.shards[:home]
        taken, shard = [], order[0]
        if limit:
            for shard in order:
                taken = shard.reserve(slot, limit, 0)
                if taken:
                    break
            else:
                shard = order[0]
                taken = shard.reserve(slot, limit, timeout)
        origins = self._origins()
        for message in taken:
            origins[message] = shard
        return taken

    def interrupt(self, consumer):
        for shard in self.shards:
            shard.interrupt(consumer)

    def ack(self, slot, done):
        for shard, finished in self._by_shard(done).items():
            shard.ack(slot, finished)

    def _origin(self, message) -> RedisQueue:
        return self._origins().pop(message, self.shards[0])

    def retry(self, slot, message, new_message, due, report):
        self._origin(message).retry(slot, message, new_message, due, report)

    def bury(self, slot, message, record, report=None):
        self._origin(message).bury(slot, message, record, report)

    def requeue_processing(self, consumer, max_deliveries=0):
        totals = [shard.requeue_processing(consumer, max_deliveries)
                  for shard in self.shards]
        return tuple(map(sum, zip(*totals, strict=True)))

    def acquire(self, consumer, token, ttl, info=None, gone_pid=None):
        # On every shard, even after a refusal: each holds a lease.
        held = [shard.acquire(consumer, token, ttl, info, gone_pid)
                for shard in self.shards]
        return all(held)

    def release(self, consumer, token):
        for shard in self.shards:
            shard.release(consumer, token)

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        for shard in self.shards:
            part = shard.sweep(grace, max_deliveries)
            report['consumers'] += [name for name in part['consumers']
                                    if name not in report['consumers']]
            report['requeued'] += part['requeued']
            report['dead'] += part['dead']
            report['batches'] += part['batches']
        return report

    # -- operations ------------------------------------------------------

    def counts(self):
        total = {'pending': 0, 'delayed': 0, 'dead': 0, 'staged': 0,
                 'processing': {}}
        for shard in self.shards:
            counts = shard.counts()
            for key in ('pending', 'delayed', 'dead', 'staged'):
                total[key] += counts[key]
            for name, count in counts['processing'].items():
                total['processing'][name] = (
                    total['processing'].get(name, 0) + count)
        return total

    def consumers(self):
        # Every shard holds the same leases; tasks in flight add up.
        result = self.shards[0].consumers()
        in_flight = self.counts()['processing']
        for consumer in result:
            consumer['in_flight'] = in_flight.get(consumer['name'], 0)
        return result

    def task_status(self, task_id):
        for shard in self.shards:
            found = shard.task_status(task_id)
            if found is not None:
                return found
        return None

    def job_status(self, job_id):
        return job_shard(self, job_id).job_status(job_id)

    def job_list(self, start=0, count=50):
        found = [job for shard in self.shards
                 for job in shard.job_list(0, start + count)]
        found.sort(key=lambda job: (-(job['created'] or 0), job['id']))
        return found[start:start + count]

    def task_result(self, task_id):
        for shard in self.shards:
            found = shard.task_result(task_id)
            if found is not None:
                return found
        return None

    def tasks(self, state=None, start=0, count=50):
        found = [record for shard in self.shards
                 for record in shard.tasks(state, 0, start + count)]
        found.sort(key=lambda record: record['created'] or 0, reverse=True)
        return found[start:start + count]

    def throughput(self, minutes=15):
        total = self.shards[0].throughput(minutes)
        for shard in self.shards[1:]:
            for into, minute in zip(total, shard.throughput(minutes),
                                    strict=True):
                for outcome, count in minute.items():
                    if outcome != 'minute':
                        into[outcome] = into.get(outcome, 0) + count
        return total

    def dead_letters(self, start=0, stop=-1):
        letters = [letter for shard in self.shards
                   for letter in shard.dead_letters()]
        return letters[start:None if stop == -1 else stop + 1]

    def requeue_dead(self, record, message):
        return any(shard.requeue_dead(record, message)
                   for shard in self.shards)

    def purge_dead(self):
        return sum(shard.purge_dead() for shard in self.shards)

    def purge(self):
        return sum(shard.purge() for shard in self.shards)

    def requeue_delayed(self):
        return sum(shard.requeue_delayed() for shard in self.shards)

    def cancel(self, task_id):
        for shard in self.shards:
            outcome = shard.cancel(task_id)
            if outcome is not None:
                return outcome
        return None

    def clients(self) -> dict:
        """Connections to the servers of the shards (each counted once)."""
        total: dict = {}
        seen = set()
        for shard in self.shards:
            if shard.pool in seen:
                continue
            seen.add(shard.pool)
            for use, count in shard.clients().items():
                total[use] = total.get(use, 0) + count
        return total

    def reset(self):
        for shard in self.shards:
            shard.reset()

    def close(self):
        for shard in self.shards:
            shard.close()
