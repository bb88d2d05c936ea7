"""The SQL queue: IQueueBackend over SQLAlchemy Core (the table layout is
in the package's docstring).

Every move of a task is one database transaction, with its status record
and minute count in the same transaction, so a crash between two
statements loses or duplicates nothing.  The dialect-specific parts (the
reserve, the clock, the upsert) are in ``dialects.py``.
"""
from __future__ import annotations

import collections
import threading
import time

import sqlalchemy as sa
from zope.interface import implementer

from ...deadletter import DeadLetter
from ...interfaces import IQueueBackend
from ..base import REPLAYED, QueueBase, owner_of, unfinished_reason
from ..local import _peek
from . import outbox
from .leases import Leases
from .operations import Operations
from .outbox import AppSession
from .statuslog import SqlStatusLog
from .store import DEFAULT_POLL, DEFAULT_TIMEOUT, release_store, shared_store

__all__ = ['SqlQueue']


@implementer(IQueueBackend)
class SqlQueue(Leases, Operations, QueueBase):
    """See IQueueBackend and the package's docstring."""

    shared = True

    def __init__(self, name: str = 'default', *, url: str,
                 schema: str | None = None,
                 table_prefix: str = 'taskqueue_',
                 timeout: float = DEFAULT_TIMEOUT,
                 poll_interval: float = DEFAULT_POLL,
                 session: str | None = None, outbox: bool = True,
                 **options):
        super().__init__(name, **options)
        #: Where the tasks join the app's own transaction on this database
        #: (``outbox.py``): the app's session named by ``session``, or any
        #: zope.sqlalchemy session of the transaction; None: never.
        self.app_session = AppSession(session) if outbox else None
        self.store = shared_store(url, schema, table_prefix, timeout,
                                  poll_interval)
        self.where = self.store.where
        self.log = SqlStatusLog(self)
        self._interruptions: collections.Counter = collections.Counter()
        self._closed = False
        self._close_lock = threading.Lock()

    @property
    def tasks_table(self):
        return self.store.tables.tasks

    # -- the transaction's side ------------------------------------------

    @property
    def group(self):
        # The queues of one database stage and promote in one transaction.
        return self.store

    def enqueue_in_transaction(self, txn, batch_id, batches):
        session = self.app_session and self.app_session.joined(txn,
                                                               self.store)
        return session is not None and outbox.write(self, session, batches)

    def stage_batches(self, batch_id, batches):
        with self.store.transaction() as connection:
            self.insert(connection, batches, batch_id)

    def insert(self, connection, batches, batch_id=None) -> None:
        """Write the rows of ``batches`` on ``connection``: staged under
        ``batch_id``, or pending at once without one (the outbox)."""
        now = self.store.dialect.now()
        # A task scheduled for later (countdown, eta) keeps its due time
        # in the row, a delayed one; the others' due is 0 (staged) or now.
        due = sa.bindparam('b_due')
        values = ({'state': 'staged', 'staged_at': now, 'due': due}
                  if batch_id else
                  {'state': 'ready', 'due': sa.case((due > now, due),
                                                    else_=now),
                   'delayed': due > now})
        insert = self._statement(('insert', bool(batch_id)),
                                 lambda: self.tasks_table.insert().values(
                                     **values))
        for queue, messages in batches.items():
            tasks = [_peek(message) for message in messages]
            connection.execute(insert, [
                {'queue': queue.name, 'message': message, 'batch': batch_id,
                 'task_id': task and task.id,
                 'attempt': task and task.attempt,
                 'b_due': (task and task.due) or 0}
                for message, task in zip(messages, tasks, strict=True)])
            if batch_id:
                queue.log.new(connection, tasks, 'staged')
            else:
                # Written pending at once: scheduled by this host's clock.
                now_here = time.time()
                later = [task for task in tasks
                         if task and task.due and task.due > now_here]
                queue.log.new(connection, [task for task in tasks
                                           if task not in later], 'queued')
                queue.log.new(connection, later, 'scheduled')
            if not batch_id:
                self.store.dialect.notify(connection, queue.name)

    def promote_batches(self, batch_id, queues, failed=None):
        tasks = self.tasks_table
        staged = (tasks.c.queue == sa.bindparam('b_queue'),
                  tasks.c.batch == sa.bindparam('b_batch'),
                  tasks.c.state == 'staged')
        promote = self._statement('promote', lambda: tasks.update().where(
            *staged).values(
                state='ready', batch=None, staged_at=None,
                due=sa.case((tasks.c.due > self.store.dialect.now(),
                             tasks.c.due), else_=self.store.dialect.now()),
                delayed=tasks.c.due > self.store.dialect.now()))
        with self.store.transaction() as connection:
            for queue in queues:
                queue.log.promoted(connection, batch_id)
                promoted = connection.execute(promote, {
                    'b_queue': queue.name, 'b_batch': batch_id}).rowcount
                if promoted:
                    self.store.dialect.notify(connection, queue.name)
        self.store.wakeups.notify()

    def discard(self, batch_id):
        tasks = self.tasks_table
        with self.store.transaction() as connection:
            staged = (tasks.c.queue == self.name, tasks.c.batch == batch_id,
                      tasks.c.state == 'staged')
            self._forget(connection, connection.execute(
                sa.select(tasks.c.task_id).where(*staged)).scalars().all())
            connection.execute(tasks.delete().where(*staged))

    # -- the consumer's side ---------------------------------------------

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        owner = owner_of(slot)
        deadline = time.monotonic() + timeout
        interruptions = self._interruptions[owner]
        wakeups = self.store.wakeups
        while True:
            generation = wakeups.generation
            next_due, replays = None, []
            with self.store.transaction() as connection:
                self._finish(connection, slot, done)
                if recover:
                    self._requeue(connection, slot, count=False)
                done, recover = (), False
                if limit == 0:
                    return []
                taken = self.store.dialect.take(connection, self.name, slot,
                                                owner, limit)
                replays = self.log.replays(connection, taken)
                taken = [row for row in taken if row not in replays]
                if taken:
                    self.log.update_each(connection, [
                        {'task_id': row.task_id, 'state': 'running',
                         'consumer': slot, 'attempt': row.attempt}
                        for row in taken])
                elif not replays:
                    next_due = self._next_due(connection)
            for row in replays:
                self.bury_unusable(slot, row.message, REPLAYED,
                                   recorded=False)
            if taken:
                return [row.message for row in taken]
            if replays:
                continue
            wait = deadline - time.monotonic()
            if wait <= 0 or self._interruptions[owner] != interruptions \
                    or self._closed:
                return []
            if next_due is not None:
                wait = min(wait, max(0.001, next_due))
            self.store.listen()
            wakeups.wait(generation, wait)
            if self._interruptions[owner] != interruptions:
                return []  # before taking more: the consumer may pause

    def interrupt(self, consumer):
        self._interruptions[consumer] += 1
        self.store.wakeups.notify()

    def ack(self, slot, done):
        with self.store.transaction() as connection:
            self._finish(connection, slot, done)

    def retry(self, slot, message, new_message, due, report):
        with self.store.transaction() as connection:
            row_id = self._find(connection, slot, message)
            if row_id is None:
                return
            task = _peek(new_message)
            connection.execute(self.tasks_table.update().where(
                self.tasks_table.c.id == row_id).values(
                message=new_message, state='ready', delayed=True, due=due,
                slot=None, consumer=None,
                attempt=task.attempt if task else None))
            self.log.outcome(connection, [report], 'retrying', 'retried',
                             next=due)
        self.store.wakeups.notify()

    def bury(self, slot, message, record, report=None):
        with self.store.transaction() as connection:
            row_id = self._find(connection, slot, message)
            if row_id is None:
                return
            self._bury(connection, row_id, record)
            self.log.outcome(connection, [report], 'dead', 'dead')

    def requeue_processing(self, consumer, max_deliveries=0):
        with self.store.transaction() as connection:
            requeued, condemned = self._requeue(
                connection, consumer, max_deliveries=max_deliveries)
        return requeued, self._condemn(condemned)

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        tasks, leases = self.tasks_table, self.store.tables.leases
        with self.store.transaction() as connection:
            now = self.store.now(connection)
            live = set(connection.execute(sa.select(leases.c.consumer).where(
                leases.c.queue == self.name,
                leases.c.expires > now)).scalars())
            owners = connection.execute(sa.select(tasks.c.consumer).where(
                tasks.c.queue == self.name,
                tasks.c.state == 'processing').distinct()).scalars().all()
            condemned = []
            for consumer in sorted(set(owners) - live):
                requeued, doomed = self._requeue(
                    connection, consumer, max_deliveries=max_deliveries)
                report['consumers'].append(consumer)
                report['requeued'] += requeued
                condemned += doomed
            connection.execute(leases.delete().where(
                leases.c.queue == self.name, leases.c.expires <= now))
            dead = self.store.tables.dead
            connection.execute(dead.delete().where(
                dead.c.queue == self.name,
                dead.c.dead_at < time.time() - self.dead_ttl))
            report['batches'] = connection.execute(
                sa.select(tasks.c.batch).where(
                    tasks.c.queue == self.name, tasks.c.state == 'staged',
                    tasks.c.staged_at < now - grace).distinct()
            ).scalars().all()
            self.log.trim(connection)
        report['dead'] = self._condemn(condemned)
        for batch in report['batches']:
            self.promote(batch)
        return report

    def close(self):
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.store.wakeups.notify()
        release_store(self.store)

    # -- helpers ---------------------------------------------------------

    def _finish(self, connection, slot, done) -> None:
        """Acknowledge ``done`` ((message, Report) pairs) in ``slot``."""
        if not done:
            return
        held = self._held(connection, slot)
        finished, reports = [], []
        for message, report in done:
            if held.get(message):
                finished.append(held[message].pop(0))
                reports.append(report)
        if finished:
            connection.execute(self._statement(
                'delete', lambda: self.tasks_table.delete().where(
                    self.tasks_table.c.id.in_(
                        sa.bindparam('b_ids', expanding=True)))),
                {'b_ids': finished})
            self.log.outcome(connection, reports, 'done', 'done')

    def _held(self, connection, slot) -> dict:
        """message -> ids of the rows in ``slot``."""
        tasks = self.tasks_table
        held: dict = {}
        for row in connection.execute(self._statement(
                'held', lambda: sa.select(tasks.c.id, tasks.c.message).where(
                    tasks.c.queue == sa.bindparam('b_queue'),
                    tasks.c.consumer == sa.bindparam('b_consumer'),
                    tasks.c.slot == sa.bindparam('b_slot'),
                    tasks.c.state == 'processing').order_by(tasks.c.id)),
                {'b_queue': self.name, 'b_consumer': owner_of(slot),
                 'b_slot': slot}):
            held.setdefault(bytes(row.message), []).append(row.id)
        return held

    def _find(self, connection, slot, message):
        """The id of a row of ``slot`` holding ``message``, or None."""
        ids = self._held(connection, slot).get(message)
        return ids[0] if ids else None

    def _bury(self, connection, row_id, record) -> None:
        """Replace a row by its dead letter; the oldest beyond dead_max
        go."""
        dead = self.store.tables.dead
        connection.execute(self.tasks_table.delete().where(
            self.tasks_table.c.id == row_id))
        connection.execute(dead.insert().values(
            queue=self.name, record=record, dead_at=_dead_at(record)))
        oldest_kept = connection.execute(
            sa.select(dead.c.id).where(dead.c.queue == self.name).order_by(
                dead.c.id.desc()).offset(self.dead_max - 1).limit(1)
        ).scalar()
        if oldest_kept is not None:
            connection.execute(dead.delete().where(
                dead.c.queue == self.name, dead.c.id < oldest_kept))

    def _requeue(self, connection, consumer, count=True, max_deliveries=0):
        """Put the messages in flight of ``consumer`` (or of the one slot
        it names, ``w#1``) back at the head of the line, counting an
        unfinished delivery for each (with ``count``).  Return the number
        requeued and the messages found unfinished ``max_deliveries``
        times, left in flight for ``_condemn``: (slot, message,
        deliveries)."""
        tasks = self.tasks_table
        held = [tasks.c.queue == self.name,
                tasks.c.consumer == owner_of(consumer),
                tasks.c.state == 'processing']
        if '#' in consumer:
            held.append(tasks.c.slot == consumer)
        if count:
            connection.execute(tasks.update().where(*held).values(
                deliveries=tasks.c.deliveries + 1))
        rows = connection.execute(sa.select(
            tasks.c.id, tasks.c.slot, tasks.c.message, tasks.c.task_id,
            tasks.c.deliveries).where(*held)).all()
        condemned = [(row.slot, row.message, row.deliveries) for row in rows
                     if max_deliveries and row.deliveries >= max_deliveries]
        back = [row for row in rows
                if not max_deliveries or row.deliveries < max_deliveries]
        if back:
            connection.execute(tasks.update().where(
                tasks.c.id.in_([row.id for row in back])).values(
                state='ready', slot=None, consumer=None))
            self.log.update(connection, [row.task_id for row in back],
                            state='queued', consumer='')
            self.store.wakeups.notify()
        return len(back), condemned

    def _condemn(self, condemned) -> int:
        """Bury the messages ``_requeue`` found unfinished too often (each
        in a transaction of its own); return how many."""
        for slot, message, deliveries in condemned:
            self.bury_unusable(slot, message, unfinished_reason(deliveries))
        return len(condemned)

    def _next_due(self, connection) -> float | None:
        """Seconds until the next retry falls due, if one is waiting."""
        tasks = self.tasks_table
        now = self.store.dialect.now()
        due = connection.execute(self._statement(
            'next due', lambda: sa.select(sa.func.min(tasks.c.due) - now)
            .where(tasks.c.queue == sa.bindparam('b_queue'),
                   tasks.c.state == 'ready', tasks.c.due > now)),
            {'b_queue': self.name}).scalar()
        return None if due is None else float(due)

    def _statement(self, key, build):
        return self.store.dialect.statement(key, build)

    def _forget(self, connection, task_ids) -> None:
        """Delete the status records of ``task_ids``."""
        task_ids = [task_id for task_id in task_ids if task_id]
        if not task_ids:
            return
        for table in (self.store.tables.status, self.store.tables.attempts):
            connection.execute(table.delete().where(
                table.c.queue == self.name, table.c.task_id.in_(task_ids)))


def _dead_at(record: bytes) -> float:
    """When a dead letter died, by its record; 0 (the sweep forgets it)
    when the record does not say."""
    try:
        return float(DeadLetter.decode(record).dead_at)
    except (ValueError, TypeError, KeyError):
        return 0.0
