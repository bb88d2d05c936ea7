"""The transactional outbox: tasks written in the app's own database
transaction, through its zope.sqlalchemy session.

When a zope.sqlalchemy session of the transaction (the one named by the
queue's ``session`` setting, or else any) is connected to the queue's
database, the data manager's
commit phase (before any vote, so before zope.sqlalchemy decides in its own
commit() whether the session has work) inserts the tasks as pending rows
on the session's connection and marks the session changed.  One database
commit then carries the app's rows and their tasks: a crash anywhere
leaves both or neither, and there is nothing to stage, promote, discard
or sweep.  Otherwise the queue stages on its own connection as usual.
"""
from __future__ import annotations

import importlib
import logging
import os

import sqlalchemy as sa

__all__ = ['AppSession']

log = logging.getLogger(__name__)


class AppSession:
    """The app's session: the current one of the factory named by a dotted
    name (resolved on first use: the app's module may import this
    package), or any of the transaction's zope.sqlalchemy sessions on the
    queue's database (``dotted`` None)."""

    def __init__(self, dotted: str | None = None):
        self.dotted = dotted
        self._factory = None
        self._warned = False

    def joined(self, txn, store):
        """The app's session when it is in ``txn`` (it began) and
        connected to ``store``'s database; else None."""
        if self.dotted is None:
            return next((session for session in _sessions_of(txn)
                         if _on(session, store)), None)
        session = self._resolve()()
        if not session.in_transaction():
            return None
        url = session.get_bind().engine.url
        if not same_database(url, store.engine.url):
            if not self._warned:
                log.warning('session %s is connected to %s, not to the '
                            'queue\'s database %s: tasks are staged on the '
                            'queue\'s own connection', self.dotted,
                            url.render_as_string(hide_password=True),
                            store.where)
                self._warned = True
            return None
        return session

    def carries(self, session, store) -> bool:
        """Whether ``session``, the transaction itself (a Flask-SQLAlchemy
        session committing), is the app's session on ``store``'s
        database."""
        if self.dotted is not None and session is not self._resolve()():
            return False
        return _on(session, store)

    def _resolve(self):
        if self._factory is None:
            module_name, _, attribute = self.dotted.rpartition('.')
            try:
                factory = getattr(importlib.import_module(module_name),
                                  attribute)
            except (ImportError, AttributeError, ValueError) as exc:
                raise ValueError(f'session = {self.dotted}: cannot import '
                                 f'it ({exc})') from None
            if not callable(factory):
                raise ValueError(f'session = {self.dotted}: not a '
                                 f'scoped_session or session factory')
            self._factory = factory
        return self._factory


def write(queue, session, batches, zope: bool = True) -> bool:
    """Insert ``batches`` as pending through ``session``; False when the
    session is read-only (then the queue stages them itself).  With
    ``zope``, the session is zope.sqlalchemy's, which must be told that it
    has something to commit."""
    if zope:
        from zope.sqlalchemy import mark_changed
        try:
            mark_changed(session)
        except AssertionError:  # zope.sqlalchemy's read-only session
            return False
    connection = session.connection()
    if not queue.store._checked:
        queue.store.ensure_schema(connection)
    queue.insert(connection, batches)
    wakeups = queue.store.wakeups
    sa.event.listen(session, 'after_commit',
                    lambda _session: wakeups.notify(), once=True)
    return True


def _sessions_of(txn):
    """The SQLAlchemy sessions that zope.sqlalchemy joined to ``txn``
    (the transaction package lists its resources only privately)."""
    try:
        from zope.sqlalchemy.datamanager import SessionDataManager
    except ImportError:  # then no session of the app is in a transaction
        return
    for resource in getattr(txn, '_resources', ()):
        if isinstance(resource, SessionDataManager):
            yield resource.session


def _on(session, store) -> bool:
    return session.in_transaction() and same_database(
        session.get_bind().engine.url, store.engine.url)


def same_database(first, second) -> bool:
    """Whether two SQLAlchemy URLs name one database (drivers aside)."""
    def identity(url):
        database = url.database or ''
        if url.get_backend_name() == 'sqlite':
            database = os.path.realpath(database)
        return (url.get_backend_name(), url.host or '', url.port,
                database, url.username or '')
    return identity(first) == identity(second)
