"""wsgi-taskqueue, used as an application uses it.

A job is a real task: ``taskqueue.add('/job', ...)`` inside a
``transaction`` that is committed (the commit queues it), dispatched by the
real worker, ``wsgi-taskqueue worker`` (one consumer with one thread), as a
WSGI request into :mod:`systems.ours_app`, whose view records the probe.
The queue is signed (``secret``), as the README recommends for Redis.

The ``ours_*`` modules are variants of this one: more tasks per
transaction, an SQL write in the same transaction, a consumer prefetching
more, and the commit overhead inside a web request.
"""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

import transaction

import wsgi_taskqueue

from systems import server
from systems.ours_app import add
from systems.workers import Worker

SECRET = 'benchmark-secret'

queue = wsgi_taskqueue.RedisQueue(url=server.url(), secrets=[SECRET])
wsgi_taskqueue.register_queue('default', queue)

#: The [taskqueue] section of every ini file the worker and web processes
#: read: the same queue as :data:`queue`.
QUEUE_SECTION = f"""
[taskqueue]
type = redis
url = {server.url()}
secret = {SECRET}
"""

_CONFIGS = tempfile.TemporaryDirectory(prefix='bench-ours-')


def config(name: str, text: str) -> str:
    """Write the ini file ``name``; its path."""
    path = os.path.join(_CONFIGS.name, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def worker(prefetch: int | None = None) -> Worker:
    """``wsgi-taskqueue worker``: one consumer, one thread, ``prefetch``
    (None: the default, ``auto``)."""
    setting = '' if prefetch is None else f'prefetch = {prefetch}'
    path = config(f'worker-prefetch{prefetch or "auto"}.ini', f"""
[app:main]
use = call:systems.ours_app:app_factory
{QUEUE_SECTION}
[taskqueue-server]
concurrent_limit = 1
{setting}
""")
    return Worker([sys.executable, '-m', 'wsgi_taskqueue', 'worker', path])


def transactions(size: int, write: Callable[[int], None] | None = None
                 ) -> Callable[[int], None]:
    """A ``push`` that commits a transaction per ``size`` jobs; ``write``,
    if given, is called once in each, with its first job's number."""
    def push(n: int) -> None:
        for start in range(0, n, size):
            with transaction.manager:
                if write is not None:
                    write(start)
                for i in range(start, min(start + size, n)):
                    add(i, 0.0)
    return push


def send(i: int, sent: float) -> None:
    with transaction.manager:
        add(i, sent)


def burst(n: int) -> None:
    """All ``n`` jobs in one transaction: they become pending together."""
    transactions(n)(n)


push = transactions(1)
WORKER = worker()
