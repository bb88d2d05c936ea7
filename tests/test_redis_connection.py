"""The thread connections that carry the Redis queue's scripts."""
import os
import threading

import transaction

from wsgi_taskqueue import admin, console, taskqueue

from dummies import RecordingApp, wait_until


def add_and_commit(url):
    with transaction.manager:
        taskqueue.add(url)


def test_a_script_finds_its_way_after_redis_forgot_it(redis_queue):
    add_and_commit('/before')
    redis_queue.client.script_flush()
    add_and_commit('/after')
    taken = redis_queue.reserve('w#1', 10, 0)
    assert [redis_queue.codec.decode(m).url for m in taken] == [
        '/before', '/after']


def test_a_connection_the_server_closed_while_idle_is_not_used(
        redis_queue, redis_server):
    add_and_commit('/before')
    redis_server.restart()
    redis_queue.client.flushall()
    # A reserve is never sent twice: on the closed connection it would
    # fail; the thread connection notices and connects anew first.
    assert redis_queue.reserve('w#1', 10, 0) == []
    add_and_commit('/after')
    [message] = redis_queue.reserve('w#1', 10, 0)
    assert redis_queue.codec.decode(message).url == '/after'


def test_a_forked_child_talks_on_connections_of_its_own(redis_queue):
    add_and_commit('/parent')
    parent_id = redis_queue.connections.run('CLIENT', 'ID')
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reports the connection it used
        try:
            add_and_commit('/child')
            os.write(write_end, str(
                redis_queue.connections.run('CLIENT', 'ID')).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = int(os.read(read_end, 100))
    os.waitpid(pid, 0)
    assert child_id != parent_id
    assert redis_queue.connections.run('CLIENT', 'ID') == parent_id
    add_and_commit('/parent-again')
    taken = redis_queue.reserve('w#1', 10, 0)
    assert [redis_queue.codec.decode(m).url for m in taken] == [
        '/parent', '/child', '/parent-again']


def test_status_counts_the_connections_to_redis_by_use(redis_queue, consume):
    """A consumer thread has a connection for its scripts and one for its
    blocking wait; committing threads add no more than ran at once."""
    consume(RecordingApp(), concurrent_limit=2)
    wait_until(lambda: redis_queue.clients().get('wait') == 2)

    def commit_in_threads():
        committers = [threading.Thread(target=add_and_commit, args=('/t',))
                      for _ in range(8)]
        for thread in committers:
            thread.start()
        for thread in committers:
            thread.join()

    for _ in range(3):
        commit_in_threads()
    connections = admin.queue_status('default')['connections']
    # The consumer's threads, its heartbeat's, this one's (it started it),
    # and at most one per committing thread that ran at once: the threads
    # of a round take over those of the round before
    # (test_redis_bounds.py counts that exactly).
    assert connections['thread'] <= 4 + 8, connections
    assert connections['wait'] == 2, connections
    assert 1 <= connections['pool'] <= 3, connections
    assert 'connections to its Redis: ' in console.render_status(
        [admin.queue_status('default')])
