"""The filter: request binding, X-Task-* stripping, transaction handling."""
import logging

import pytest
import transaction
import webtest

from wsgi_taskqueue import is_task, taskqueue
from wsgi_taskqueue.dispatch import Dispatcher
from wsgi_taskqueue.middleware import TaskQueueMiddleware, filter_factory


def enqueuing_app(environ, start_response):
    """Reads the body first (as many apps do), then adds a task."""
    environ['wsgi.input'].read()
    taskqueue.add('/task', method=environ['REQUEST_METHOD'])
    if environ['PATH_INFO'] == '/fail':
        raise RuntimeError('view failed')
    status = '500 Error' if environ['PATH_INFO'] == '/500' else '200 OK'
    start_response(status, [('Content-Type', 'text/plain')])
    return [b'queued']


def echo_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    headers = sorted(k for k in environ if k.startswith('HTTP_X_TASK'))
    return [f'{is_task(environ)} {headers}'.encode()]


def taken(queue):
    return [queue.codec.decode(m) for m in queue.reserve('t', 100, 0)]


def test_x_task_headers_from_the_network_are_removed():
    app = webtest.TestApp(TaskQueueMiddleware(echo_app))
    response = app.get('/', headers={'X-Task-Id': 'forged',
                                     'X-Task-Queue': 'q', 'X-Other': '1'})
    assert response.text == 'False []'


def test_x_task_headers_of_dispatched_tasks_are_kept(local_queue):
    taskqueue.add('/view')
    transaction.commit()
    [task] = taken(local_queue)
    result = []
    app = TaskQueueMiddleware(echo_app)
    environ = Dispatcher(app).environ(task)
    body = b''.join(app(environ, lambda s, h: result.append(s)))
    assert body.decode() == ("True ['HTTP_X_TASK_ID', 'HTTP_X_TASK_QUEUE', "
                             "'HTTP_X_TASK_RETRY_COUNT']")


def test_the_body_is_copied_even_after_the_app_read_it(local_queue):
    app = webtest.TestApp(TaskQueueMiddleware(enqueuing_app,
                                              manage_transaction=True))
    app.post('/', params=b'payload', content_type='application/octet-stream')
    [task] = taken(local_queue)
    assert task.payload == b'payload'
    assert task.environ['CONTENT_TYPE'] == 'application/octet-stream'


@pytest.mark.parametrize('path, committed', [('/ok', True), ('/500', False)])
def test_a_managed_transaction_commits_only_on_success(
        local_queue, path, committed):
    app = webtest.TestApp(TaskQueueMiddleware(enqueuing_app,
                                              manage_transaction=True))
    app.get(path, status='*')
    assert len(taken(local_queue)) == (1 if committed else 0)


def test_a_managed_transaction_aborts_when_the_app_raises(local_queue):
    app = webtest.TestApp(TaskQueueMiddleware(enqueuing_app,
                                              manage_transaction=True))
    with pytest.raises(RuntimeError, match='view failed'):
        app.get('/fail')
    assert taken(local_queue) == []
    assert local_queue.counts()['staged'] == 0


def test_tasks_left_uncommitted_are_reported(local_queue, caplog):
    app = webtest.TestApp(TaskQueueMiddleware(enqueuing_app))
    with caplog.at_level(logging.WARNING, 'wsgi_taskqueue.middleware'):
        app.get('/forgot-to-commit')
    assert ('request GET /forgot-to-commit ended with 1 task(s) in a '
            'transaction that was not committed') in caplog.text
    transaction.abort()
    assert taken(local_queue) == []


def test_committed_requests_are_not_reported(local_queue, caplog):
    app = webtest.TestApp(TaskQueueMiddleware(enqueuing_app,
                                              manage_transaction=True))
    with caplog.at_level(logging.WARNING, 'wsgi_taskqueue.middleware'):
        app.get('/ok')
    assert caplog.text == ''


def test_the_filter_factory_registers_the_ini_queues(tmp_path):
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue:mail]\n')
    make_filter = filter_factory({'__file__': str(ini)},
                                 manage_transaction='true')
    middleware = make_filter(echo_app)
    assert middleware.manage_transaction is True
    taskqueue.add('/x', queue='mail')
