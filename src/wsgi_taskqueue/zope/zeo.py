"""A worker on ZEO must see a commit before it runs the commit's tasks.

With ZEO's defaults a client's connection can begin a transaction before
the invalidations of a commit made by another client have arrived, so a
task could run, and not find the object its request created, although it
was queued only after that commit (G3).  ``server-sync true`` makes every
transaction of a client begin with a round trip to the server, but that is
not enough either: the ZEO server hands another client's invalidations to
this client's connection through its event loop's ``call_soon_threadsafe``,
while it answers this client's ping as soon as it reads it; on uvloop the
answer can overtake the invalidations (seen in one transaction of five
when a worker ran a task right after the commit that queued it).

So before each task the consumers ask the server for its last transaction
and wait until this client has processed the invalidations up to it
(``synced``).  plone.recipe.zope2instance writes ZODB's ``<zeoclient>``
section, which cannot say ``server-sync``; a worker whose storage lacks it
is warned at start that its other requests are not synced.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

#: How long a task waits for invalidations the server has sent, and how
#: often it looks: they normally arrive within a millisecond.
SYNC_TIMEOUT = 10.0
INVALIDATION_POLL = 0.0005


def _client_storages(db) -> list:
    """The ZEO client storages behind ``db`` (none when it is not on ZEO)."""
    storage = getattr(db, 'storage', None)
    return [each for each in (storage, getattr(storage, 'base', None))
            if each is not None and hasattr(each, 'server_sync')]


def _main_db():
    import Zope2
    return getattr(Zope2, 'DB', None)


def sync_with_server(db=None, timeout: float = SYNC_TIMEOUT) -> int:
    """Make the next transaction of ``db`` (Zope's database by default) see
    every commit the ZEO server has made: ask each client storage's server
    for its last transaction, then wait until the client has processed the
    invalidations up to it.  Return the number of round trips.

    Waiting longer than ``timeout`` means the invalidations are stuck; the
    task then runs as ZEO alone would have run it, with a warning."""
    trips = 0
    for storage in _client_storages(db if db is not None else _main_db()):
        if getattr(storage, 'ping', None) is None:  # not connected yet
            continue
        last = storage._call('lastTransaction')  # no public call asks it
        trips += 1
        deadline = time.monotonic() + timeout
        while storage.lastTransaction() < last:
            if time.monotonic() > deadline:
                log.warning(
                    'the ZEO client storage %s has not received the '
                    'invalidations of transaction %s after %s s; the task '
                    'runs without them', storage.getName(), last.hex(),
                    timeout)
                break
            time.sleep(INVALIDATION_POLL)
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
