"""The Redis queue: durable, shared between processes, scales out.

Key layout of one queue (``P`` is the key prefix, ``Q`` the queue name; the
``{Q}`` hash tag keeps all of a queue's keys in one Redis Cluster slot, so
every script that works on one queue is legal there; the stage and the
promotion of a transaction's tasks for several queues of one Redis take one
round trip each for all of them, on a Cluster one per slot).  Where the
server is (one, a Sentinel group's primary, a Cluster slot's primary) is
topology.py's and route.py's business.  Each thread of a consumer ``w`` has a processing list of its own,
its slot ``w#1``, ``w#2``, ...:

======================== ====== ==================================== ==========================
key                      type   written by                           emptied by
======================== ====== ==================================== ==========================
P:{Q}:staged:<batch>     list   the vote of a transaction (stage)    promote / discard
P:{Q}:staged             zset   stage: batch -> time staged          promote / discard
P:{Q}:pending            list   promote (LPUSH, order kept)          reserve (from the right),
                                                                     cancel
P:{Q}:processing:<slot>  list   reserve (LMOVE from pending)         ack (or reserve's done),
                                                                     retry, bury, requeue
P:{Q}:delayed            zset   retry: message -> due time;          reserve, when due; cancel
                                promote: a task scheduled for later
                                (its header's ``d``)
P:{Q}:dead               list   bury (newest at the left)            requeue_dead, purge_dead
P:{Q}:consumers          set    reserve: slots                       sweep, once a gone
                                                                     consumer's slot is empty
P:{Q}:leases             zset   acquire: consumer -> lease expiry    release, sweep
P:{Q}:owners             hash   acquire: consumer -> process token   release, sweep
P:{Q}:info               hash   acquire: consumer -> JSON (host,     release, sweep
                                pid, concurrency, lease)
P:{Q}:deliveries:<id>    string requeue of an unfinished task (INCR) expires after a day
P:{Q}:task:<id>          hash   every move of the task: its status   expires (status_ttl)
P:{Q}:tasks              zset   status records: id -> time queued    sweep trims it
P:{Q}:minute:<n>         hash   outcomes of minute n (done, retried, expires after an hour
                                dead)
======================== ====== ==================================== ==========================

A message is never in two places and never in none: every move between
these keys happens in one Lua script (``scripts.py``) or MULTI, so a crash
between two commands cannot lose or duplicate it.  Nothing is re-sent
blindly after a lost reply: the writes that are idempotent (stage, promote,
discard, ack, retry, bury) are sent once more; a reserve is not, and the
thread whose reserve failed hands back, on its next one, whatever its slot
holds that it did not finish.  The scripts run on a connection of the
calling thread's own (``ThreadConnections``), which is lighter than the
pool's; reads and the idempotent writes without a script use the pool.

A consumer holds a lease (renewed by its heartbeat) on its name.  The
sweep, run by every live consumer, requeues the processing list of every
consumer whose lease is gone, counting how often each task was found
unfinished: one that keeps killing its consumer goes to the dead letters
instead of looping.  It also promotes staged batches older than a grace
period: their transaction voted, but the process died before it could
promote or discard them (at-least-once: see docs/guarantees.rst).
Lease times come from Redis's clock (TIME), so consumers on hosts whose
clocks disagree still agree on who is gone.

Waiting consumers block in BLMOVE on a connection of their own, which is
Redis's own wakeup (no PubSub round trip on the way); ``interrupt`` ends the
wait with CLIENT UNBLOCK.
"""
from __future__ import annotations

import collections
import contextlib
import json
import threading
import time

import redis
from zope.interface import implementer

from ...errors import BackendUnavailable, DecodeError
from ...interfaces import IQueueBackend
from ...status import MemoryStatusLog, record
from ..base import REPLAYED, QueueBase, owner_of, unfinished_reason
from . import scripts
from .connection import (
    CLIENT_NAMES,
    NotSent,
    Talking,
    Waiter,
    thread_connections,
)
from .route import Route
from .topology import topology_for

__all__ = ['RedisQueue']

#: Long enough for a loaded Redis to answer, short enough that a request
#: whose commit meets a dead Redis fails within seconds (G6).
DEFAULT_SOCKET_TIMEOUT = 5.0


@implementer(IQueueBackend)
class RedisQueue(QueueBase):
    """See IQueueBackend; the key layout is in this module's docstring."""

    shared = True

    def __init__(self, name: str = 'default', *, url: str | None = None,
                 host: str = '127.0.0.1', port: int = 6379, db: int = 0,
                 username: str | None = None, password: str | None = None,
                 unix_socket_path: str | None = None,
                 socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
                 key_prefix: str = 'wsgi-taskqueue', sentinels=(),
                 service_name: str | None = None,
                 sentinel_password: str | None = None, cluster: bool = False,
                 min_replicas: int = 0, shard: int | None = None, **options):
        self.key_prefix = key_prefix
        #: Part ``shard`` of a sharded queue (sharded.py): its keys carry
        #: the hash tag ``{Q~shard}``, its messages the queue's name.
        self.shard = shard
        self.topology = topology_for(
            url=url, host=host, port=port, db=db, username=username,
            password=password, unix_socket_path=unix_socket_path,
            socket_timeout=socket_timeout, sentinels=sentinels,
            service_name=service_name, sentinel_password=sentinel_password,
            cluster=cluster)
        self.route = None
        super().__init__(name, **options)
        self.socket_timeout = socket_timeout
        if min_replicas < 0:
            raise ValueError(f'min_replicas must be at least 0, not '
                             f'{min_replicas}')
        self.min_replicas = min_replicas
        self.where = self.topology.where
        self.topology.watch()
        self._talking = Talking(self.where, self.route)
        guard = (scripts.MIGRATION_GUARD
                 if self.topology.kind == 'cluster' else '')

        def register(source):
            return self.route.script(guard + source)
        self._stage = register(scripts.STAGE)
        self._promote = register(scripts.PROMOTE)
        self._reserve = register(scripts.RESERVE)
        self._mark_running = register(scripts.MARK_RUNNING)
        self._retry = register(scripts.RETRY)
        self._bury = register(scripts.BURY)
        self._acquire = register(scripts.ACQUIRE)
        self._release = register(scripts.RELEASE)
        self._requeue = register(scripts.REQUEUE)
        self._requeue_dead = register(scripts.REQUEUE_DEAD)
        self._requeue_delayed = register(scripts.REQUEUE_DELAYED)
        self._purge = register(scripts.PURGE)
        self._purge_dead = register(scripts.PURGE_DEAD)
        self._trim_status = register(scripts.TRIM_STATUS)
        self._expire_dead = register(scripts.EXPIRE_DEAD)
        self._cancel = register(scripts.CANCEL)
        self._waiters = threading.local()
        self._waiting: dict[str, set] = {}
        self._waiting_lock = threading.Lock()
        self._interruptions: dict[str, int] = {}

    @property
    def pool(self) -> redis.ConnectionPool:
        """The pool of the server holding this queue's keys."""
        return self.route.pool

    @property
    def connections(self):
        """This process's thread connections to that server."""
        return self.route.connections

    @property
    def client(self) -> redis.Redis:
        """A client of that server, for reads and idempotent writes (on a
        Cluster, a MOVED reply to them is BackendUnavailable: see Talking)."""
        return self.route.client

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        # The keys follow the name the queue is registered under, and so
        # does the server that holds them (Cluster: the name's slot).
        self._name = value
        tag = value if self.shard is None else f'{value}~{self.shard}'
        if self.route is None:
            self.route = Route(self.topology, tag)
        else:
            self.route.point_at(tag)
        self.base = base = f'{self.key_prefix}:{{{tag}}}:'
        self.pending_key = base + 'pending'
        self.staged_key = base + 'staged'
        self.delayed_key = base + 'delayed'
        self.dead_key = base + 'dead'
        self.consumers_key = base + 'consumers'
        self.leases_key = base + 'leases'
        self.owners_key = base + 'owners'
        self.info_key = base + 'info'
        self.tasks_key = base + 'tasks'

    def staged_batch_key(self, batch_id: str) -> str:
        return f'{self.base}staged:{batch_id}'

    def processing_key(self, consumer: str) -> str:
        return f'{self.base}processing:{consumer}'

    def task_key(self, task_id: str) -> str:
        return f'{self.base}task:{task_id}'

    # -- the transaction's side ------------------------------------------

    @property
    def group(self):
        # Queues on one Redis (Cluster: in one slot) are written together:
        # what the data manager does for all of them takes one round trip.
        return self.route.group

    def stage_batches(self, batch_id, batches):
        keys, counts, messages = [], [], []
        for queue, staged in batches.items():
            keys += [queue.staged_batch_key(batch_id), queue.staged_key]
            counts.append(len(staged))
            messages += staged
        with self._talking:
            _twice(self._stage, keys=keys, args=[batch_id, *counts, *messages])
            self._replicated('stage')

    def promote_batches(self, batch_id, queues, failed=None):
        keys = []
        for queue in queues:
            keys += [queue.staged_batch_key(batch_id), queue.pending_key,
                     queue.staged_key, queue.delayed_key]
        args = [batch_id, *(queue.status_ttl for queue in queues)]
        with self._talking:
            if failed is None or self.min_replicas:
                # With min_replicas, the promotion counts once replicated;
                # a shortfall is retried by ``failed``'s follow-up (and
                # the staged batch, replicated at the vote, stays until
                # then: a sweep on a promoted replica promotes it).
                try:
                    _twice(self._promote, keys=keys, args=args)
                    self._replicated('promotion')
                except BackendUnavailable as exc:
                    if failed is None:
                        raise
                    failed(exc)
            else:
                # The commit need not wait for this round trip: the reply
                # is read before this thread's next command.
                self._promote.send(failed, keys=keys, args=args)

    def _replicated(self, what: str) -> None:
        """With min_replicas, wait (at most half the socket timeout) until
        that many replicas have this thread's writes; BackendUnavailable
        if they do not confirm them in time."""
        if not self.min_replicas:
            return
        timeout = int(self.socket_timeout * 500)
        try:
            confirmed = self.connections.run('WAIT', self.min_replicas,
                                             timeout)
        except NotSent as exc:
            # The write before it went out: the vote must not be taken for
            # one that sent nothing (its abort would not discard the stage).
            raise redis.ConnectionError(str(exc)) from exc
        if confirmed < self.min_replicas:
            # Perhaps a failover took our replicas: ask where the primary
            # is, so that the next try goes there.
            self.route.lost()
            raise BackendUnavailable(
                f'Redis at {self.where}: {confirmed} of min_replicas = '
                f'{self.min_replicas} replica(s) confirmed the {what} within '
                f'{timeout} ms')

    def discard(self, batch_id):
        with self._talking:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.staged_batch_key(batch_id))
            pipe.zrem(self.staged_key, batch_id)
            pipe.execute()

    # -- the consumer's side ---------------------------------------------

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
            _twice(self._reserve, keys=[
                self.pending_key, self.processing_key(slot), self.delayed_key,
                self.consumers_key], args=[0, slot, self.status_ttl, '0',
                                           len(done), *_finished(done)])

    def retry(self, slot, message, new_message, due, report):
        with self._talking:
            _twice(self._retry,
                   keys=[self.processing_key(slot), self.delayed_key],
                   args=[message, new_message, due, self.status_ttl,
                         *_report_args(report)])

    def bury(self, slot, message, record, report=None):
        with self._talking:
            _twice(self._bury, keys=[self.processing_key(slot), self.dead_key],
                   args=[message, record, self.status_ttl,
                         *_report_args(report), self.dead_max])

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
            for batch in self.client.zrangebyscore(
                    self.staged_key, '-inf', now - grace):
                batch = batch.decode()
                self.promote(batch)
                report['batches'].append(batch)
            self._trim_status_index(now)
            self._expire_dead(keys=[self.dead_key], args=[now - self.dead_ttl])
        return report

    # -- operations ------------------------------------------------------

    def counts(self):
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(self.pending_key)
            pipe.zcard(self.delayed_key)
            pipe.llen(self.dead_key)
            pipe.zcard(self.staged_key)
            pipe.smembers(self.consumers_key)
            pending, delayed, dead, staged, slots = pipe.execute()
            processing = self._in_flight(sorted(map(_text, slots)))
        return {'pending': pending, 'delayed': delayed, 'dead': dead,
                'staged': staged,
                'processing': {name: count for name, count
                               in processing.items() if count}}

    def consumers(self):
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrange(self.leases_key, 0, -1, withscores=True)
            pipe.hgetall(self.info_key)
            pipe.smembers(self.consumers_key)
            pipe.time()
            leases, infos, slots, (seconds, micros) = pipe.execute()
            now = seconds + micros / 1e6
            in_flight = self._in_flight(map(_text, slots))
        result = []
        for name, expiry in leases:
            info = _consumer_info(infos.get(name))
            lease = info.pop('lease', 0)
            name = _text(name)
            result.append(dict(
                info, name=name, in_flight=in_flight.get(name, 0),
                alive=expiry > now,
                heartbeat_age=max(0.0, now - (expiry - lease))))
        return result

    def task_status(self, task_id):
        with self._talking:
            fields = self.client.hgetall(self.task_key(task_id))
            if fields:
                return record(_texts(fields), self.name)
        for status in self._staged_records():
            if status['id'] == task_id:
                return status
        return None

    def tasks(self, state=None, start=0, count=50):
        if state == 'staged':
            return self._staged_records()[start:start + count]
        found = []
        position = 0
        chunk = max(count, 100)
        with self._talking:
            while len(found) < start + count:
                ids = self.client.zrevrange(self.tasks_key, position,
                                            position + chunk - 1)
                if not ids:
                    break
                position += len(ids)
                pipe = self.client.pipeline(transaction=False)
                for task_id in ids:
                    pipe.hgetall(self.task_key(_text(task_id)))
                for fields in pipe.execute():
                    fields = _texts(fields)
                    if fields and (state is None
                                   or fields.get('state') == state):
                        found.append(record(fields, self.name))
        return found[start:start + count]

    def throughput(self, minutes=15):
        with self._talking:
            seconds, _ = self.client.time()
            current = seconds // 60
            pipe = self.client.pipeline(transaction=False)
            for minute in range(current - minutes + 1, current + 1):
                pipe.hgetall(f'{self.base}minute:{minute}')
            counts = pipe.execute()
        return [{'minute': (current - minutes + 1 + i) * 60,
                 **{_text(k): int(v)
                    for k, v in fields.items() if v.isdigit()}}
                for i, fields in enumerate(counts)]

    def dead_letters(self, start=0, stop=-1):
        with self._talking:
            return self.client.lrange(self.dead_key, start, stop)

    def requeue_dead(self, record, message):
        with self._talking:
            return bool(self._requeue_dead(
                keys=[self.dead_key, self.pending_key],
                args=[record, message, self.status_ttl]))

    def purge_dead(self):
        # A script, not a MULTI on the pool: re-sent after a lost reply, it
        # would purge nothing and say so.
        with self._talking:
            return self._purge_dead(keys=[self.dead_key])

    def purge(self):
        with self._talking:
            return self._purge(keys=[self.pending_key, self.delayed_key],
                               args=[self.status_ttl])

    def cancel(self, task_id):
        with self._talking:
            outcome = self._cancel(
                keys=[self.pending_key, self.delayed_key, self.consumers_key],
                args=[task_id, self.status_ttl])
        return _text(outcome) if outcome else None

    def requeue_delayed(self):
        with self._talking:
            return self._requeue_delayed(
                keys=[self.delayed_key, self.pending_key],
                args=[self.status_ttl])

    def reset(self):
        with self._talking:
            keys = list(self.client.scan_iter(
                match=_glob_escape(self.base) + '*', count=1000))
            for start in range(0, len(keys), 1000):
                self.client.delete(*keys[start:start + 1000])

    def clients(self) -> dict:
        """The connections to this queue's Redis server from every process
        (its CLIENT LIST), by what they are for (``CLIENT_NAMES``); the
        Sentinels' as ``sentinel``, those of other programs as ``other``."""
        roles = {name: role for role, name in CLIENT_NAMES.items()}
        with self._talking:
            counts = collections.Counter(
                roles.get(client['name']) or (
                    'sentinel' if client['name'].startswith('sentinel-')
                    else 'other')
                for client in self.client.client_list()
                # not the server's replicas or primary
                if not set(client.get('flags', '')) & {'S', 'M'})
        return dict(counts)

    def close(self):
        for pool in self.topology.pools():
            # This thread's promotions still owe their replies: read them,
            # so that closing does not turn them into follow-ups.
            thread_connections(pool).settle()
        for consumer in list(self._waiting):
            with contextlib.suppress(BackendUnavailable):
                self.interrupt(consumer)
        for pool in self.topology.pools():
            thread_connections(pool).disconnect()
        self.topology.disconnect()

    # -- helpers ---------------------------------------------------------

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

    def _in_flight(self, slots) -> dict:
        """Tasks in flight per consumer, over its slots."""
        slots = list(slots)
        pipe = self.client.pipeline(transaction=False)
        for slot in slots:
            pipe.llen(self.processing_key(slot))
        totals: dict = {}
        for slot, count in zip(slots, pipe.execute(), strict=True):
            totals[owner_of(slot)] = totals.get(owner_of(slot), 0) + count
        return totals

    def _trim_status_index(self, now):
        """Keep the status log within status_ttl and status_max."""
        self._trim_status(keys=[self.tasks_key],
                          args=[now - self.status_ttl, self.status_max])

    def _staged_records(self):
        """Records of the tasks in staged batches (they have none in the
        status log until promoted), newest batch first."""
        log = MemoryStatusLog(self)
        with self._talking:
            for batch in self.client.zrange(self.staged_key, 0, -1):
                for message in self.client.lrange(
                        self.staged_batch_key(batch.decode()), 0, -1):
                    with contextlib.suppress(DecodeError):
                        log.new(self.codec.decode_unverified(message),
                                'staged')
        return log.list(count=self.status_max)

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


def _text(value: bytes) -> str:
    """Stored bytes as text; those that are not UTF-8 shown as U+FFFD,
    not raised: a stored record is shown as it is (``status.record``)."""
    return value.decode('utf-8', 'replace')


def _texts(fields: dict) -> dict:
    return {_text(k): _text(v) for k, v in fields.items()}


def _consumer_info(stored: bytes | None) -> dict:
    """A consumer's info as its lease wrote it; a value that is not a
    JSON object with a numeric lease becomes a ``problem``."""
    try:
        info = json.loads(stored or b'{}')
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        return {'problem': 'its info is not a JSON object'}
    lease = info.get('lease', 0)
    if not isinstance(lease, (int, float)) or isinstance(lease, bool) \
            or not 0 <= lease < 1e9:  # also refuses NaN
        info['lease'] = 0
        info['problem'] = 'its lease is not a number'
    return info


def _twice(operation, *args, **kwargs):
    """Run an idempotent operation; once more if the connection failed (a
    pooled connection that a Redis restart closed fails once)."""
    try:
        return operation(*args, **kwargs)
    except NotSent:
        return operation(*args, **kwargs)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        try:
            return operation(*args, **kwargs)
        except NotSent:
            # Not sent again, but the first may have been applied.
            raise redis.ConnectionError(str(exc)) from exc


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


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return ''.join('\\' + c if c in '*?[]\\' else c for c in text)
