"""The SQL queue: IQueueBackend over SQLAlchemy Core (the table layout is
in the package's docstring).

Every move of a task is one database transaction, with its status record
and minute count in the same transaction, so a crash between two
statements loses or duplicates nothing.  Here: the queue, its stage,
promotion and discard; the consumer's side is in ``consuming.py``, the
operator's in ``operations.py``, the dialect-specific parts (the reserve,
the clock, the upsert) in ``dialects.py``.
"""
from __future__ import annotations

import collections
import threading
import time

import sqlalchemy as sa
from zope.interface import implementer

from ...interfaces import IQueueBackend
from ..base import QueueBase, peek
from ..names import claimed
from ..priority import priority_of
from . import outbox
from .consuming import Consuming
from .dependencies import SqlDependencies, waiting_ids
from .held import HeldRows, Holding
from .jobs import SqlJobs
from .leases import Leases
from .names import SqlNames
from .operations import Operations
from .outbox import AppSession
from .results import SqlSettlements
from .statuslog import SqlStatusLog
from .store import DEFAULT_POLL, DEFAULT_TIMEOUT, release_store, shared_store

__all__ = ['SqlQueue']


@implementer(IQueueBackend)
class SqlQueue(Consuming, Holding, Leases, Operations, QueueBase):
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
        self.held = HeldRows()
        self.settlements = SqlSettlements(self)
        self.dependencies = SqlDependencies(self)
        self.jobs = SqlJobs(self)
        #: batch id -> whether its tasks may wait for others, for the
        #: batches this process staged and has not yet promoted: the
        #: others (the sweep's) take the general promotion.
        self._staged_here: dict[str, bool] = {}
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

    def enqueue_in_session(self, session, batches):
        return (self.app_session is not None
                and self.app_session.carries(session, self.store)
                and outbox.write(self, session, batches, zope=False))

    def stage_batches(self, batch_id, batches):
        self.store.run(lambda connection: self.insert(connection, batches,
                                                      batch_id))

    def insert(self, connection, batches, batch_id=None,
               jobs: bool = True) -> None:
        """Write the rows of ``batches`` on ``connection``: staged under
        ``batch_id``, or pending at once without one (the outbox).  A
        job's markers among them are taken in (``jobs.py``) unless not
        ``jobs``: a job's on_complete task, queued at completion."""
        insert = self._statement(('insert', bool(batch_id)),
                                 lambda: self._insert(staged=bool(batch_id)))
        for queue, messages in batches.items():
            messages = claimed(queue, batch_id, messages,
                               SqlNames(queue, connection))
            if not messages:
                continue
            queue.dependencies.check(connection, messages)
            if jobs:
                queue.jobs.check(connection, messages)
            waiting = waiting_ids(messages)
            tasks = [peek(message) for message in messages]
            of_jobs = jobs and any(task is not None and task.options.job
                                   for task in tasks)
            rows = [{'queue': queue.name, 'message': message,
                     'batch': batch_id, 'task_id': task and task.id,
                     'attempt': task and task.attempt,
                     'b_due': (task and task.options.due) or 0,
                     'priority': priority_of(message),
                     'waits': bool(waiting) and task is not None
                     and task.id in waiting,
                     'job': task.options.job if of_jobs and task else None}
                    for message, task in zip(messages, tasks, strict=True)]
            if batch_id:
                records = queue.log.records(tasks, 'staged')
            else:
                # Written pending at once: scheduled by this host's clock.
                now_here = time.time()
                later = [task for task in tasks if task
                         and (task.options.due or 0) > now_here]
                records = (queue.log.records([task for task in tasks
                                              if task not in later],
                                             'queued')
                           + queue.log.records(later, 'scheduled'))
            if batch_id:
                queue._staged_here[batch_id] = bool(
                    waiting) or of_jobs or queue._staged_here.get(
                    batch_id, False)
            if not waiting and not of_jobs and \
                    len(rows) == len(records) == 1 and \
                    self.store.dialect.write_one(
                        connection, insert, rows[0], records[0],
                        notify=not batch_id):
                continue
            connection.execute(insert, rows)
            queue.log.write(connection, records)
            if not batch_id:
                if of_jobs:
                    queue.jobs.take_written(connection, [
                        task.id for task in tasks if task is not None])
                if waiting:
                    queue.dependencies.park(connection, 'ready', waiting)
                self.store.dialect.notify(connection, queue.name)

    def _insert(self, staged: bool):
        """The INSERT of a task's row (bound: the columns by name, and
        ``b_due``, when it is due)."""
        now = self.store.dialect.now()
        # A task scheduled for later (countdown, eta) keeps its due time
        # in the row, a delayed one; the others' due is 0 (staged) or now.
        due = sa.bindparam('b_due')
        values = ({'state': 'staged', 'staged_at': now, 'due': due,
                   'delayed': False}
                  if staged else
                  {'state': 'ready', 'due': sa.case((due > now, due),
                                                    else_=now),
                   'delayed': due > now})
        return self.tasks_table.insert().values(
            deliveries=0, **values, **{
                name: sa.bindparam(name) for name in (
                    'queue', 'message', 'batch', 'task_id', 'attempt',
                    'priority', 'waits', 'job')}, waited_on=False)

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
        plain = {queue.name: queue._staged_here.pop(batch_id, True) is False
                 for queue in queues}

        def promote_all(connection):
            for queue in queues:
                if plain[queue.name] and self.store.dialect.promote(
                        connection, promote, queue.name,
                        batch_id) is not None:
                    continue
                queue.jobs.take_batch(connection, batch_id)
                waiting = queue.log.promoted(connection, batch_id)
                if waiting:
                    queue.dependencies.park(connection, 'staged', waiting)
                promoted = connection.execute(promote, {
                    'b_queue': queue.name, 'b_batch': batch_id}).rowcount
                if promoted:
                    self.store.dialect.notify(connection, queue.name)
        self.store.run(promote_all)
        self.store.wakeups.notify()

    def discard(self, batch_id):
        self._staged_here.pop(batch_id, None)
        tasks = self.tasks_table
        with self.store.transaction() as connection:
            staged = (tasks.c.queue == self.name, tasks.c.batch == batch_id,
                      tasks.c.state == 'staged')
            self._forget(connection, connection.execute(
                sa.select(tasks.c.task_id).where(*staged)).scalars().all())
            connection.execute(tasks.delete().where(*staged))
            SqlNames.release(connection, self, batch_id)

    def close(self):
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.store.wakeups.notify()
        release_store(self.store)

    # -- helpers ---------------------------------------------------------

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
