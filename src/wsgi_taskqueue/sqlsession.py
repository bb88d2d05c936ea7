"""Tasks that follow a SQLAlchemy session's commit instead of a
``transaction``: for apps (Flask-SQLAlchemy's, scripts) that call
``session.commit()`` themselves.

``follow(session)`` listens to a Session, sessionmaker or scoped_session;
``manager_for(session)`` is the TaskDataManager of that session's current
transaction, which ``taskqueue.add`` joins.  The session then drives the
data manager through the same two phases ``transaction`` would:

* ``before_commit`` of the outermost transaction: the tasks of a queue in
  the session's own database are written through the session, to commit
  with its rows (the outbox: a SQLite file takes one writer at a time, so
  a stage on the queue's own connection would wait for this commit); the
  others are staged (the vote).  A backend that cannot take them raises,
  so ``commit()`` raises before the database commits, and nothing is kept
  (G1, G6);
* ``after_commit``: the database has committed, the staged batches are
  promoted (G3, G4);
* the end of a transaction that did not commit (``session.rollback()``,
  a commit that failed, ``close()``) discards them; rolling back a savepoint
  (``begin_nested``) drops the tasks added since it began.

Flushes and DML statements run through the session are remembered (not
what runs on ``session.connection()`` directly), so a host can tell a
session that wrote nothing (its tasks may commit alone, ``commit_alone``)
from one whose writes were never committed (its tasks must go with them,
``drop``).
"""
from __future__ import annotations

import logging

from sqlalchemy import event

from .datamanager import TaskDataManager

__all__ = ['follow', 'manager_for', 'pending', 'commit_alone', 'drop']

log = logging.getLogger(__name__)

#: session.info keys: the data manager of the session's transaction, the
#: task counts at each open savepoint, and whether it flushed.
_MANAGER = 'wsgi_taskqueue.manager'
_SAVEPOINTS = 'wsgi_taskqueue.savepoints'
_WROTE = 'wsgi_taskqueue.wrote'

#: The listeners, by event name.
_LISTENERS: dict = {}


def follow(session) -> None:
    """Tie the tasks added during a transaction of ``session`` (a Session,
    sessionmaker, scoped_session or Session class) to its commit.
    Following twice is harmless."""
    for name, listener in _LISTENERS.items():
        if not event.contains(session, name, listener):
            event.listen(session, name, listener)


def manager_for(session) -> TaskDataManager:
    """The data manager of ``session``'s current transaction, created on
    first use."""
    manager = session.info.get(_MANAGER)
    if manager is None:
        manager = session.info[_MANAGER] = TaskDataManager()
    return manager


def pending(session) -> int:
    """How many tasks wait for ``session`` to commit."""
    manager = session.info.get(_MANAGER)
    return len(manager.tasks) if manager is not None else 0


def wrote(session) -> bool:
    """Whether ``session`` has writes its transaction did not commit
    (flushed, executed through it, or waiting for a flush)."""
    return bool(session.info.get(_WROTE) or session.new or session.dirty
                or session.deleted)


def commit_alone(session) -> None:
    """Commit the tasks of ``session`` without the session, which wrote
    nothing: stage, then promote."""
    manager = session.info.pop(_MANAGER, None)
    if manager is None or not manager.tasks:
        return
    try:
        manager.tpc_vote(None)
    except BaseException:
        manager.tpc_abort(None)
        raise
    manager.tpc_finish(None)
    manager.promote(True)


def drop(session, why: str) -> int:
    """Drop the tasks waiting for ``session`` (logged, with ``why``);
    return how many."""
    manager = session.info.pop(_MANAGER, None)
    session.info.pop(_SAVEPOINTS, None)
    if manager is None or not manager.tasks:
        return 0
    count = len(manager.tasks)
    log.warning('%d task(s) dropped: %s', count, why)
    manager.tpc_abort(None)
    return count


def _listens(name):
    def register(function):
        _LISTENERS[name] = function
        return function
    return register


@_listens('after_transaction_create')
def _savepoint(session, transaction) -> None:
    if transaction.nested:
        manager = session.info.get(_MANAGER)
        session.info.setdefault(_SAVEPOINTS, {})[transaction] = (
            len(manager.tasks) if manager is not None else 0)


@_listens('after_flush')
def _flushed(session, flush_context) -> None:
    session.info[_WROTE] = True


@_listens('do_orm_execute')
def _executed(state) -> None:
    """``session.execute(insert(...))`` writes without a flush."""
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@_listens('before_commit')
def _vote(session) -> None:
    if session.in_nested_transaction():  # a savepoint is released
        return
    manager = session.info.get(_MANAGER)
    if manager is not None and manager.tasks:
        manager.commit_through(session)
        manager.tpc_vote(None)  # raises, and the commit with it


@_listens('after_commit')
def _promote(session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_SAVEPOINTS, None)
    session.info.pop(_WROTE, None)
    manager = session.info.pop(_MANAGER, None)
    if manager is not None and manager.tasks:
        manager.tpc_finish(None)
        manager.promote(True)


@_listens('after_soft_rollback')
def _rollback_savepoint(session, previous_transaction) -> None:
    if previous_transaction.nested:
        count = session.info.get(_SAVEPOINTS, {}).pop(
            previous_transaction, None)
        manager = session.info.get(_MANAGER)
        if count is not None and manager is not None:
            del manager.tasks[count:]


@_listens('after_transaction_end')
def _abort(session, transaction) -> None:
    """The outermost transaction ended without committing its tasks:
    rolled back, failed to commit, or closed."""
    if transaction.parent is not None or transaction.nested:
        return
    session.info.pop(_SAVEPOINTS, None)
    session.info.pop(_WROTE, None)
    manager = session.info.pop(_MANAGER, None)
    if manager is not None:
        manager.tpc_abort(None)
