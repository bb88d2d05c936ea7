"""The Redis queue through Sentinel, and min_replicas: settings, errors,
and the WAIT that makes a vote say no (the failover faults are in
faults/test_sentinel.py)."""
import os
import signal
import textwrap
import threading

import pytest
import redis
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.backends.redis.sentinel import announced_primary
from wsgi_taskqueue.errors import BackendUnavailable, ConfigurationError
from wsgi_taskqueue.testing_ha import wait_until


def configure(tmp_path, text: str):
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(text))
    return wsgi_taskqueue.configure(str(path))


def test_a_sentinel_url_and_the_sentinel_keys_find_the_primary(
        tmp_path, sentinel_url, sentinel_group):
    hosts = ' '.join(f'127.0.0.1:{p}' for p in sentinel_group.sentinel_ports)
    configure(tmp_path, f"""
        [taskqueue:by_url]
        type = redis
        url = {sentinel_url}
        min_replicas = 2

        [taskqueue:by_keys]
        type = redis
        sentinels = {hosts}
        service_name = {sentinel_group.service}
    """)
    primary = sentinel_group.primary_port()
    for name in ('by_url', 'by_keys'):
        queue = wsgi_taskqueue.get_queue(name)
        assert queue.where.startswith('redis+sentinel://127.0.0.1:')
        with transaction.manager:
            taskqueue.add('/task', queue=name)
        assert queue.counts()['pending'] == 1
        assert queue.pool.master_address == ('127.0.0.1', primary)
        # Each Sentinel watches the primary (a command and an event link).
        assert queue.clients()['sentinel'] == 6
    # min_replicas = 2: both replicas had the tasks when the commit ended.
    by_url = wsgi_taskqueue.get_queue('by_url')
    for server in sentinel_group.servers:
        if server.port != primary:
            replica = redis.Redis('127.0.0.1', server.port)
            assert replica.llen(by_url.pending_key) == 1


@pytest.mark.parametrize('settings, message', [
    ('url = redis+sentinel://127.0.0.1:1', 'service_name'),
    ('url = redis+sentinel://127.0.0.1:1/s/x', 'service_name'),
    ('url = redis+sentinel://127.0.0.1:1/s?db=1', 'no query'),
    ('url = redis+sentinel://127.0.0.1:1/s\nservice_name = s', 'not both'),
    ('service_name = s', 'needs sentinels'),
    ('sentinels = 127.0.0.1', "key 'sentinels'.*host:port"),
    ('min_replicas = -1', "key 'min_replicas'.*at least 0"),
    ('url = redis+cluster://127.0.0.1:1/3', 'only db 0'),
])
def test_bad_sentinel_and_cluster_settings_are_named(tmp_path, settings,
                                                     message):
    with pytest.raises(ConfigurationError, match=message):
        configure(tmp_path, '[taskqueue]\ntype = redis\n' + settings + '\n')


def test_without_enough_replicas_the_vote_says_no(redis_url):
    """A Redis without replicas cannot confirm min_replicas = 1: the
    transaction aborts within the bound and leaves nothing behind."""
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, socket_timeout=0.4,
                                      min_replicas=1)
    wsgi_taskqueue.register_queue('default', queue)
    with pytest.raises(BackendUnavailable, match='0 of min_replicas = 1'), \
            transaction.manager:
        taskqueue.add('/task')
    assert queue.counts() == {'pending': 0, 'delayed': 0, 'dead': 0,
                              'staged': 0, 'processing': {}}


@pytest.mark.parametrize('channel, data, address', [
    ('+switch-master', 'tq 10.0.0.1 6379 10.0.0.2 6380', ('10.0.0.2', 6380)),
    ('+selected-slave', 'slave 10.0.0.2:6380 10.0.0.2 6380 @ tq 10.0.0.1 '
     '6379', ('10.0.0.2', 6380)),
    ('+promoted-slave', 'slave 10.0.0.2:6380 10.0.0.2 6380 @ tq 10.0.0.1 '
     '6379', ('10.0.0.2', 6380)),
    ('+switch-master', 'other 10.0.0.1 6379 10.0.0.2 6380', None),
    ('+selected-slave', 'slave 10.0.0.2:6380 10.0.0.2 6380 @ other 10.0.0.1 '
     '6379', None),
    ('+switch-master', 'tq', None),
])
def test_the_sentinel_events_that_name_aannounced_primary(channel, data, address):
    message = {'type': 'message', 'channel': channel, 'data': data}
    assert announced_primary(message, 'tq') == address


def test_a_forked_child_follows_the_sentinels_itself(sentinel_url):
    queue = wsgi_taskqueue.RedisQueue(url=sentinel_url)
    watchers = queue.topology._watchers
    assert len(watchers) == 3 and all(w.is_alive() for w in watchers)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        alive = [w.is_alive() for w in queue.topology._watchers]
        os.write(write_end, b'ok' if alive == [True] * 3 else b'no')
        os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 2) == b'ok'
    os.waitpid(pid, 0)


def test_a_vote_whose_replicas_confirm_after_a_failover_began_says_no(
        sentinel_url, sentinel_group):
    """The replicas confirm a stage (WAIT) only after the Sentinels
    announced another primary to this process (what its Sentinel watchers
    do on ``+selected-slave``): a replica not yet reconfigured may have
    confirmed a write it is about to drop, so the vote says no, and the
    abort leaves nothing staged."""
    queue = wsgi_taskqueue.RedisQueue(url=sentinel_url, socket_timeout=20,
                                      min_replicas=2)
    wsgi_taskqueue.register_queue('default', queue)
    primary = redis.Redis('127.0.0.1', sentinel_group.primary_port())
    replicas = [s for s in sentinel_group.servers
                if s.port != sentinel_group.primary_port()]
    outcome = {}

    def commit():
        try:
            with transaction.manager:
                taskqueue.add('/task')
        except BackendUnavailable as exc:
            outcome['error'] = exc

    thread = threading.Thread(target=commit)
    for replica in replicas:  # they cannot confirm until continued
        os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        thread.start()
        wait_until(lambda: any(client['cmd'] == 'wait'
                               for client in primary.client_list()),
                   'the vote to wait for its replicas')
        queue.topology.switched()
    finally:
        for replica in replicas:
            os.kill(replica.process.pid, signal.SIGCONT)
    thread.join()
    assert 'announced another primary during the stage' in str(
        outcome['error'])
    assert queue.counts()['staged'] == queue.counts()['pending'] == 0
