"""collective.taskqueue's recommended Redis: a unix socket, by path."""
import pytest

import wsgi_taskqueue
from wsgi_taskqueue.testing import RedisServer

from dummies import RecordingApp, add, wait_until


@pytest.fixture(scope='module')
def socket_server():
    with RedisServer(unix_socket=True) as server:
        yield server


@pytest.mark.parametrize('settings', ['unix_socket_path', 'url'])
def test_tasks_are_enqueued_and_consumed_through_a_unix_socket(
        socket_server, tmp_path, consume, settings):
    path = tmp_path / 'unix.ini'
    where = (f'unix_socket_path = {socket_server.socket_path}'
             if settings == 'unix_socket_path'
             else f'url = unix://{socket_server.socket_path}?db=2')
    path.write_text(f'[taskqueue]\ntype = redis\n{where}\n'
                    f'key_prefix = unix-{settings}\n')
    wsgi_taskqueue.configure(str(path))
    queue = wsgi_taskqueue.get_queue()
    app = RecordingApp()
    [task_id] = add('/over-the-socket')
    assert len(queue) == 1
    consume(app)
    [environ] = app.wait_for(1)
    assert environ['HTTP_X_TASK_ID'] == task_id
    wait_until(lambda: queue.counts()['processing'] == {})
    assert len(queue) == 0
    # The server never listened on TCP for this queue: it came by socket.
    assert queue.pool.connection_class.__name__ == \
        'UnixDomainSocketConnection'
