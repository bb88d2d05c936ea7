"""Fixtures shared by the whole suite.

Redis is a real ``redis-server`` the suite starts on a free port; each
test gets a clean database on it (FLUSHALL of our own server only).
PostgreSQL and MariaDB are servers of the suite's own too (started once
per run, in temporary directories, on free ports), whose queue tables
each test empties; SQLite is a file of the test's own.  Run in parallel
(pytest-xdist), each worker has its own Redis servers and a database of
its own on the run's PostgreSQL and MariaDB (``xdist_sharing`` says why).
"""
from __future__ import annotations

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import registry
from wsgi_taskqueue.sqltesting import MariaDBServer, PostgresServer
from wsgi_taskqueue.testing import RedisServer
from wsgi_taskqueue.testing_cluster import ClusterServers
from wsgi_taskqueue.testing_ha import SentinelGroup

from xdist_sharing import (
    configure_worker,
    database_of_worker,
    stop_shared_servers,
)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """In the controller of a parallel run: tell each worker where the
    run's shared servers are."""
    configure_worker(node)


def pytest_unconfigure(config):
    """In the controller: stop the servers the workers shared."""
    stop_shared_servers(config)


def worker_of(config) -> str | None:
    """The pytest-xdist worker this process is (``'gw0'``...), or None."""
    workerinput = getattr(config, 'workerinput', None)
    return workerinput['workerid'] if workerinput else None


@pytest.fixture(scope='session')
def redis_server():
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture(scope='session')
def sentinel_group():
    """A primary, two replicas and three Sentinels, shared by the suite."""
    with SentinelGroup() as group:
        yield group


@pytest.fixture
def sentinel_url(sentinel_group):
    """The redis+sentinel URL of the group, every server running and
    empty."""
    for server in sentinel_group.servers:
        if server.process is None:  # a test killed it
            sentinel_group.revive(server)
    sentinel_group.flush()
    return sentinel_group.url


@pytest.fixture(scope='session')
def redis_cluster():
    """A Redis Cluster of three primaries with a replica each, shared by
    the suite."""
    with ClusterServers(primaries=3, replicas=1) as cluster:
        yield cluster


@pytest.fixture
def cluster_url(redis_cluster):
    """The redis+cluster URL, every node running and every primary
    empty."""
    for server in redis_cluster.servers:
        if server.process is None:  # a test killed it
            server.start()
    redis_cluster.wait_settled()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def redis_url(redis_server):
    """The URL of a Redis with nothing in it."""
    if redis_server.process is None:  # a test stopped it
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(autouse=True)
def clean_state():
    """No queue, transaction or configuration leaks from one test to the
    next."""
    transaction.abort()
    yield
    transaction.abort()
    for name in registry.queue_names():
        registry.unregister_queue(name).close()
    from wsgi_taskqueue import config
    config._configured.clear()


@pytest.fixture
def local_queue():
    queue = wsgi_taskqueue.LocalQueue()
    wsgi_taskqueue.register_queue('default', queue)
    return queue


@pytest.fixture
def redis_queue(redis_url):
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, socket_timeout=2.0)
    wsgi_taskqueue.register_queue('default', queue)
    return queue


def _database_url(request, kind: str) -> str:
    """The database of ``{kind}_server`` when the test uses that server
    too (it may stop it: its queue must be on it) or runs without xdist;
    else the worker's on the run's shared server."""
    if (worker_of(request.config) is None
            or f'{kind}_server' in request.fixturenames):
        server = request.getfixturevalue(f'{kind}_server')
        if not server.running:  # a test stopped it
            server.start()
        return server.url
    return request.getfixturevalue(f'shared_{kind}_url')


@pytest.fixture(scope='session')
def postgresql_server():
    """A PostgreSQL of this process's own: a test may stop, kill and
    restart it."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope='session')
def shared_postgresql_url(request):
    """In a pytest-xdist worker, a database of the worker's own on the
    run's PostgreSQL."""
    return database_of_worker(request.config, 'postgresql',
                              worker_of(request.config))


@pytest.fixture
def postgresql_url(request):
    """A PostgreSQL database for the test: the one of ``postgresql_server``
    when the test uses that server too (it may stop it: its queue must be
    on it) or runs without xdist; else the worker's on the shared
    server."""
    return _database_url(request, 'postgresql')


@pytest.fixture(scope='session')
def mariadb_server():
    """A MariaDB of this process's own: a test may stop, kill and restart
    it."""
    with MariaDBServer() as server:
        yield server


@pytest.fixture(scope='session')
def shared_mariadb_url(request):
    """In a pytest-xdist worker, a database of the worker's own on the
    run's MariaDB."""
    return database_of_worker(request.config, 'mariadb',
                              worker_of(request.config))


@pytest.fixture
def mariadb_url(request):
    """A MariaDB database for the test, chosen as ``postgresql_url``
    chooses."""
    return _database_url(request, 'mariadb')


@pytest.fixture
def sqlite_url(tmp_path):
    return f'sqlite:///{tmp_path}/tasks.db'


def empty_sql_queue(url):
    """A SQL queue on ``url`` whose tables exist and are empty."""
    queue = wsgi_taskqueue.SqlQueue(url=url)
    queue.store.init()
    with queue.store.transaction() as connection:
        for table in queue.store.tables.of_queue():
            connection.execute(table.delete())
    return queue


def sql_queue(url):
    """A registered SQL queue on ``url`` whose tables are empty."""
    queue = empty_sql_queue(url)
    wsgi_taskqueue.register_queue('default', queue)
    return queue


@pytest.fixture
def sqlite_queue(sqlite_url):
    return sql_queue(sqlite_url)


@pytest.fixture
def postgresql_queue(postgresql_url):
    return sql_queue(postgresql_url)


@pytest.fixture
def mariadb_queue(mariadb_url):
    return sql_queue(mariadb_url)


@pytest.fixture(params=['local', 'redis', 'sqlite', 'postgresql', 'mariadb'])
def queue(request):
    """Each backend in turn: one contract, five implementations."""
    return request.getfixturevalue(f'{request.param}_queue')


@pytest.fixture
def sharded_queue(redis_url):
    from wsgi_taskqueue.backends.redis.sharded import ShardedRedisQueue
    queue = ShardedRedisQueue(url=redis_url, shards=2, socket_timeout=2)
    wsgi_taskqueue.register_queue('default', queue)
    return queue


@pytest.fixture(params=['local', 'redis', 'sharded', 'sqlite', 'postgresql',
                        'mariadb'])
def any_queue(request):
    """Each backend in turn, the sharded Redis queue among them."""
    return request.getfixturevalue(f'{request.param}_queue')


@pytest.fixture
def consume():
    """Start consumers of the registered queues; stop them all after the
    test.  ``consume(app, name=..., ...)`` takes Consumer's arguments."""
    started = []

    def start(app, **kwargs):
        kwargs.setdefault('name', f'test-{len(started)}')
        kwargs.setdefault('poll_interval', 0.2)
        consumer = wsgi_taskqueue.Consumer(app, **kwargs)
        consumer.start()
        started.append(consumer)
        return consumer
    yield start
    for consumer in started:
        consumer.stop(5)


@pytest.fixture
def run(capsys):
    """The ``wsgi-taskqueue`` command: ``run(*argv)`` -> (exit code,
    stdout, stderr)."""
    from wsgi_taskqueue.cli import main

    def run(*argv):
        code = main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run
