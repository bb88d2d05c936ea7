"""Consumers: dispatch, the outcome table, stop and restart."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import wsgi_taskqueue
from wsgi_taskqueue.deadletter import dead_letters, purge_dead, requeue_dead

from dummies import RecordingApp, add, wait_until
from faults.proxy import ReplyDroppingProxy


def test_a_committed_task_is_dispatched_and_acknowledged(queue, consume):
    app = RecordingApp()
    consume(app)
    [task_id] = add('/hello?x=1', method='POST', payload=b'data',
                    headers={'Cookie': 'a=b'})
    [environ] = app.wait_for(1)
    task = environ['wsgi_taskqueue.task']
    assert task.id == task_id and task.attempt == 1
    assert (environ['REQUEST_METHOD'], environ['PATH_INFO'],
            environ['QUERY_STRING']) == ('POST', '/hello', 'x=1')
    assert environ['test.body'] == b'data'
    assert environ['HTTP_COOKIE'] == 'a=b'
    assert environ['HTTP_X_TASK_ID'] == task_id
    assert environ['HTTP_X_TASK_QUEUE'] == 'default'
    assert environ['HTTP_X_TASK_RETRY_COUNT'] == '0'
    assert environ['HTTP_USER_AGENT'].startswith('wsgi-taskqueue/')
    wait_until(lambda: queue.counts()['processing'] == {})
    assert app.closed == 1


def test_many_tasks_run_exactly_once_with_several_threads(queue, consume):
    app = RecordingApp()
    consume(app, concurrent_limit=4, prefetch=3)
    ids = []
    for _ in range(10):
        ids += add(*[f'/t/{n}' for n in range(20)])
    environs = app.wait_for(200)
    wait_until(lambda: queue.counts()['processing'] == {})
    assert sorted(e['HTTP_X_TASK_ID'] for e in app.environs) == sorted(ids)
    assert len(environs) == 200


def test_redirects_are_done_but_not_followed(queue, consume):
    app = RecordingApp('302 Found', [('Location', '/elsewhere')])
    consume(app)
    add('/moved')
    app.wait_for(1)
    wait_until(lambda: queue.counts()['processing'] == {})
    assert queue.counts()['dead'] == queue.counts()['delayed'] == 0
    assert len(app.environs) == 1


@pytest.mark.parametrize('status', ['500 Internal Server Error',
                                    '503 Service Unavailable', '409 Conflict',
                                    '429 Too Many Requests'])
def test_retryable_answers_are_retried_then_dead_lettered(
        queue, consume, status):
    app = RecordingApp(status)
    consume(app, retry_max_count=2, retry_delay=0.05)
    [task_id] = add('/flaky')
    environs = app.wait_for(3)
    wait_until(lambda: queue.counts()['dead'] == 1)
    assert [e['HTTP_X_TASK_RETRY_COUNT'] for e in environs] == ['0', '1', '2']
    assert {e['HTTP_X_TASK_ID'] for e in environs} == {task_id}
    [letter] = dead_letters()
    assert (letter.task_id, letter.status, letter.attempt) == (
        task_id, status, 3)
    assert letter.error == 'ok'  # the body excerpt of the last answer


def test_a_task_that_recovers_is_done(queue, consume):
    app = RecordingApp(respond=lambda environ: (
        '500 Oops' if environ['HTTP_X_TASK_RETRY_COUNT'] == '0' else '200 OK'))
    consume(app, retry_delay=0.05)
    add('/recovers')
    app.wait_for(2)
    wait_until(lambda: queue.counts()['processing'] == {})
    assert queue.counts()['dead'] == queue.counts()['delayed'] == 0


def test_exceptions_are_retried_with_the_traceback_kept(queue, consume):
    def respond(environ):
        raise KeyError('broken view')
    consume(RecordingApp(respond=respond), retry_max_count=0)
    add('/raises')
    wait_until(lambda: queue.counts()['dead'] == 1)
    [letter] = dead_letters()
    assert letter.status is None
    assert "KeyError: 'broken view'" in letter.error


def test_client_errors_are_dead_lettered_at_once(queue, consume):
    app = RecordingApp('404 Not Found', body=[b'no such view'])
    consume(app, retry_max_count=5, retry_delay=0.05)
    add('/missing')
    wait_until(lambda: queue.counts()['dead'] == 1)
    assert len(app.environs) == 1
    [letter] = dead_letters()
    assert (letter.url, letter.status, letter.error) == (
        '/missing', '404 Not Found', 'no such view')


def test_a_task_with_a_countdown_runs_once_when_due_not_before(
        queue, consume):
    ran_at = {}

    def respond(environ):
        ran_at[environ['PATH_INFO']] = time.time()
        return '200 OK'
    app = RecordingApp(respond=respond)
    consume(app)
    before = time.time()
    [later] = add('/later', countdown=1)
    [now] = add('/now')
    [first] = app.wait_for(1)
    assert first['wsgi_taskqueue.task'].id == now
    assert queue.task_status(later)['state'] == 'scheduled'
    environs = app.wait_for(2)
    assert environs[1]['wsgi_taskqueue.task'].id == later
    assert ran_at['/later'] >= before + 1
    wait_until(lambda: queue.task_status(later)['state'] == 'done')
    assert len(app.environs) == 2


def test_retry_after_is_honoured(queue, consume):
    app = RecordingApp('503 Busy', [('Retry-After', '30')])
    consume(app, retry_delay=0.01)
    add('/busy')
    wait_until(lambda: queue.counts()['delayed'] == 1)
    assert len(app.environs) == 1


def test_dead_letters_can_be_requeued_and_run_from_attempt_one(
        queue, consume):
    fail = threading.Event()
    fail.set()
    app = RecordingApp(respond=lambda environ: (
        '400 Bad' if fail.is_set() else '200 OK'))
    consume(app)
    [task_id] = add('/later-fixed')
    wait_until(lambda: queue.counts()['dead'] == 1)
    fail.clear()
    [letter] = dead_letters()
    assert requeue_dead(letter)
    environs = app.wait_for(2)
    assert environs[1]['HTTP_X_TASK_ID'] == task_id
    assert environs[1]['HTTP_X_TASK_RETRY_COUNT'] == '0'
    wait_until(lambda: queue.counts()['processing'] == {})
    assert queue.counts()['dead'] == 0
    assert purge_dead() == 0


def test_a_message_that_is_not_a_task_is_buried_and_the_consumer_goes_on(
        queue, consume):
    app = RecordingApp()
    queue.stage('poison', [b'\n\x00garbage'])
    queue.promote('poison')
    consume(app)
    add('/after-poison')
    app.wait_for(1)
    wait_until(lambda: queue.counts()['dead'] == 1)
    [letter] = dead_letters()
    assert letter.task_id is None and 'not JSON' in letter.error
    assert letter.message == b'\n\x00garbage'


def test_stop_waits_for_tasks_in_flight(queue, consume):
    release = threading.Event()
    app = RecordingApp(respond=lambda e: release.wait(10) and '200 OK')
    consumer = consume(app)
    add('/slow')
    app.wait_for(1)
    threading.Timer(0.2, release.set).start()
    assert consumer.stop(5)
    assert queue.counts()['processing'] == {}


def test_a_stop_that_times_out_leaves_the_task_in_flight(
        redis_queue, consume):
    release = threading.Event()
    app = RecordingApp(respond=lambda e: release.wait(10) and '200 OK')
    consumer = consume(app, name='slow')
    add('/slow')
    app.wait_for(1)
    assert not consumer.stop(0.1)
    assert redis_queue.counts()['processing'] == {'slow': 1}
    release.set()


def test_a_consumer_requeues_its_own_leftovers_when_it_starts(
        redis_queue, consume):
    add('/left-over', '/pending')
    # A previous run of 'restartable' took a task and died.
    assert len(redis_queue.reserve('restartable', 1, 0)) == 1
    app = RecordingApp()
    consume(app, name='restartable')
    environs = app.wait_for(2)
    assert [e['PATH_INFO'] for e in environs] == ['/left-over', '/pending']
    wait_until(lambda: redis_queue.counts()['processing'] == {})


def test_stop_is_prompt_when_idle(queue, consume):
    consumer = consume(RecordingApp(), poll_interval=30, concurrent_limit=3)
    started = time.monotonic()
    assert consumer.stop(10)
    assert time.monotonic() - started < 5


def test_consumers_refuse_bad_limits(local_queue):
    with pytest.raises(ValueError, match='concurrent_limit'):
        wsgi_taskqueue.Consumer(RecordingApp(), concurrent_limit=0)
    with pytest.raises(ValueError, match='prefetch'):
        wsgi_taskqueue.Consumer(RecordingApp(), prefetch=0)


def test_a_second_consumer_with_a_live_name_refuses_to_start(queue, consume):
    consume(RecordingApp(), name='twin')
    with pytest.raises(wsgi_taskqueue.ConsumerNameInUse, match="'twin'"):
        wsgi_taskqueue.Consumer(RecordingApp(), name='twin').start()


def test_a_stopped_consumer_gives_its_name_back(queue, consume):
    consume(RecordingApp(), name='reused').stop(5)
    consume(RecordingApp(), name='reused')


def test_live_consumers_recover_the_tasks_of_a_gone_one(redis_queue, consume):
    add('/orphaned', '/also-orphaned')
    # A consumer of another host took both tasks, then its host vanished:
    # its lease runs out and it never comes back under that name.
    redis_queue.acquire('vanished', 'its-token', 0.3)
    assert len(redis_queue.reserve('vanished', 2, 0)) == 2
    app = RecordingApp()
    consume(app, name='survivor', lease_timeout=0.3)
    environs = app.wait_for(2)
    assert [e['PATH_INFO'] for e in environs] == ['/orphaned',
                                                  '/also-orphaned']
    wait_until(lambda: redis_queue.counts()['processing'] == {})


def test_long_tasks_of_a_live_consumer_are_not_redelivered(redis_queue,
                                                          consume):
    release = threading.Event()
    slow = RecordingApp(respond=lambda e: release.wait(10) and '200 OK')
    consume(slow, name='slow', lease_timeout=0.3)
    add('/long')
    slow.wait_for(1)
    other = RecordingApp()
    consume(other, name='other', lease_timeout=0.3)
    # Many lease periods go by while the task runs: its consumer renews
    # its lease, so the other consumer's sweeps leave the task alone.
    time.sleep(1.5)
    release.set()
    wait_until(lambda: redis_queue.counts()['processing'] == {})
    assert other.environs == []
    assert len(slow.environs) == 1


def test_orphaned_staged_batches_are_promoted_by_the_sweep(redis_queue,
                                                           consume, caplog):
    # A web process voted (staged) and died before promoting.
    redis_queue.stage('orphan-batch', [redis_queue.codec.encode(
        wsgi_taskqueue.Task.new(
            queue='default', url='/staged', method='GET', environ={},
            payload=b'', user_id=None))])
    app = RecordingApp()
    consume(app, lease_timeout=0.3, staged_grace=0.2)
    [environ] = app.wait_for(1)
    assert environ['PATH_INFO'] == '/staged'
    # The sweep logs once the promotion it made is done.
    wait_until(lambda: 'promoted staged batch orphan-batch' in caplog.text)


def test_secrets_never_reach_the_logs(redis_url, consume, caplog):
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, secrets=['SIGNING-KEY'])
    wsgi_taskqueue.register_queue('default', queue)
    app = RecordingApp(respond=lambda environ: {
        '/ok': '200 OK', '/retry': '500 Oops'}.get(environ['PATH_INFO'],
                                                  '403 Forbidden'))
    caplog.set_level('DEBUG')
    consume(app, retry_max_count=1, retry_delay=0.01)
    add('/ok?token=QUERY-SECRET', '/retry', '/forbidden',
        headers={'Cookie': 'session=COOKIE-SECRET',
                 'Authorization': 'Bearer AUTH-SECRET'})
    wait_until(lambda: queue.counts()['dead'] == 2)
    assert len(app.environs) == 4
    for secret in ('SIGNING-KEY', 'COOKIE-SECRET', 'AUTH-SECRET',
                   'QUERY-SECRET'):
        assert secret not in caplog.text
    assert 'GET /ok -> 200 OK' in caplog.text


def test_taskqueue_status_follows_a_task_as_the_consumer_runs_it(
        queue, consume):
    from wsgi_taskqueue.taskqueue import status
    release = threading.Event()
    app = RecordingApp(respond=lambda e: release.wait(10) and '200 OK')
    consume(app, name='watched')
    # The consumer is idle, waiting: the task wakes it (BLMOVE on Redis).
    [task_id] = add('/watched')
    app.wait_for(1)
    wait_until(lambda: status(task_id)['state'] == 'running')
    assert status(task_id)['consumer'] == 'watched#1'  # its first thread
    release.set()
    wait_until(lambda: status(task_id)['state'] == 'done')
    [attempt] = status(task_id)['attempts']
    assert attempt['status'] == '200 OK'
    assert status('0123456789abcdef') is None


def test_a_restarted_consumer_takes_its_name_over_from_its_dead_process(
        queue, consume):
    gone = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    # The crashed process's lease is still live (15 s by default).
    assert queue.acquire('phoenix', 'old-token', 30,
                         {'host': socket.gethostname(), 'pid': dead_pid})
    consume(RecordingApp(), name='phoenix')  # does not raise


def test_an_earlier_process_with_this_pid_is_gone(queue, consume):
    """A container restarted under its host name has pid 1 again."""
    assert queue.acquire('pid-one', 'old-token', 30, {
        'host': socket.gethostname(), 'pid': os.getpid(),
        'process': 'an earlier incarnation'})
    consume(RecordingApp(), name='pid-one')  # does not raise


def test_a_live_holder_of_the_name_on_another_host_is_respected(queue):
    queue.acquire('elsewhere', 'token', 30, {'host': 'other-host', 'pid': 1})
    with pytest.raises(wsgi_taskqueue.ConsumerNameInUse):
        wsgi_taskqueue.Consumer(RecordingApp(), name='elsewhere').start()


@pytest.fixture(params=['redis', 'postgresql'])
def cut_off_queue(request):
    """(queue through a proxy that can cut it off, the same queue reached
    directly): the first registered as the default queue."""
    if request.param == 'redis':
        server = request.getfixturevalue('redis_server')
        proxy = ReplyDroppingProxy(server.port)
        queue = wsgi_taskqueue.RedisQueue(url=proxy.url, socket_timeout=0.5)
        wsgi_taskqueue.register_queue('default', queue)
        direct = wsgi_taskqueue.RedisQueue(
            url=request.getfixturevalue('redis_url'))
    else:
        from conftest import sql_queue
        server = request.getfixturevalue('postgresql_server')
        if not server.running:  # a test stopped it
            server.start()
        proxy = ReplyDroppingProxy(server.port)
        sql_queue(server.url.replace(f':{server.port}/', f':{proxy.port}/'))
        direct = wsgi_taskqueue.SqlQueue(url=server.url)
    yield proxy, direct
    proxy.close()
    direct.close()


def test_no_task_of_a_batch_starts_once_the_lease_may_have_lapsed(
        cut_off_queue, consume, caplog):
    """G5: the consumer was cut off from its queue while the first task of
    its batch ran, for longer than its lease, and a sweep put the whole
    batch back in line.  The task it had started may run again (the
    window G5 allows); the one it had not started runs once, not also from
    the batch the consumer no longer holds."""
    proxy, direct = cut_off_queue
    release = threading.Event()
    app = RecordingApp(respond=lambda environ: (
        environ['PATH_INFO'] != '/first' or release.wait(10)) and '200 OK')
    add('/first', '/second')
    consume(app, name='cut-off', prefetch=2, lease_timeout=0.6)
    app.wait_for(1)
    proxy.cut_off()
    wait_until(lambda: not any(holder['alive']
                               for holder in direct.consumers()))
    assert direct.sweep(grace=60)['requeued'] == 2
    proxy.accept_again()
    release.set()
    wait_until(lambda: len(app.environs) >= 3)
    wait_until(lambda: direct.counts()['processing'] == {}
               and direct.counts()['pending'] == 0)
    paths = [environ['PATH_INFO'] for environ in app.environs]
    assert sorted(paths) == ['/first', '/first', '/second']
    assert 'its lease was renewed' in caplog.text


def test_a_lease_renewed_after_it_lapsed_begins_a_new_term(queue):
    """What was reserved before a lapse may have been swept meanwhile: the
    renewal that ends the lapse does not cover it; one in time does."""
    from wsgi_taskqueue.lease import Lease
    lease = Lease(wsgi_taskqueue.Consumer(RecordingApp(), name='term',
                                          lease_timeout=0.3))
    lease.acquire()
    reserved_at = time.monotonic()
    lease.acquire()  # renewed within the term
    assert lease.held_since(reserved_at)
    wait_until(lambda: not lease.held())
    assert not lease.held_since(reserved_at)
    lease.acquire()
    assert lease.held() and not lease.held_since(reserved_at)
    assert lease.held_since(time.monotonic())
