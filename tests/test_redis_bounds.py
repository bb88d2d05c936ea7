"""max_connections: one process's connections to one Redis stay within
the bound, whatever its number of threads, and a thread that finds them
all busy fails cleanly, with nothing written."""
import threading

import pytest
import redis
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import admin, console, taskqueue
from wsgi_taskqueue.errors import BackendUnavailable

from dummies import wait_until

#: The queues of these tests use a database of their own, so that the
#: server's CLIENT LIST tells their connections from any other's.
DB = 7
EMPTY = {'pending': 0, 'delayed': 0, 'dead': 0, 'staged': 0,
         'processing': {}}


@pytest.fixture
def bounded_queue(redis_server, redis_url):
    url = redis_url.rsplit('/', 1)[0] + f'/{DB}'
    redis.Redis.from_url(url).flushdb()

    def make(max_connections, socket_timeout=5.0):
        queue = wsgi_taskqueue.RedisQueue(
            url=url, max_connections=max_connections,
            socket_timeout=socket_timeout)
        wsgi_taskqueue.register_queue('default', queue)
        return queue
    return make


def connections_by_use(client) -> dict:
    counts: dict = {}
    for entry in client.client_list():
        if entry['db'] == str(DB) and entry['name'].startswith(
                'wsgi-taskqueue-'):
            use = entry['name'].removeprefix('wsgi-taskqueue-')
            counts[use] = counts.get(use, 0) + 1
    return counts


def test_many_threads_share_max_connections_and_lose_nothing(
        bounded_queue, redis_server):
    """48 threads, each started for a few requests (a thread-per-request
    server), commit and read at once through max_connections = 3: Redis
    never sees more than 3 script and 3 pool connections of the process,
    and every committed task is there once."""
    queue = bounded_queue(max_connections=3)
    committed, failed = [], []
    start = threading.Barrier(48)

    def request_thread():
        start.wait()
        for _ in range(5):
            try:
                with transaction.manager:
                    ids = [taskqueue.add('/a'), taskqueue.add('/b')]
                committed.extend(ids)
                queue.counts()  # a read through the pool
            except BackendUnavailable as exc:  # pragma: no cover
                failed.append(exc)

    peaks: dict = {}
    samples = []
    done = threading.Event()
    observer = redis_server.client()

    def sample():
        while not done.is_set():
            counts = connections_by_use(observer)
            samples.append(counts)
            for use, count in counts.items():
                peaks[use] = max(peaks.get(use, 0), count)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=request_thread) for _ in range(48)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()

    assert failed == []
    assert len(samples) > 1
    assert peaks.get('thread', 0) <= 3, peaks
    assert peaks.get('pool', 0) <= 3, peaks
    assert 1 <= connections_by_use(observer)['thread'] <= 3
    taken = queue.reserve('w#1', 1000, 0)
    assert sorted(queue.codec.decode(m).id for m in taken) == sorted(
        committed)
    assert len(committed) == 480


def test_threads_take_over_the_connections_of_threads_that_ended(
        bounded_queue, redis_server):
    """Rounds of 8 threads, each started for one request and ended: the
    connections of a round serve the next ones."""
    queue = bounded_queue(max_connections=50)
    observer = redis_server.client()

    def round_of_threads():
        start = threading.Barrier(8)

        def request_thread():
            start.wait()
            _commit('/t')
        threads = [threading.Thread(target=request_thread)
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def connections_made():
        return observer.info('stats')['total_connections_received']

    before = connections_made()
    for _ in range(6):
        round_of_threads()
    # 48 threads, never more than 8 at once: at most 8 connections made,
    # and kept for the next threads.
    assert connections_made() - before <= 8
    assert 1 <= connections_by_use(observer)['thread'] <= 8
    assert len(queue.reserve('w#1', 100, 0)) == 48


def test_a_commit_that_finds_every_connection_busy_writes_nothing(
        bounded_queue):
    """max_connections = 1, its one script connection in use by another
    thread for longer than socket_timeout: the vote says no, naming the
    setting; nothing is staged or queued; once free, commits go through."""
    queue = bounded_queue(max_connections=1, socket_timeout=0.3)
    lines = queue.connections.lines
    held = lines.take()  # this thread is in the middle of a command
    outcome = {}

    def commit():
        try:
            with transaction.manager:
                taskqueue.add('/refused')
        except BackendUnavailable as exc:
            outcome['error'] = exc

    try:
        thread = threading.Thread(target=commit)
        thread.start()
        thread.join()
    finally:
        lines.give_back(held)
    assert 'max_connections = 1' in str(outcome['error'])
    assert 'script connections' in str(outcome['error'])
    assert queue.counts() == EMPTY
    with transaction.manager:
        task_id = taskqueue.add('/accepted')
    [message] = queue.reserve('w#1', 10, 0)
    assert queue.codec.decode(message).id == task_id


def test_a_read_that_finds_the_pool_busy_names_the_bound(bounded_queue):
    queue = bounded_queue(max_connections=1, socket_timeout=0.3)
    held = queue.pool.get_connection()
    try:
        with pytest.raises(BackendUnavailable,
                           match=r'pool connections .*max_connections = 1'):
            queue.counts()
    finally:
        queue.pool.release(held)
    assert queue.counts() == EMPTY


def test_a_thread_waits_for_a_busy_connection_within_socket_timeout(
        bounded_queue):
    """A thread that finds the one connection busy gets it as soon as the
    other thread gives it back, and its commit goes through."""
    queue = bounded_queue(max_connections=1, socket_timeout=30)
    lines = queue.connections.lines
    held = lines.take()
    committed = []
    thread = threading.Thread(target=lambda: committed.append(
        _commit('/waited')))
    thread.start()
    wait_until(lambda: lines._waiting)  # the other thread waits for it
    lines.give_back(held)
    thread.join()
    [message] = queue.reserve('w#1', 10, 0)
    assert queue.codec.decode(message).id == committed[0]


def _commit(url):
    with transaction.manager:
        return taskqueue.add(url)


def test_status_shows_the_bound_beside_the_count(bounded_queue):
    bounded_queue(max_connections=4)
    _commit('/t')
    status = admin.queue_status('default')
    assert status['max_connections'] == 4
    assert ('(each process at most 4 pool and 4 thread: max_connections)'
            in console.render_status([status]))


@pytest.mark.parametrize('value, message', [
    ('0', "key 'max_connections'.*at least 1"),
    ('many', "key 'max_connections'"),
])
def test_a_bad_max_connections_is_refused_at_load(tmp_path, value, message):
    from wsgi_taskqueue.errors import ConfigurationError
    path = tmp_path / 'app.ini'
    path.write_text('[taskqueue]\ntype = redis\nmax_connections = '
                    f'{value}\n')
    with pytest.raises(ConfigurationError, match=message):
        wsgi_taskqueue.configure(str(path))
