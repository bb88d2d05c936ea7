"""Redis access control and TLS, configured the way users configure them."""
import textwrap

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import BackendUnavailable
from wsgi_taskqueue.testing import RedisServer


@pytest.fixture
def acl_user(redis_server, redis_url):
    client = redis_server.client()
    client.acl_setuser('tasks', enabled=True, passwords=['+s3cret-pw'],
                       keys=['wsgi-taskqueue:*'], commands=['+@all'])
    yield 'tasks', 's3cret-pw'
    client.acl_deluser('tasks')


def round_trip(queue):
    wsgi_taskqueue.register_queue('default', queue)
    with transaction.manager:
        taskqueue.add('/secured')
    return [queue.codec.decode(m).url for m in queue.reserve('c', 5, 0)]


def test_an_acl_user_in_the_url(redis_server, acl_user):
    user, password = acl_user
    queue = wsgi_taskqueue.RedisQueue(
        url=f'redis://{user}:{password}@127.0.0.1:{redis_server.port}/0')
    assert round_trip(queue) == ['/secured']


def test_an_acl_user_in_the_seed_keys(redis_server, acl_user, tmp_path):
    user, password = acl_user
    ini = tmp_path / 'app.ini'
    ini.write_text(textwrap.dedent(f"""
        [taskqueue]
        type = redis
        port = {redis_server.port}
        username = {user}
        password = {password}
    """))
    wsgi_taskqueue.configure(str(ini))
    assert round_trip(wsgi_taskqueue.get_queue()) == ['/secured']


def test_a_wrong_password_fails_the_vote_without_showing_it(redis_server,
                                                            acl_user):
    queue = wsgi_taskqueue.RedisQueue(
        url=f'redis://tasks:wrong-pw@127.0.0.1:{redis_server.port}/0')
    wsgi_taskqueue.register_queue('default', queue)
    transaction.begin()
    taskqueue.add('/never')
    with pytest.raises(BackendUnavailable) as info:
        transaction.commit()
    transaction.abort()
    assert 'wrong-pw' not in str(info.value)
    assert f'127.0.0.1:{redis_server.port}' in str(info.value)
    assert info.value.unsent  # refused at the door: nothing to discard


def test_tls_with_a_rediss_url():
    with RedisServer(tls=True) as server:
        queue = wsgi_taskqueue.RedisQueue(url=server.url)
        assert server.url.startswith('rediss://')
        assert round_trip(queue) == ['/secured']
        wsgi_taskqueue.unregister_queue('default').close()
