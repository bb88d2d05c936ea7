"""The status log stays bounded: whatever passes through a queue, it keeps
at most ``status_max`` records (after a sweep, for Redis)."""
from __future__ import annotations

import threading

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.status import Report

from dummies import wait_until

TASKS = 10_000
STATUS_MAX = 1_000
#: Records written between the last trim and the check.
SLACK = 100


class CountingApp:
    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.count += 1
        start_response('200 OK', [])
        return [b'']


def _queue(kind, request):
    if kind == 'local':
        return wsgi_taskqueue.LocalQueue(status_max=STATUS_MAX)
    return wsgi_taskqueue.RedisQueue(url=request.getfixturevalue('redis_url'),
                                     status_max=STATUS_MAX)


def _records(queue) -> int:
    """Status records the backend holds, whether indexed or not."""
    if isinstance(queue, wsgi_taskqueue.LocalQueue):
        return len(queue._log._records)
    return sum(1 for _ in queue.client.scan_iter(
        match=queue.base.replace('{', '\\{').replace('}', '\\}') + 'task:*',
        count=1000))


def _run_tasks_through(kind, request):
    """A queue keeping STATUS_MAX records, after TASKS tasks ran and a
    sweep."""
    queue = _queue(kind, request)
    wsgi_taskqueue.register_queue('default', queue)
    app = CountingApp()
    consumer = wsgi_taskqueue.Consumer(app, name='bounded', prefetch=100,
                                       concurrent_limit=2, poll_interval=0.1)
    consumer.start()
    try:
        for _ in range(TASKS // 1000):
            with transaction.manager:
                for _ in range(1000):
                    taskqueue.add('/t', payload=None)
        wait_until(lambda: app.count == TASKS, timeout=60)
        wait_until(lambda: queue.counts()['processing'] == {})
    finally:
        consumer.stop(10)
    queue.sweep(grace=60)
    return queue


@pytest.mark.parametrize('kind', ['local', 'redis'])
def test_ten_thousand_tasks_leave_at_most_status_max_records(kind, request):
    queue = _run_tasks_through(kind, request)
    assert len(queue.tasks(None, 0, TASKS)) <= STATUS_MAX + SLACK
    assert _records(queue) <= STATUS_MAX + SLACK


def test_every_status_key_in_redis_expires_whatever_state_it_is_in(
        redis_url):
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, status_ttl=600)
    wsgi_taskqueue.register_queue('default', queue)
    client = queue.client

    def expiries():
        keys = [k.decode() for k in client.scan_iter(queue.base + '*')]
        return {key: client.ttl(key) for key in keys
                if ':task:' in key or ':minute:' in key}

    with transaction.manager:
        task_id = taskqueue.add('/a')
    [message] = queue.reserve('w#1', 1, 0)
    assert queue.task_status(task_id)['state'] == 'running'
    # running: the TTL and the slack a quick end leaves as it is
    assert set(expiries().values()) <= set(range(1, 601 + 300))
    queue.ack('w#1', [(message, Report(task_id, 1, '200 OK', 0.01))])
    assert queue.task_status(task_id)['state'] == 'done'
    found = expiries()
    assert len(found) == 2  # the task's record, the minute's counts
    assert all(0 < ttl <= 3600 for ttl in found.values())
    assert 600 < client.ttl(queue.task_key(task_id)) <= 900  # quick task


def test_a_slow_tasks_record_expires_the_ttl_after_it_ended(redis_url):
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, status_ttl=600)
    wsgi_taskqueue.register_queue('default', queue)
    with transaction.manager:
        task_id = taskqueue.add('/a')
    [message] = queue.reserve('w#1', 1, 0)
    queue.ack('w#1', [(message, Report(task_id, 1, '200 OK', 2.5))])
    assert 0 < queue.client.ttl(queue.task_key(task_id)) <= 600
