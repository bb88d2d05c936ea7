"""``type = sync`` (tasks run before commit() returns) and the recording
queue of ``wsgi_taskqueue.testing``."""
import threading

import transaction
import webtest

import wsgi_taskqueue
from wsgi_taskqueue import config, taskqueue
from wsgi_taskqueue.middleware import filter_factory
from wsgi_taskqueue.testing import recording

from dummies import RecordingApp, add


def test_sync_tasks_run_before_commit_returns(tmp_path):
    app = RecordingApp()
    wsgi_taskqueue.register_queue(
        'default', wsgi_taskqueue.backends.SyncQueue(app=app))
    [task_id] = add('/hello?x=1')
    [environ] = app.environs
    assert (environ['PATH_INFO'], environ['QUERY_STRING']) == ('/hello', 'x=1')
    assert environ['wsgi_taskqueue.task'].id == task_id
    assert wsgi_taskqueue.get_queue().task_status(task_id)['state'] == 'done'


def test_sync_tasks_run_in_a_transaction_of_their_own():
    seen = []

    def respond(environ):
        seen.append((threading.current_thread(), transaction.get()))
        return '200 OK'
    wsgi_taskqueue.register_queue('default', wsgi_taskqueue.backends.SyncQueue(
        app=RecordingApp(respond=respond)))
    with transaction.manager as committing:
        taskqueue.add('/x')
    [(thread, txn)] = seen
    assert thread is not threading.current_thread()
    assert txn is not committing


def test_sync_retries_run_at_once_up_to_the_limit():
    app = RecordingApp(status='503 Busy', headers=[('Retry-After', '3600')])
    queue = wsgi_taskqueue.backends.SyncQueue(app=app, retry_max_count=2)
    wsgi_taskqueue.register_queue('default', queue)
    [task_id] = add('/flaky')
    assert len(app.environs) == 3  # the first attempt and two retries
    assert queue.task_status(task_id)['state'] == 'dead'
    assert queue.counts()['dead'] == 1


def test_aborted_transactions_run_nothing_on_a_sync_queue():
    app = RecordingApp()
    wsgi_taskqueue.register_queue(
        'default', wsgi_taskqueue.backends.SyncQueue(app=app))
    with transaction.manager as txn:
        taskqueue.add('/never')
        txn.abort()
    transaction.commit()
    assert app.environs == []


def test_the_filter_gives_its_app_to_the_sync_queues_of_its_file(tmp_path):
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue]\ntype = sync\nretry_max_count = 1\n')
    seen = []

    def app(environ, start_response):
        if environ['PATH_INFO'] == '/order':
            taskqueue.add('/confirm')
        else:
            seen.append(environ['PATH_INFO'])
        start_response('200 OK', [])
        return [b'ok']
    wrapped = filter_factory({'__file__': str(ini)},
                             manage_transaction='true')(app)
    assert config.configure(str(ini)).queues['default'].app is wrapped
    webtest.TestApp(wrapped).post('/order')
    assert seen == ['/confirm']


def test_a_recording_queue_keeps_committed_tasks_and_runs_them():
    app = RecordingApp()
    with recording() as tasks:
        add('/first', params={'n': '1'})
        with transaction.manager as txn:
            taskqueue.add('/aborted')
            txn.abort()
        assert [(task.method, task.path) for task in tasks.recorded()] == [
            ('GET', '/first')]
        [status] = tasks.run(app)
        assert (status['path'], status['state']) == ('/first', 'done')
        assert tasks.recorded() == []
    assert app.environs[0]['QUERY_STRING'] == 'n=1'


def test_recording_puts_the_queue_it_replaced_back():
    original = wsgi_taskqueue.LocalQueue()
    wsgi_taskqueue.register_queue('mail', original)
    with recording('mail') as tasks:
        assert wsgi_taskqueue.get_queue('mail') is tasks
    assert wsgi_taskqueue.get_queue('mail') is original
