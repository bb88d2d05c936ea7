"""Queue operations for operators, on each backend."""
import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import admin, admin_dead, context, taskqueue
from wsgi_taskqueue.deadletter import DeadLetter

from dummies import RecordingApp, add

#: What the app answers, by path: done, retried, dead.
ANSWERS = {'/ok': '200 OK', '/flaky': '503 Service Unavailable',
           '/gone': '404 Not Found'}


def work(queue_name='default', limit=100):
    """Run what is pending once, synchronously, as consumer 'tester'
    (retries wait an hour, so they stay delayed)."""
    backend = wsgi_taskqueue.get_queue(queue_name)
    consumer = wsgi_taskqueue.Consumer(
        RecordingApp(respond=lambda environ: ANSWERS[environ['PATH_INFO']]),
        queue=queue_name, name='tester', retry_delay=3600)
    done = []
    for message in backend.reserve('tester', limit, 0):
        report = consumer.process(message)
        if report is not None:
            done.append((message, report))
    if done:
        backend.ack('tester', done)


def pending_ids(queue):
    return [queue.codec.decode(message).id
            for message in queue.reserve('reader', 1000, 0)]


def test_queue_status_counts_every_state_and_lists_consumers(queue):
    add('/ok', '/flaky', '/gone', '/ok')
    work(limit=3)
    queue.acquire('w1', 'token', 15, {'host': 'box', 'pid': 7,
                                      'concurrency': 4})
    queue.reserve('w1', 1, 0)  # in flight on w1
    status = admin.queue_status('default')
    assert {key: status[key] for key in (
        'queue', 'pending', 'in_flight', 'delayed', 'dead', 'staged',
        'live_consumers')} == {
        'queue': 'default', 'pending': 0, 'in_flight': 1, 'delayed': 1,
        'dead': 1, 'staged': 0, 'live_consumers': 1}
    [w1] = status['consumers']
    assert (w1['name'], w1['alive'], w1['in_flight'], w1['concurrency'],
            w1['host'], w1['pid']) == ('w1', True, 1, 4, 'box', 7)
    assert w1['heartbeat_age'] < 5
    assert status['outcomes'] == {'minutes': 15, 'done': 1, 'retried': 1,
                                  'dead': 1}


def test_a_gone_consumer_with_tasks_in_flight_is_listed(queue):
    add('/ok')
    queue.reserve('crashed', 1, 0)
    [crashed] = admin.queue_status('default')['consumers']
    assert (crashed['name'], crashed['alive'], crashed['in_flight']) == \
        ('crashed', False, 1)


def test_find_task_adds_the_dead_letter_of_a_dead_task(queue):
    ok, gone = add('/ok', '/gone')
    work()
    assert admin.find_task(ok)['state'] == 'done'
    found = admin.find_task(gone)
    assert found['state'] == 'dead'
    assert found['dead_letter']['status'] == '404 Not Found'
    assert admin.find_task('f' * 32) is None


def test_a_dead_task_is_found_after_its_status_record_expired(queue):
    [gone] = add('/gone')
    work()
    if isinstance(queue, wsgi_taskqueue.RedisQueue):
        queue.client.delete(queue.task_key(gone))
    elif isinstance(queue, wsgi_taskqueue.SqlQueue):
        with queue.store.transaction() as connection:
            queue._forget(connection, [gone])
    else:
        queue._log = type(queue._log)(queue)
    found = admin.find_task(gone)
    assert (found['id'], found['state'], found['status'], found['path']) \
        == (gone, 'dead', '404 Not Found', '/gone')


def test_tasks_of_several_queues_are_merged_newest_first(queue):
    wsgi_taskqueue.register_queue('other', wsgi_taskqueue.LocalQueue())
    first = add('/ok')
    second = add('/ok', queue='other')
    third = add('/ok')
    ids = [r['id'] for r in admin.tasks(['default', 'other'])]
    assert ids == third + second + first
    assert [r['id'] for r in admin.tasks(['default', 'other'], offset=1,
                                         limit=1)] == second
    assert [r['id'] for r in admin.tasks(['default'], state='queued')] == \
        third + first


def test_dead_letters_are_listed_newest_first(queue):
    add('/gone')
    add('/gone')
    work()
    letters = admin_dead.dead_letters()
    assert len(letters) == 2
    assert letters[0]['dead_at'] >= letters[1]['dead_at']
    assert letters[0]['status'] == '404 Not Found'
    assert admin_dead.dead_letters(offset=1, limit=5) == letters[1:]


def test_requeue_dead_by_id_starts_again_from_attempt_one(queue):
    [gone] = add('/gone')
    work()
    assert admin_dead.requeue_dead([gone, 'unknown']) == {
        'requeued': [gone], 'missing': ['unknown']}
    [message] = queue.reserve('reader', 10, 0)
    assert queue.codec.decode(message).attempt == 1
    assert queue.counts()['dead'] == 0


def test_requeue_all_dead_requeues_the_oldest_first_with_progress(queue):
    ids = add('/gone', '/gone', '/gone')
    work()
    seen = []
    assert admin_dead.requeue_all_dead('default', lambda *p: seen.append(p)) == 3
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert pending_ids(queue) == ids


def test_requeue_runs_the_delayed_and_the_dead_now(queue):
    add('/flaky', '/gone', '/ok')
    work(limit=2)
    assert admin.requeue('default') == {'delayed': 1, 'dead': 1}
    assert queue.counts()['pending'] == 3


def test_purge_and_reset(queue):
    add('/gone', '/flaky')
    work()
    add('/ok')
    assert admin.purge('default') == 2
    assert queue.counts()['dead'] == 1
    assert admin_dead.purge_dead('default') == 1
    add('/ok')
    admin.reset('default')
    assert admin.queue_status('default')['pending'] == 0


def test_add_task_commits_in_a_transaction_of_its_own(queue):
    transaction.begin()
    taskqueue.add('/outer')
    task_id = admin.add_task('/tasks/x', method='post', params={'a': 'b'},
                             headers={'X-Mine': '1'}, payload='{}',
                             user='alice')
    transaction.abort()
    [task] = [queue.codec.decode(m) for m in queue.reserve('r', 10, 0)]
    assert (task.id, task.method, task.url, task.user_id, task.payload,
            task.environ) == (task_id, 'POST', '/tasks/x?a=b', 'alice',
                              b'{}', {'HTTP_X_MINE': '1'})


def test_add_task_copies_nothing_of_the_request_being_served(queue):
    _, token = context.bind({'HTTP_COOKIE': 'session=secret',
                             'REMOTE_USER': 'admin'})
    try:
        admin.add_task('/x')
    finally:
        context.unbind(token)
    [task] = [queue.codec.decode(m) for m in queue.reserve('r', 10, 0)]
    assert (task.environ, task.user_id) == ({}, None)


def test_add_task_refuses_a_user_that_cannot_travel(queue):
    with pytest.raises(wsgi_taskqueue.InvalidTask):
        admin.add_task('/x', user='eve\r\nX-Evil: 1')
    assert queue.counts()['pending'] == 0


def test_letter_info_says_why_but_not_what(queue):
    letter = DeadLetter('abc', 'default', '/x', 'GET', None, 'boom', 2,
                        1.5, b'message')
    assert admin_dead.letter_info(letter) == {
        'task_id': 'abc', 'queue': 'default', 'method': 'GET', 'url': '/x',
        'status': None, 'error': 'boom', 'attempt': 2, 'dead_at': 1.5,
        'size': 7, 'problem': None}
