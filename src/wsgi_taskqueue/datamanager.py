"""Joins tasks to a ``transaction`` so they exist only if it commits.

The two-phase commit as the tasks see it:

* vote: the transaction's tasks are staged in their queues under the
  transaction's batch id, invisible to consumers.  A backend that cannot
  stage them in bounded time raises, which votes no: the transaction (SQL
  included) aborts and no task is left behind (G1, G6).
* after commit: every resource has finished, so the data the tasks were
  written with is visible; only now are the staged batches promoted to
  pending, each atomically and in the order the tasks were added (G3, G4).
  The commit does not wait for the promotion's reply (a backend may read
  it later): a promotion that failed is retried in the background, and
  one that never gets through is made by a consumer's sweep.
* abort: staged batches are discarded.

A queue in the app's own database (a SQL queue with ``session``) writes
its tasks instead in the commit phase, through the app's session, before
any vote: they commit with the app's data in one database transaction, or
not at all, and there is nothing to stage, promote or discard.

The sort key puts this vote before zope.sqlalchemy's (``~sqlalchemy:``
keys), whose one-phase sessions commit inside their vote: staging must
happen before anything becomes irrevocable.
"""
from __future__ import annotations

import functools
import logging

import transaction
from transaction.interfaces import IDataManagerSavepoint, ISavepointDataManager
from zope.interface import implementer

from . import metrics
from .errors import BackendUnavailable
from .followup import follow_ups
from .task import new_id

log = logging.getLogger(__name__)

#: Functions ``environ -> TaskDataManager | None`` that hosts whose
#: transactions are not ``transaction``'s register (``sqlsession.follow``:
#: a SQLAlchemy session under Flask); ``add`` asks them first, in turn.
joiners: list = []


def joined(environ) -> TaskDataManager | None:
    """The data manager a registered joiner gives for this request, or
    None when none applies (then ``add`` joins the ``transaction``)."""
    for joiner in joiners:
        manager = joiner(environ)
        if manager is not None:
            return manager
    return None


def for_transaction(transaction_manager) -> TaskDataManager:
    """The data manager of the current transaction of
    ``transaction_manager``, joining one on first use."""
    txn = transaction_manager.get()
    try:
        return txn.data(TaskDataManager)
    except KeyError:
        manager = TaskDataManager(txn, transaction_manager)
        txn.join(manager)
        txn.addAfterCommitHook(manager.promote)
        txn.set_data(TaskDataManager, manager)
        return manager


@implementer(ISavepointDataManager)
class TaskDataManager:
    """The tasks added in one transaction; see the module docstring."""

    def __init__(self, txn=None, transaction_manager=transaction.manager):
        self.transaction = txn
        self.transaction_manager = transaction_manager
        self.batch_id = new_id()
        #: (queue, message) in the order added.
        self.tasks: list[tuple[object, bytes]] = []
        #: (queue name, task name) -> id of the task added with it.
        self.names: dict[tuple[str, str], str] = {}
        #: Lists of queues of one group, staged under batch_id.
        self.staged: list[list] = []
        #: Groups whose tasks went into the app's own transaction.
        self.in_transaction: set = set()
        #: open -> committed | aborted
        self.state = 'open'

    def add(self, queue, message: bytes) -> None:
        self.tasks.append((queue, message))

    def name_holder(self, queue, name: str, task_id: str) -> str | None:
        """The id of the task added earlier in this transaction with
        ``name`` in ``queue``; None if none was, and then ``task_id``
        holds it from now on."""
        key = (queue.name, name)
        holder = self.names.get(key)
        if holder is None:
            self.names[key] = task_id
        return holder

    def sortKey(self) -> str:
        return f'wsgi_taskqueue:{self.batch_id}'

    def abort(self, txn) -> None:
        # ``transaction`` calls abort, not tpc_abort, on a resource whose
        # own vote raised: its stage may have been applied all the same.
        # It calls abort after the after-commit hooks too: a committed
        # transaction's batches are promoted, never discarded.
        if self.state != 'committed':
            self.tpc_abort(txn)

    def tpc_begin(self, txn) -> None:
        pass

    def commit(self, txn) -> None:
        # Before the app's session data manager decides, in its own
        # commit(), whether it has work to commit.
        for batches in self._groups():
            queue = next(iter(batches))
            if queue.enqueue_in_transaction(txn, self.batch_id, batches):
                self.in_transaction.add(queue.group)

    def commit_through(self, session) -> None:
        """``commit`` for hosts whose transaction is a SQLAlchemy session's
        (``sqlsession``): the tasks of queues in that session's database
        are written through it, before it commits."""
        for batches in self._groups():
            queue = next(iter(batches))
            if queue.enqueue_in_session(session, batches):
                self.in_transaction.add(queue.group)

    def tpc_vote(self, txn) -> None:
        for batches in self._groups():
            queues = list(batches)
            if queues[0].group in self.in_transaction:
                continue
            # Recorded first: a stage whose reply was lost may have been
            # applied, and the abort must discard it.
            self.staged.append(queues)
            try:
                queues[0].stage_batches(self.batch_id, batches)
            except BackendUnavailable as exc:
                if exc.unsent:  # nothing reached the backend to discard
                    self.staged.pop()
                raise

    def tpc_finish(self, txn) -> None:
        self.state = 'committed'

    def tpc_abort(self, txn) -> None:
        for queue in [queue for queues in self.staged for queue in queues]:
            try:
                queue.discard(self.batch_id)
            except Exception as exc:
                description = (f'discard of staged batch {self.batch_id} of '
                               f'queue {queue.name!r} (transaction aborted)')
                log.error('%s failed: %s; retrying in the background',
                          description, exc)
                follow_ups.add(description, functools.partial(
                    queue.discard, self.batch_id))
        self._forget()

    def promote(self, committed: bool) -> None:
        """After-commit hook: make the staged batches pending."""
        if not committed:
            return
        self._count_enqueued()
        for queues in self.staged:
            promote = functools.partial(queues[0].promote_batches,
                                        self.batch_id, queues)
            failed = functools.partial(self._promotion_failed, queues,
                                       promote)
            try:
                promote(failed=failed)
            except Exception as exc:
                failed(exc)
        self.staged = []

    def _promotion_failed(self, queues, promote, exc) -> None:
        names = ', '.join(repr(queue.name) for queue in queues)
        description = (f'promotion of staged batch {self.batch_id} of '
                       f'queue(s) {names} (transaction committed)')
        log.error('%s failed: %s; retrying in the background, and a '
                  'consumer\'s sweep promotes it after the grace period if '
                  'this process stops first', description, exc)
        follow_ups.add(description, promote)

    def _count_enqueued(self) -> None:
        counts: dict = {}
        for queue, _ in self.tasks:
            counts[queue.name] = counts.get(queue.name, 0) + 1
        for name, count in counts.items():
            metrics.recorder.enqueued(name, count)

    def savepoint(self) -> _Savepoint:
        return _Savepoint(self, len(self.tasks), len(self.names))

    def _groups(self) -> list[dict]:
        """The tasks as {queue: messages}, one dict per group of queues
        that can be written together."""
        if len(self.tasks) == 1:  # what most views add
            queue, message = self.tasks[0]
            return [{queue: [message]}]
        groups: dict = {}
        for queue, message in self.tasks:
            groups.setdefault(queue.group, {}).setdefault(
                queue, []).append(message)
        return list(groups.values())

    def _forget(self) -> None:
        self.tasks = []
        self.names = {}
        self.staged = []
        self.in_transaction = set()
        self.state = 'aborted'


@implementer(IDataManagerSavepoint)
class _Savepoint:
    """Rolling back drops the tasks added after the savepoint."""

    def __init__(self, manager: TaskDataManager, count: int, names: int):
        self.manager = manager
        self.count = count
        self.names = names

    def rollback(self) -> None:
        del self.manager.tasks[self.count:]
        for key in list(self.manager.names)[self.names:]:
            del self.manager.names[key]
