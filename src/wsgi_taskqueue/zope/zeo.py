"""A worker on ZEO must see a commit before it runs the commit's tasks.

With ZEO's defaults a client's connection can start a transaction before
the invalidations of a commit made by another client have arrived, so a
task may run, and 404 on the object its request created, although it was
queued only after that commit (G3).  ``server-sync true`` in the
``<zeoclient>`` section makes each transaction start with a round trip to
the server, after which every earlier commit is visible.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def storages_without_server_sync(db) -> list[str]:
    """The names of ``db``'s ZEO client storages that lack server-sync."""
    storage = getattr(db, 'storage', None)
    found = []
    for each in (storage, getattr(storage, 'base', None)):
        if each is not None and hasattr(each, 'server_sync') \
                and not each.server_sync:
            found.append(each.getName())
    return found


def warn_without_server_sync() -> list[str]:
    """Log a warning for each database of this Zope whose ZEO client
    storage runs without server-sync; return their storage names."""
    import Zope2

    db = getattr(Zope2, 'DB', None)
    lacking = storages_without_server_sync(db) if db is not None else []
    for name in lacking:
        log.warning(
            'the ZEO client storage %s runs without server-sync: a task may '
            'run before this process sees the commit that queued it (and '
            'not find what it created). Add "server-sync true" to the '
            '<zeoclient> section of zope.conf.', name)
    return lacking
