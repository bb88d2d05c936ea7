"""What the pytest-xdist workers of one test run share, and how.

``make test`` runs the suite in several worker processes (``-n``).  Each
worker has its own session, so each session fixture would start a server
per worker.  Where tests can share a server safely, the workers share one:

- **PostgreSQL and MariaDB** (``postgresql_url``, ``mariadb_url``): one of
  each per run, every worker on a database of its own (``tasks_gw0``,
  ``tasks_gw1``...), so what a test empties or creates is its worker's.
  Measured on the 2-core machine: initdb and start take 1.4 s and 57 MB,
  MariaDB's install and start 1.9 s and 120 MB, per server.
- **Not shared**, one per worker, started when a worker first needs it:
  the Redis of ``redis_server`` (it starts in 20 ms; tests FLUSHALL it,
  stop, kill and restart it, and change its ACL), the Sentinel group and
  the Redis Cluster (tests kill their servers, fail over, move slots and
  flush them; 2 s and about 100 MB each), and the PostgreSQL of
  ``postgresql_server`` and the MariaDB of ``mariadb_server``, which
  tests stop and kill.

The first worker to need a shared server starts it under a lock in a
directory of the run (made by the controller process, handed to each
worker) and writes its handle there; the others attach to it.  The
servers outlive the worker that started them: the controller stops them
when the session ends, after every worker has finished (or crashed).

What the Zope tests build from the source tree (``.venv-zope5``,
``.venv-buildout`` and its eggs, the develop egg of a buildout run) is
built under a lock (``locked``, ``zopehost.instance.BUILD_LOCK``), so
that two workers never install into one place at the same time.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import pathlib
import shutil
import tempfile

import pytest

from wsgi_taskqueue.sqltesting import MariaDBServer, PostgresServer

#: The key of ``workerinput`` that names the run's shared directory.
DIRECTORY_KEY = 'wsgi_taskqueue_shared_directory'
SHARED_KINDS = {kind.kind: kind for kind in (PostgresServer, MariaDBServer)}
_directory = pytest.StashKey[str]()
#: The servers this worker started (their process objects live on).
_started: list = []


@contextlib.contextmanager
def locked(path: pathlib.Path):
    """Hold an exclusive lock on the file ``path`` (made if missing) for
    the ``with`` block, against every other process that asks for it."""
    with open(path, 'a') as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def configure_worker(node) -> None:
    """In the controller of a parallel run: hand each worker the directory
    they share (made for the first)."""
    stash = node.config.stash
    if _directory not in stash:
        stash[_directory] = tempfile.mkdtemp(prefix='wsgi-taskqueue-run-')
    node.workerinput[DIRECTORY_KEY] = stash[_directory]


def database_of_worker(config, kind: str, worker_id: str) -> str:
    """The URL of a database of ``worker_id``'s own on the run's server of
    ``kind`` (``'postgresql'`` or ``'mariadb'``), which the first worker
    to ask starts."""
    directory = pathlib.Path(config.workerinput[DIRECTORY_KEY])
    handle = directory / f'{kind}.json'
    with locked(directory / f'{kind}.lock'):
        if handle.exists():
            server = SHARED_KINDS[kind](**json.loads(handle.read_text()))
        else:
            server = SHARED_KINDS[kind]().start()
            handle.write_text(json.dumps(server.handle()))
            _started.append(server)
        return server.create_database(f'tasks_{worker_id}')


def stop_shared_servers(config) -> None:
    """In the controller, once the workers are done: stop the servers
    they started, remove the directory."""
    directory = config.stash.get(_directory, None)
    if directory is None:
        return
    for kind, server_class in SHARED_KINDS.items():
        handle = pathlib.Path(directory) / f'{kind}.json'
        if handle.exists():
            server_class(**json.loads(handle.read_text())).close()
    shutil.rmtree(directory, ignore_errors=True)


