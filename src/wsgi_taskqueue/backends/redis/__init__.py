"""The Redis queue: durable, shared between processes, scales out.

Key layout of one queue (``P`` is the key prefix, ``Q`` the queue name; the
``{Q}`` hash tag keeps all of a queue's keys in one Redis Cluster slot, so
every script that works on one queue is legal there; the stage and the
promotion of a transaction's tasks for several queues of one Redis take one
round trip each for all of them, on a Cluster one script per slot, sent
to every primary at once: fanout.py).  Where the
server is (one, a Sentinel group's primary, a Cluster slot's primary) is
topology.py's and route.py's business.  Each thread of a consumer ``w`` has a processing list of its own,
its slot ``w#1``, ``w#2``, ...:

======================== ====== ==================================== ==========================
key                      type   written by                           emptied by
======================== ====== ==================================== ==========================
P:{Q}:staged             hash   the vote of a transaction (stage):   promote / discard
                                batch -> its messages (staging.py)
P:{Q}:staged:seen        hash   sweep: batch -> time it first found  sweep, once the batch is
                                it staged                            gone
P:{Q}:pending            list   promote (LPUSH, order kept)          reserve (from the right),
                                                                     cancel
P:{Q}:pending:<N>        list   promote: a task of priority N (not   reserve, before pending
                                5; priority.py), as pending          for N > 5, after for N < 5
P:{Q}:pending:levels     set    promote: the priorities N in use     reserve, once pending:N is
                                                                     empty
P:{Q}:pending:wakes      string promote: wake tokens in pending      reserve, as it drops them
P:{Q}:name:<name>        string stage: id of the task holding the    expires (name_ttl); discard
                                name (names.py)
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
P:{Q}:task:<id>          hash   its status: first when the task      expires (status_ttl)
                                starts running, or at a move that
                                needs it (scheduled, waiting,
                                cancelled, purged...; none while it
                                simply waits: queued.py); then every
                                move of the task
P:{Q}:result:<id>        string SETTLE (completion.py): the          expires (result_ttl)
                                result of a task that keeps it
P:{Q}:waiting:<id>       hash   promote: a task waiting for others   the script settling the
                                (dependencies.py)                    last it waits for; cancel
P:{Q}:dependents:<id>    set    promote: the tasks parked on <id>    the script settling <id>
P:{Q}:depended           set    promote: the ids <id> above          the script settling <id>
P:{Q}:processing:~doomed list   settling what they waited for:       the bury that condemned them,
                                tasks condemned by its death         or the next sweep
P:{Q}:job:<id>           hash   promote: a job's record and its      expires (a week after its
                                on_complete message (jobs.py);       last change)
                                counted by the settling scripts
P:{Q}:job:<id>:todo      set    promote: its tasks not settled yet   the script settling each
P:{Q}:jobs               zset   promote: job id -> time created      job_list, once expired
P:{Q}:tasks              zset   promote: id -> time queued, of       sweep trims it
                                status records and of the tasks that
                                wait without one yet
P:{Q}:minute:<n>         hash   outcomes of minute n (done, retried, expires after an hour
                                dead)
======================== ====== ==================================== ==========================

A message is never in two places and never in none: every move between
these keys happens in one Lua script (``scripts.py``,
``consuming_scripts.py``, ``operations_scripts.py``) or MULTI, so a crash
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
period (counted from the first sweep that found them: staging.py): their
transaction voted, but the process died before it could promote or
discard them (at-least-once: see docs/guarantees.rst).
Lease times come from Redis's clock (TIME), so consumers on hosts whose
clocks disagree still agree on who is gone.

Waiting consumers block in BLMOVE on a connection of their own, which is
Redis's own wakeup (no PubSub round trip on the way); ``interrupt`` ends the
wait with CLIENT UNBLOCK.

``RedisQueue`` is here, with the keys and the transaction's side (stage,
promote, discard); the consumer's side (reserve, ack, retry, bury,
leases, sweep) is ``consuming.py``'s, what operators see and do (counts,
listings, dead letters, purge, cancel, reset) ``operations.py``'s.
"""
from __future__ import annotations

import contextlib

import redis
from zope.interface import implementer

from ...errors import BackendUnavailable, InvalidTask
from ...interfaces import IQueueBackend
from ..base import QueueBase
from ..dependencies import check_known
from ..jobs import check_jobs
from ..names import claimed
from . import fanout, replication, scripts, staging
from .bounds import DEFAULT_MAX_CONNECTIONS
from .completion import Settlements
from .connection import Talking, thread_connections, twice
from .consuming import Consuming
from .dependencies import known
from .jobs import job_states
from .names import RedisNames
from .operations import Operations
from .route import Route
from .topology import topology_for

__all__ = ['RedisQueue']

#: Long enough for a loaded Redis to answer, short enough that a request
#: whose commit meets a dead Redis fails within seconds (G6).
DEFAULT_SOCKET_TIMEOUT = 5.0


@implementer(IQueueBackend)
class RedisQueue(Consuming, Operations, QueueBase):
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
                 min_replicas: int = 0, shard: int | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, **options):
        self.key_prefix = key_prefix
        #: Part ``shard`` of a sharded queue (sharded.py): its keys carry
        #: the hash tag ``{Q~shard}``, its messages the queue's name.
        self.shard = shard
        self.topology = topology_for(
            url=url, host=host, port=port, db=db, username=username,
            password=password, unix_socket_path=unix_socket_path,
            socket_timeout=socket_timeout, sentinels=sentinels,
            service_name=service_name, sentinel_password=sentinel_password,
            cluster=cluster, max_connections=max_connections)
        #: Per process and server, each of the pool and the thread
        #: connections (bounds.py).
        self.max_connections = max_connections
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
        self.stage_script = staging.Stage(self.route, guard + staging.STAGE,
                                          plain=not guard)
        self.promote_script = register(scripts.PROMOTE)
        self._init_consuming(register)
        self._init_operations(register)
        self._settlements = Settlements(self, register)
        #: Where its task names are held (a sharded queue's shards share
        #: their first shard's).
        self.names = RedisNames(self, register, twice)

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
        self.staged_seen_key = base + 'staged:seen'
        self.delayed_key = base + 'delayed'
        self.dead_key = base + 'dead'
        self.consumers_key = base + 'consumers'
        self.leases_key = base + 'leases'
        self.owners_key = base + 'owners'
        self.info_key = base + 'info'
        self.tasks_key = base + 'tasks'

    def processing_key(self, consumer: str) -> str:
        return f'{self.base}processing:{consumer}'

    def task_key(self, task_id: str) -> str:
        return f'{self.base}task:{task_id}'

    # -- the transaction's side ------------------------------------------

    @property
    def group(self):
        # Queues on one Redis (on a Cluster: on any of its primaries) are
        # written together: what the data manager does for all of them
        # takes one round trip (per primary, in parallel: fanout.py).
        return self.route.group

    def stage_batches(self, batch_id, batches):
        with self._talking:
            # Staged before their names are claimed: a process that stops
            # in between leaves a batch the sweep promotes, never a name
            # held by a task that was not staged (names.py).  Checked once
            # the tasks whose name is held are left out: a task run again
            # adds nothing twice, not even to a job it closed.
            self._stage(batch_id, batches)
            kept = {queue: claimed(queue, batch_id, staged, queue.names)
                    for queue, staged in batches.items()}
            try:
                _check(kept)
            except InvalidTask:
                # Refused: nothing stays staged, no name held.
                for queue in batches:
                    queue.discard(batch_id)
                raise
            if any(len(kept[queue]) < len(staged)
                   for queue, staged in batches.items()):
                self._stage(batch_id, kept)  # without the tasks refused

    def _stage(self, batch_id, batches):
        """Stage ``batches`` ({queue: messages}) in one round trip per
        primary."""
        slots = fanout.by_slot(batches)
        if len(slots) > 1:
            fanout.stage(self, batch_id, [
                {queue: batches[queue] for queue in queues}
                for queues in slots])
            return
        keys, args = fanout.stage_arguments(batch_id, batches)
        generation = self.connections.generation
        twice(self.stage_script, keys=keys, args=args)
        replication.wait(self, 'stage', since=generation)

    def promote_batches(self, batch_id, queues, failed=None):
        for queue in queues:
            queue.names.settle(batch_id)
        slots = fanout.by_slot(queues)
        with self._talking:
            if len(slots) > 1:
                fanout.promote(self, batch_id, slots, failed)
                return
            keys, args = fanout.promote_arguments(batch_id, queues)
            if failed is None or self.min_replicas:
                # With min_replicas, the promotion counts once replicated;
                # a shortfall is retried by ``failed``'s follow-up (and
                # the staged batch, replicated at the vote, stays until
                # then: a sweep on a promoted replica promotes it).
                generation = self.connections.generation
                try:
                    twice(self.promote_script, keys=keys, args=args)
                    replication.wait(self, 'promotion', since=generation)
                except BackendUnavailable as exc:
                    if failed is None:
                        raise
                    failed(exc)
            else:
                # The commit need not wait for this round trip: the reply
                # is read before this thread's next command.
                self.promote_script.send(failed, keys=keys, args=args)

    def discard(self, batch_id):
        with self._talking:
            self.client.hdel(self.staged_key, batch_id)
            self.names.release(batch_id)

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


def _check(batches) -> None:
    """Refuse a batch whose tasks wait for unknown tasks, or name jobs
    unknown or closed (UnknownDependency, UnknownJob, ClosedJob)."""
    for queue, staged in batches.items():
        check_known(queue, staged, lambda ids, queue=queue: known(queue, ids))
        check_jobs(queue, staged, lambda ids, queue=queue:
                   job_states(queue, ids))
