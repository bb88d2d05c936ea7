"""A worker on ZEO must see a commit before it runs the commit's tasks.

With ZEO's defaults a client's connection can begin a transaction before
the invalidations of a commit made by another client have arrived, so a
task could run, and not find the object its request created, although it
was queued only after that commit (G3).  ``server-sync true`` makes every
transaction of a client begin with a round trip to the server, after which
every earlier commit is visible.  plone.recipe.zope2instance writes ZODB's
``<zeoclient>`` section, which cannot say ``server-sync``; so the consumers
make that round trip themselves before each task (``synced``), and a
worker whose storage lacks server-sync is warned at start that its other
requests are not synced.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _client_storages(db) -> list:
    """The ZEO client storages behind ``db`` (none when it is not on ZEO)."""
    storage = getattr(db, 'storage', None)
    return [each for each in (storage, getattr(storage, 'base', None))
            if each is not None and hasattr(each, 'server_sync')]


def _main_db():
    import Zope2
    return getattr(Zope2, 'DB', None)


def sync_with_server(db=None) -> int:
    """One round trip to the ZEO server of each client storage of ``db``
    (Zope's database by default) that lacks server-sync: the invalidations
    of every commit made before it are then processed, so the next
    transaction sees them.  Return the number of round trips."""
    trips = 0
    for storage in _client_storages(db if db is not None else _main_db()):
        ping = getattr(storage, 'ping', None)  # set once connected
        if not storage.server_sync and ping is not None:
            ping()
            trips += 1
    return trips


def synced(app):
    """``app``, syncing with the ZEO server before each task."""
    def synced_app(environ, start_response):
        sync_with_server()
        return app(environ, start_response)
    return synced_app


def warn_without_server_sync() -> list[str]:
    """Log a warning for each ZEO client storage of this Zope that runs
    without server-sync; return their names."""
    db = _main_db()
    lacking = [storage.getName() for storage in _client_storages(db)
               if not storage.server_sync]
    for name in lacking:
        log.warning(
            'the ZEO client storage %s runs without server-sync: task '
            'requests sync with the ZEO server before they run, other '
            'requests of this process may not see the latest commits. Add '
            '"server-sync true" to its <clientstorage> section of zope.conf '
            'where you can.', name)
    return lacking
