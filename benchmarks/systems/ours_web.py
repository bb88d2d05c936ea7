"""What adding tasks costs a web request: the commit overhead.

waitress (one thread) serves :mod:`systems.ours_app` behind the taskqueue
filter with ``manage_transaction = true``, from ``wsgi-taskqueue serve``
without consumers (a web-only process); a keep-alive HTTP/1.1 client on
loopback sends requests that add 0, 1 and 10 tasks, interleaved one by one
so that drift hits all alike.
"""
from __future__ import annotations

import http.client
import socket
import sys
import time

from wsgi_taskqueue.testing import free_port

from systems import ours, server
from systems.workers import Worker

#: Tasks added per request, one variant each; 0 is the reference.
TASKS = (0, 1, 10)


def web(requests: int) -> dict[int, float]:
    """Seconds per request for each number of tasks in :data:`TASKS`.

    Raises unless the queue then holds exactly the tasks the requests
    committed.
    """
    server.flush()
    port = free_port()
    path = ours.config('web.ini', f"""
[pipeline:main]
pipeline = taskqueue app

[filter:taskqueue]
use = egg:wsgi-taskqueue#taskqueue
manage_transaction = true

[app:app]
use = call:systems.ours_app:app_factory

[server:main]
use = egg:wsgi-taskqueue#waitress
listen = 127.0.0.1:{port}
threads = 1
{ours.QUEUE_SECTION}
""")
    seconds = dict.fromkeys(TASKS, 0.0)
    serve = Worker([sys.executable, '-m', 'wsgi_taskqueue', 'serve', path])
    with serve.running() as running:
        running.wait(lambda: _accepts(port), 1, interval=0.05)
        connection = http.client.HTTPConnection('127.0.0.1', port)
        for tasks in TASKS:  # warm-up
            _get(connection, tasks)
        for _ in range(requests):
            for tasks in TASKS:
                start = time.perf_counter()
                _get(connection, tasks)
                seconds[tasks] += time.perf_counter() - start
        connection.close()
    queued = ours.queue.counts()['pending']
    if queued != (requests + 1) * sum(TASKS):
        raise RuntimeError(f'{queued} tasks queued, not '
                           f'{(requests + 1) * sum(TASKS)}')
    return {tasks: total / requests for tasks, total in seconds.items()}


def _accepts(port: int) -> int:
    try:
        socket.create_connection(('127.0.0.1', port), 0.1).close()
        return 1
    except OSError:
        return 0


def _get(connection: http.client.HTTPConnection, tasks: int) -> None:
    connection.request('GET', f'/enqueue?tasks={tasks}')
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f'/enqueue?tasks={tasks}: {response.status}')
