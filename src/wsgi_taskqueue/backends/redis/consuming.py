"""The consumer's side of the Redis queue: take tasks (RESERVE, then a
blocking BLMOVE on a connection of the thread's own), acknowledge, retry
and bury them, hold a lease on the consumer's name, and sweep up after
consumers that are gone.  What a consumer does is most of the queue's
traffic and all of its waiting, so it is kept apart from what operators
look at (``operations.py``) and from the queue object and its
transaction side (the package).  The scripts it runs are
``consuming_scripts.py``'s.
"""
from __future__ import annotations

import json
import threading
import time

import redis

from ..base import REPLAYED, owner_of, unfinished_reason
from ..dependencies import DOOMED_SLOT
from . import consuming_scripts as scripts
from .completion import sets_off
from .connection import twice
from .dependencies import bury_doomed
from .priority import WOKEN
from .staging import SWEEP_STAGED
from .waiter import Waiter

__all__ = ['Consuming']


class Consuming:
    """Mixed into RedisQueue; see IQueueBackend."""

    def _init_consuming(self, register) -> None:
        """Register the consumer's scripts (``register`` is RedisQueue's,
        which adds the Cluster's migration guard), and keep track of the
        threads waiting in BLMOVE, for ``interrupt``."""
        self._reserve = register(scripts.RESERVE)
        self._mark_running = register(scripts.MARK_RUNNING)
        self._retry = register(scripts.RETRY)
        self._bury = register(scripts.BURY)
        self._acquire = register(scripts.ACQUIRE)
        self._release = register(scripts.RELEASE)
        self._requeue = register(scripts.REQUEUE)
        self._trim_status = register(scripts.TRIM_STATUS)
        self._expire_dead = register(scripts.EXPIRE_DEAD)
        self._sweep_staged = register(SWEEP_STAGED)
        self._waiters = threading.local()
        self._waiting: dict[str, set] = {}
        self._waiting_lock = threading.Lock()
        self._interruptions: dict[str, int] = {}

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        processing = self.processing_key(slot)
        owner = owner_of(slot)
        deadline = time.monotonic() + timeout
        interruptions = self._interruptions.get(owner, 0)
        with self._talking:
            seen = self._waiters.__dict__.setdefault('generations', {})
            generation = self.connections.generation
            if seen.get(slot, generation) != generation:
                # The primary changed (Sentinel): what this slot holds there
                # may differ from what the thread did (an acknowledgement
                # the old primary took and lost), so hand it all back.
                recover = True
            seen[slot] = generation
            done = self._settlements.ack(slot, done, twice)
            while True:
                taken, next_retry, replays = self._reserve(
                    keys=[self.pending_key, processing, self.delayed_key,
                          self.consumers_key],
                    args=[limit, slot, self.status_ttl,
                          '1' if recover else '0', len(done),
                          *_finished(done)])
                done, recover = (), False
                self._bury_replays(slot, replays)
                if taken or limit == 0:
                    return taken
                if replays:
                    continue
                wait = deadline - time.monotonic()
                if wait <= 0 or interruptions != self._interruptions.get(
                        owner, 0):
                    return []
                if next_retry is not None:
                    # BLMOVE does not wake for a retry falling due.
                    wait = min(wait, max(0.001, float(next_retry) - time.time()))
                mark = (self._mark_running, [processing],
                        [slot, self.status_ttl])
                try:
                    message, replay = self._waiter(slot, timeout).blmove(
                        self.pending_key, processing, wait, then=mark)
                except (redis.exceptions.AskError,
                        redis.exceptions.TryAgainError) as error:
                    self._redirected_wait(error)
                    continue
                if message is None:
                    continue
                if replay is None:  # the script was not run: run it now
                    replay = self._mark_running(keys=mark[1], args=mark[2])
                if replay == WOKEN:
                    continue
                if replay != 1:
                    return [message]
                self._bury_replays(slot, [message])

    def interrupt(self, consumer):
        with self._waiting_lock:
            self._interruptions[consumer] = (
                self._interruptions.get(consumer, 0) + 1)
            waiters = list(self._waiting.get(consumer, ()))
        with self._talking:
            for waiter in waiters:
                if waiter.client_id is not None:
                    self.topology.client_for(waiter.pool).client_unblock(
                        waiter.client_id)

    def ack(self, slot, done):
        # Acknowledging again what was acknowledged already does nothing.
        with self._talking:
            done = self._settlements.ack(slot, done, twice)
            twice(self._reserve, keys=[
                self.pending_key, self.processing_key(slot), self.delayed_key,
                self.consumers_key], args=[0, slot, self.status_ttl, '0',
                                           len(done), *_finished(done)])

    def retry(self, slot, message, new_message, due, report):
        with self._talking:
            twice(self._retry,
                   keys=[self.processing_key(slot), self.delayed_key],
                   args=[message, new_message, due, self.status_ttl,
                         *_report_args(report)])

    def bury(self, slot, message, record, report=None):
        with self._talking:
            if sets_off(report):
                self._settlements.bury(slot, message, record, report, twice)
            else:
                twice(self._bury,
                       keys=[self.processing_key(slot), self.dead_key],
                       args=[message, record, self.status_ttl,
                             *_report_args(report), self.dead_max])
            if slot != DOOMED_SLOT:
                # What waited for it (bury_doomed buries in rounds).
                bury_doomed(self)

    def requeue_processing(self, consumer, max_deliveries=0):
        requeued = dead = 0
        with self._talking:
            for slot in self._slots(consumer):
                moved, buried = self._requeue_list(slot, max_deliveries, False)
                requeued += moved
                dead += buried
        return requeued, dead

    def acquire(self, consumer, token, ttl, info=None, gone_pid=None):
        with self._talking:
            return bool(self._acquire(
                keys=[self.leases_key, self.owners_key, self.info_key],
                args=[consumer, token, ttl,
                      json.dumps(dict(info or {}, lease=ttl)),
                      '' if gone_pid is None else gone_pid]))

    def release(self, consumer, token):
        with self._talking:
            self._release(keys=[self.leases_key, self.owners_key,
                                self.info_key], args=[consumer, token])

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.smembers(self.consumers_key)
            pipe.time()
            slots, (seconds, micros) = pipe.execute()
            now = seconds + micros / 1e6
            live = {name.decode() for name in self.client.zrangebyscore(
                self.leases_key, now, '+inf')}
            for slot in sorted(slot.decode() for slot in slots):
                if owner_of(slot) in live:
                    continue
                requeued, dead = self._requeue_list(slot, max_deliveries, True)
                if requeued or dead:
                    if owner_of(slot) not in report['consumers']:
                        report['consumers'].append(owner_of(slot))
                    report['requeued'] += requeued
                    report['dead'] += dead
            for batch in self._sweep_staged(
                    keys=[self.staged_key, self.staged_seen_key],
                    args=[grace]):
                batch = batch.decode()
                self.promote(batch)
                report['batches'].append(batch)
            self._trim_status_index(now)
            bury_doomed(self)
            self._expire_dead(keys=[self.dead_key], args=[now - self.dead_ttl])
        return report

    def _requeue_list(self, slot, max_deliveries, only_if_gone):
        requeued, condemned = self._requeue(
            keys=[self.processing_key(slot), self.pending_key,
                  self.leases_key, self.owners_key, self.consumers_key,
                  self.info_key],
            args=[slot, max_deliveries, '1' if only_if_gone else '0',
                  self.status_ttl, owner_of(slot)])
        for message, deliveries in zip(condemned[::2], condemned[1::2],
                                       strict=True):
            self.bury_unusable(slot, message, unfinished_reason(deliveries))
        return requeued, len(condemned) // 2

    def _bury_replays(self, slot, replays):
        for message in replays:
            self.bury_unusable(slot, message, REPLAYED, recorded=False)

    def _slots(self, consumer):
        """The processing lists (slots) of ``consumer`` that Redis knows,
        or the one slot ``consumer`` names (``w#1``)."""
        if '#' in consumer:
            return [consumer]
        return sorted(slot for slot in (
            s.decode() for s in self.client.smembers(self.consumers_key))
            if owner_of(slot) == consumer)

    def _trim_status_index(self, now):
        """Keep the status log within status_ttl and status_max."""
        self._trim_status(keys=[self.tasks_key],
                          args=[now - self.status_ttl, self.status_max])

    def _waiter(self, slot: str, timeout: float) -> Waiter:
        """This thread's blocking connection for ``slot``, to the server
        that holds the queue now."""
        mine = self._waiters.__dict__.setdefault('by_slot', {})
        waiter = mine.get(slot)
        pool = self.pool
        generation = self.connections.generation
        if waiter is not None and (waiter.pool is not pool or
                                   waiter.generation != generation):
            # The slot moved (Cluster), or the primary (Sentinel).
            with self._waiting_lock:
                self._waiting[owner_of(slot)].discard(waiter)
            waiter.connection.disconnect()
            waiter = None
        if waiter is None:
            waiter = mine[slot] = Waiter(pool, self.socket_timeout + timeout,
                                         generation)
            with self._waiting_lock:
                self._waiting.setdefault(owner_of(slot), set()).add(waiter)
        return waiter

    def _redirected_wait(self, error) -> None:
        """A blocking wait met a slot that moved (MOVED: the next wait goes
        to its new server) or is moving (ASK, TRYAGAIN: wait a moment; the
        next reserve's script follows it)."""
        if isinstance(error, redis.exceptions.MovedError):
            self.route.moved(error)
        else:
            time.sleep(0.01)


def _report_args(report):
    """The status-log arguments of RETRY and BURY."""
    if report is None:
        return ['', 0, '', 0]
    return [report.task_id, report.attempt, report.status,
            f'{report.duration * 1000:.1f}']


def _finished(done):
    """The RESERVE script's arguments for finished messages."""
    for message, report in done:
        yield message
        yield report.attempt
        yield report.status
        yield f'{report.duration * 1000:.1f}'
