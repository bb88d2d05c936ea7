"""The transactional outbox: tasks written in the app's own database
transaction, through its zope.sqlalchemy session.

When the session named by the queue's ``session`` setting is part of the
transaction and connected to the queue's database, the data manager's
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
    """The app's session factory named by a dotted name (resolved on first
    use: the app's module may import this package)."""

    def __init__(self, dotted: str):
        self.dotted = dotted
        self._factory = None
        self._warned = False

    def joined(self, store):
        """The app's current session when it is in the transaction (it
        began) and connected to ``store``'s database; else None."""
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


def write(queue, session, batches) -> bool:
    """Insert ``batches`` as pending through ``session``; False when the
    session is read-only (then the queue stages them itself)."""
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


def same_database(first, second) -> bool:
    """Whether two SQLAlchemy URLs name one database (drivers aside)."""
    def identity(url):
        database = url.database or ''
        if url.get_backend_name() == 'sqlite':
            database = os.path.realpath(database)
        return (url.get_backend_name(), url.host or '', url.port,
                database, url.username or '')
    return identity(first) == identity(second)
