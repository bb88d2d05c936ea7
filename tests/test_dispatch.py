"""Replaying a task: the environ the app sees, and the result."""
import pytest
import webob

from wsgi_taskqueue.dispatch import Dispatcher
from wsgi_taskqueue.task import Task

from dummies import RecordingApp


def make_task(**overrides):
    fields = dict(queue='q', url='/caf%C3%A9/x?a=1', method='PUT',
                  environ={'HTTP_HOST': 'example.com:8443',
                           'CONTENT_TYPE': 'text/plain'},
                  payload=b'body', user_id='alice', script_name='/site',
                  url_scheme='https')
    fields.update(overrides)
    return Task.new(**fields)


def test_the_request_is_rebuilt_as_webob_reads_it():
    app = RecordingApp()
    task = make_task()
    Dispatcher(app)(task)
    [environ] = app.environs
    request = webob.Request(environ)
    assert request.url == 'https://example.com:8443/site/caf%C3%A9/x?a=1'
    assert request.path_info == '/café/x'
    assert request.method == 'PUT'
    assert environ['test.body'] == b'body'
    assert request.content_type == 'text/plain'
    assert request.remote_user == 'alice'
    assert request.headers['X-Task-User-Id'] == 'alice'
    assert environ['wsgi_taskqueue.task'] is task


def test_hosts_without_a_port_get_the_scheme_default():
    app = RecordingApp()
    Dispatcher(app)(make_task(environ={'HTTP_HOST': 'example.com'}))
    [environ] = app.environs
    assert (environ['SERVER_NAME'], environ['SERVER_PORT']) == (
        'example.com', '443')


def test_without_a_user_there_is_no_remote_user():
    app = RecordingApp()
    Dispatcher(app)(make_task(user_id=None))
    assert 'REMOTE_USER' not in app.environs[0]
    assert 'HTTP_X_TASK_USER_ID' not in app.environs[0]


def test_copied_headers_cannot_override_what_the_dispatcher_sets():
    app = RecordingApp()
    task = make_task(environ={'HTTP_X_TASK_ID': 'forged',
                              'HTTP_USER_AGENT': 'x', 'REMOTE_USER': 'mallory',
                              'wsgi_taskqueue.task': 'forged'},
                     user_id=None)
    Dispatcher(app)(task)
    [environ] = app.environs
    assert environ['HTTP_X_TASK_ID'] == task.id
    assert environ['HTTP_USER_AGENT'].startswith('wsgi-taskqueue/')
    assert environ['wsgi_taskqueue.task'] is task


def test_the_result_keeps_status_headers_and_a_failure_excerpt():
    app = RecordingApp('503 Busy', [('Retry-After', '7')],
                       body=[b'x' * 5000])
    result = Dispatcher(app)(make_task())
    assert (result.status, result.status_code) == ('503 Busy', 503)
    assert result.header('retry-after') == '7'
    assert result.error == 'x' * 2048
    assert app.closed == 1


def test_a_raising_app_gives_its_traceback():
    def app(environ, start_response):
        raise ValueError('boom')
    result = Dispatcher(app)(make_task())
    assert result.status is None and 'ValueError: boom' in result.error


def test_a_body_that_raises_while_iterated_is_a_failure_and_is_closed():
    closed = []

    class Body:
        def __iter__(self):
            yield b'part'
            raise OSError('disk gone')

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response('200 OK', [])
        return Body()
    result = Dispatcher(app)(make_task())
    assert result.status is None and 'OSError: disk gone' in result.error
    assert closed == [True]


def test_an_app_that_never_starts_the_response_is_a_failure():
    result = Dispatcher(lambda environ, start_response: [])(make_task())
    assert result.status is None
    assert result.error == 'the app never called start_response'


@pytest.mark.parametrize('status', ['200 OK', '204 No Content'])
def test_successful_bodies_are_not_kept(status):
    result = Dispatcher(RecordingApp(status))(make_task())
    assert result.error is None
