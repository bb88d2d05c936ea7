"""A task waiting on Redis has no status record of its own (its message
and its entry in the status index are all it holds: ``queued.py``); what
operators read of it, and every move that needs its record, still work."""
import transaction

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.backends.redis.queued import SCAN_BOUND
from wsgi_taskqueue.status import Report

from test_backends import promoted, task_message


def keys_of(queue) -> set:
    return {key.decode().removeprefix(queue.base)
            for key in queue.client.scan_iter(queue.base + '*')}


def test_a_queued_task_holds_only_its_message_and_its_index_entry(
        redis_queue):
    with transaction.manager:
        task_id = taskqueue.add('/report', params={'month': '11'})
    assert keys_of(redis_queue) == {'pending', 'tasks'}
    assert redis_queue.client.llen(redis_queue.pending_key) == 1
    assert redis_queue.client.zrange(redis_queue.tasks_key, 0, -1) == [
        task_id.encode()]
    [message] = redis_queue.reserve('w#1', 1, 0)
    # Running, it has its record, whole and expiring.
    assert keys_of(redis_queue) == {'tasks', 'consumers', 'processing:w#1',
                                    f'task:{task_id}'}
    stored = redis_queue.client.hgetall(redis_queue.task_key(task_id))
    assert {b'id', b'state', b'header', b'updated', b'consumer', b'started',
            b'attempt'} <= set(stored)
    assert b'"e":' not in stored[b'header']  # no environ, no credentials
    # the TTL and the slack a quick end leaves as it is (scripts.py)
    assert redis_queue.status_ttl < redis_queue.client.ttl(
        redis_queue.task_key(task_id)) <= redis_queue.status_ttl + 300


def test_a_queued_task_shows_its_path_and_options_while_it_waits(
        redis_queue):
    with transaction.manager:
        plain = taskqueue.add('/plain')
        urgent = taskqueue.add('/urgent', method='POST', priority=9,
                               label='send_mailing')
    for task_id, path, method in ((plain, '/plain', 'GET'),
                                  (urgent, '/urgent', 'POST')):
        status = redis_queue.task_status(task_id)
        assert (status['id'], status['state'], status['path'],
                status['method'], status['attempt'], status['problem']) == (
            task_id, 'queued', path, method, 1, None)
        assert status['created'] <= status['updated']
    status = redis_queue.task_status(urgent)
    assert (status['priority'], status['label']) == (9, 'send_mailing')
    listed = redis_queue.tasks(state='queued')
    assert [(s['id'], s['path']) for s in listed] == [
        (urgent, '/urgent'), (plain, '/plain')]
    assert [s['id'] for s in redis_queue.tasks(state='running')] == []
    redis_queue.reserve('w#1', 1, 0)
    running = redis_queue.task_status(urgent)
    assert (running['state'], running['path'], running['created']) == (
        'running', '/urgent', status['created'])
    assert [s['state'] for s in redis_queue.tasks()] == ['running', 'queued']


def test_a_listing_over_several_index_chunks_shows_every_queued_path(
        redis_queue):
    with transaction.manager:
        ids = [taskqueue.add(f'/t{number}', payload=None)
               for number in range(250)]
    listed = redis_queue.tasks(state='queued', start=0, count=250)
    assert [(s['id'], s['path']) for s in listed] == [
        (task_id, f'/t{number}') for number, task_id
        in reversed(list(enumerate(ids)))]


def test_a_task_whose_message_is_beyond_the_scan_shows_without_its_path(
        redis_queue):
    with transaction.manager:
        oldest = taskqueue.add('/oldest')
        for _ in range(SCAN_BOUND):
            taskqueue.add('/newer', payload=None)
    status = redis_queue.task_status(oldest)
    assert (status['id'], status['state'], status['path']) == (
        oldest, 'queued', '')
    assert status['created'] == status['updated'] > 0


def test_cancelling_or_purging_a_queued_task_records_it_whole(redis_queue):
    with transaction.manager:
        cancelled = taskqueue.add('/cancelled')
        purged = taskqueue.add('/purged')
    assert redis_queue.cancel(cancelled) == 'cancelled'
    assert redis_queue.purge() == 1
    for task_id, state, path in ((cancelled, 'cancelled', '/cancelled'),
                                 (purged, 'purged', '/purged')):
        status = redis_queue.task_status(task_id)
        assert (status['state'], status['path'], status['problem']) == (
            state, path, None)
        assert redis_queue.client.ttl(redis_queue.task_key(task_id)) > 0


def test_a_task_waits_for_a_queued_task_of_an_earlier_transaction(
        redis_queue):
    first, message = task_message(redis_queue)
    promoted(redis_queue, message, batch='earlier')
    waiting, second = task_message(redis_queue, after=[first.id])
    promoted(redis_queue, second, batch='later')
    assert redis_queue.task_status(waiting.id)['state'] == 'waiting'
    assert redis_queue.reserve('c', 10, 0) == [message]
    redis_queue.ack('c', [(message, Report(first.id, 1, '200 OK', 0.01))])
    assert redis_queue.reserve('c', 10, 0) == [second]


def test_a_task_waits_for_a_queued_task_cancelled_before_it_ran(redis_queue):
    first, message = task_message(redis_queue)
    promoted(redis_queue, message, batch='earlier')
    assert redis_queue.cancel(first.id) == 'cancelled'
    condemned, second = task_message(redis_queue, after=[first.id])
    promoted(redis_queue, second, batch='later')
    assert redis_queue.task_status(condemned.id)['state'] == 'dead'
    assert redis_queue.reserve('c', 10, 0) == []


def test_a_task_taken_but_never_marked_running_is_requeued_with_a_record(
        redis_queue):
    """Its consumer went between the BLMOVE that took it and the script
    that marks it running: the requeue writes its first record, whole."""
    with transaction.manager:
        task_id = taskqueue.add('/taken')
    redis_queue.client.lmove(redis_queue.pending_key,
                             redis_queue.processing_key('gone#1'))
    redis_queue.client.sadd(redis_queue.consumers_key, 'gone#1')
    assert redis_queue.requeue_processing('gone') == (1, 0)
    status = redis_queue.task_status(task_id)
    assert (status['state'], status['path'], status['problem']) == (
        'queued', '/taken', None)
    assert redis_queue.client.ttl(redis_queue.task_key(task_id)) > 0


def test_an_index_entry_of_no_record_and_no_pending_message_is_no_task(
        redis_queue):
    with transaction.manager:
        gone = taskqueue.add('/gone')
        waiting = taskqueue.add('/waiting')
    [message] = redis_queue.reserve('w#1', 1, 0)
    redis_queue.ack('w#1', [(message, Report(gone, 1, '200 OK', 0.01))])
    redis_queue.client.delete(redis_queue.task_key(gone))  # as by hand
    assert redis_queue.task_status(gone) is None
    assert [(s['id'], s['state']) for s in redis_queue.tasks()] == [
        (waiting, 'queued')]
