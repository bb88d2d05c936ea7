"""The management app: its key, its JSON API (against openapi.yaml), the
dashboard's panels, and its ini factory."""
from __future__ import annotations

import configparser
import datetime
import fnmatch
import html
import pathlib
import re
import time

import hypothesis
import pytest
import schemathesis
import webtest
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    positive_data_acceptance,
)

import wsgi_taskqueue
from wsgi_taskqueue import admin_dead, registry
from wsgi_taskqueue.errors import ConfigurationError, UnknownQueue
from wsgi_taskqueue.management import app_factory, make_app
from wsgi_taskqueue.management.auth import SESSION_COOKIE
from wsgi_taskqueue.middleware import TaskQueueMiddleware

from dummies import RecordingApp, add, wait_until

KEY = 'management-test-key-0123456789'
AUTH = {'X-API-Key': KEY}
ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'src' / 'wsgi_taskqueue' / 'management'

#: One request to every route (and a path that is none).
EVERY_PATH = [
    ('GET', '/'), ('GET', ''), ('GET', '/panels'),
    ('GET', '/static/dashboard.js'), ('GET', '/openapi.yaml'),
    ('GET', '/task/abc'),
    ('GET', '/metrics'), ('GET', '/status'), ('GET', '/tasks'),
    ('POST', '/tasks'), ('GET', '/tasks/abc'), ('GET', '/queues/default/jobs'),
    ('GET', '/queues/default/jobs/abc'),
    ('POST', '/queues/default/jobs/abc/close'), ('GET', '/dead-letters'),
    ('POST', '/dead-letters/default/' + '0' * 32 + '/requeue'),
    ('POST', '/dead-letters/default/purge'),
    ('POST', '/queues/default/drain'), ('GET', '/no/such/path'),
]


@pytest.fixture
def api(queue):
    return webtest.TestApp(make_app(KEY))


def bury(queue, *urls, status='404 Not Found'):
    """Dead letters for ``urls``: a consumer runs them into ``status``."""
    app = RecordingApp(status=status, body=[b'<img src=x onerror=alert(1)>'])
    consumer = wsgi_taskqueue.Consumer(app, name='burier', poll_interval=0.1)
    consumer.start()
    try:
        ids = add(*urls)
        wait_until(lambda: queue.counts()['dead'] == len(urls))
    finally:
        consumer.stop(5)
    return ids


# -- the key ---------------------------------------------------------------

@pytest.mark.parametrize('headers', [
    {}, {'X-API-Key': 'wrong'}, {'X-API-Key': KEY[:-1]},
    {'X-API-Key': KEY + 'x'}, {'Authorization': 'Bearer wrong'},
    {'Authorization': f'Basic {KEY}'}, {'X-API-Key': ''},
    {'Cookie': f'{SESSION_COOKIE}=1.2.3'},
])
def test_without_a_valid_key_every_path_answers_the_same_404(api, headers):
    answers = {api.request(path, method=method, headers=headers, status='*',
                           body=b'{}').body for method, path in EVERY_PATH}
    assert answers == {b'{"error": "not found"}'}
    response = api.get('/status', headers=headers, status=404)
    assert 'Set-Cookie' not in response.headers


def test_the_key_is_taken_from_x_api_key_or_a_bearer_token(api):
    assert api.get('/status', headers=AUTH).json['queues'][0]['name'] \
        == 'default'
    api.get('/status', headers={'Authorization': f'Bearer {KEY}'})
    api.get('/status', headers={'Authorization': f'bearer {KEY}'})


def test_a_wrong_key_in_a_header_is_not_rescued_by_a_session(api):
    api.get(f'/?key={KEY}', status=303)
    api.get('/status')
    api.get('/status', headers={'X-API-Key': 'wrong'}, status=404)


def test_an_empty_key_is_refused():
    with pytest.raises(ValueError):
        make_app('  ')


def test_the_dashboard_key_opens_a_strict_http_only_session(api):
    response = api.get(f'/?key={KEY}', status=303)
    assert response.location == 'http://localhost/'
    cookie = response.headers['Set-Cookie']
    assert cookie.startswith(f'{SESSION_COOKIE}=')
    assert KEY not in cookie
    assert {'HttpOnly', 'SameSite=strict', 'Path=/'} <= {
        part.strip() for part in cookie.split(';')}
    page = api.get('/')
    assert page.content_type == 'text/html'
    assert "script-src 'self'" in page.headers['Content-Security-Policy']
    api.get('/panels')
    api.get('/static/dashboard.js')
    api.get('/status')


def test_a_wrong_dashboard_key_answers_404_and_no_cookie(api):
    response = api.get('/?key=wrong', status=404)
    assert 'Set-Cookie' not in response.headers
    api.get('/', status=404)


def test_a_forged_or_expired_session_is_refused(api, monkeypatch):
    api.get(f'/?key={KEY}', status=303)
    value = api.cookies[SESSION_COOKIE]
    issued, nonce, mac = value.split('.')
    other_nonce = nonce[:-1] + ('1' if nonce.endswith('0') else '0')
    for forged in (f'{int(issued) + 1}.{nonce}.{mac}',
                   f'{issued}.{other_nonce}.{mac}', f'{issued}.{nonce}.',
                   f'{issued}.{nonce}.{mac}.x', 'junk'):
        api.set_cookie(SESSION_COOKIE, forged)
        api.get('/status', status=404)
    api.set_cookie(SESSION_COOKIE, value)
    api.get('/status')
    later = time.time() + 13 * 3600
    monkeypatch.setattr(time, 'time', lambda: later)
    api.get('/status', status=404)


def test_a_session_acts_only_with_its_csrf_token(api, queue):
    bury(queue, '/gone')
    api.get(f'/?key={KEY}', status=303)
    page = api.get('/').text
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page)[1]
    api.post('/dead-letters/default/purge', status=403)
    api.post('/dead-letters/default/purge',
             headers={'X-CSRF-Token': 'f' * 64}, status=403)
    assert api.post('/dead-letters/default/purge',
                    headers={'X-CSRF-Token': token}).json == {'purged': 1}
    # The key in a header needs no token: a browser never sends it alone.
    api.reset()
    api.post('/dead-letters/default/purge', headers=AUTH)


def test_it_works_under_a_mount_point(queue):
    api = webtest.TestApp(make_app(KEY),
                          extra_environ={'SCRIPT_NAME': '/manage'})
    response = api.get(f'/?key={KEY}', status=303)
    assert response.location == 'http://localhost/manage/'
    assert 'Path=/manage/' in response.headers['Set-Cookie']
    assert api.get('', headers=AUTH, status=303).location == \
        'http://localhost/manage/'


def test_unknown_methods_answer_405_with_allow(api):
    response = api.delete('/tasks', headers=AUTH, status=405)
    assert response.headers['Allow'] == 'GET, HEAD, POST'


# -- reading ---------------------------------------------------------------

def test_status_has_counts_consumers_and_throughput(api, queue, consume):
    add('/a', '/b')
    status = api.get('/status?minutes=5', headers=AUTH).json
    [default] = status['queues']
    assert default['counts'] == {'pending': 2, 'processing': 0, 'delayed': 0,
                                 'dead': 0, 'staged': 0}
    assert len(default['throughput']) == 5
    app = RecordingApp()
    consume(app)
    app.wait_for(2)
    # Summed: the two may fall in two minutes.
    wait_until(lambda: sum(minute['done'] for minute in api.get(
        '/status', headers=AUTH).json['queues'][0]['throughput']) == 2)
    [consumer] = api.get('/status', headers=AUTH).json['queues'][0][
        'consumers']
    assert consumer['name'] == 'test-0' and consumer['alive']


def test_tasks_are_listed_by_state_and_found_by_id(api, queue):
    [dead] = bury(queue, '/gone')
    [queued] = add('/later')
    listed = api.get('/tasks', headers=AUTH).json['tasks']
    assert [task['id'] for task in listed] == [queued, dead]
    assert [task['id'] for task in api.get(
        '/tasks?state=dead', headers=AUTH).json['tasks']] == [dead]
    assert api.get('/tasks?count=1&start=1', headers=AUTH).json['tasks'][0][
        'id'] == dead
    record = api.get(f'/tasks/{dead}', headers=AUTH).json
    assert (record['state'], record['path'], record['status']) == (
        'dead', '/gone', '404 Not Found')
    assert api.get('/tasks/nope', headers=AUTH, status=404).json['error'] \
        .startswith("unknown task 'nope'")
    assert api.get('/tasks?state=lost', headers=AUTH, status=400).json[
        'error'].startswith('state must be one of')
    api.get('/tasks?count=0', headers=AUTH, status=400)


def test_tasks_are_listed_by_label(api, queue):
    [labelled] = add('/later', label='monthly-report')
    add('/other')
    assert [task['id'] for task in api.get(
        '/tasks?label=monthly-report', headers=AUTH).json['tasks']] == [
            labelled]
    assert api.get('/tasks?label=a%20b', headers=AUTH, status=400).json[
        'error'].startswith('label must be')
    api.get('/tasks?queue=other', headers=AUTH, status=404)


# -- enqueueing ------------------------------------------------------------

def test_a_task_posted_as_json_is_queued_with_what_the_body_gives(
        api, queue, consume):
    app = RecordingApp()
    consume(app)
    response = api.post_json('/tasks', {
        'url': '/hook?a=1', 'method': 'PUT', 'params': {'b': [2, 'c']},
        'headers': {'X-Trace': 't1', 'Content-Type': 'text/plain'},
        'payload': 'héllo', 'queue': 'default'}, headers=AUTH, status=201)
    task_id = response.json['id']
    assert response.json == {'id': task_id, 'queue': 'default'}
    assert response.location == f'http://localhost/tasks/{task_id}'
    [environ] = app.wait_for(1)
    assert (environ['REQUEST_METHOD'], environ['PATH_INFO'],
            environ['QUERY_STRING']) == ('PUT', '/hook', 'a=1&b=2&b=c')
    assert environ['test.body'] == 'héllo'.encode()
    assert environ['HTTP_X_TASK_ID'] == task_id
    assert (environ['HTTP_X_TRACE'], environ['CONTENT_TYPE']) == (
        't1', 'text/plain')


def test_a_task_posted_with_options_carries_them_to_the_app(
        api, queue, consume):
    eta = datetime.datetime.fromtimestamp(time.time() + 600,
                                          datetime.timezone.utc)
    later = api.post_json('/tasks', {
        'url': '/later', 'eta': eta.isoformat(), 'name': 'report-7',
        'label': 'reports'}, headers=AUTH, status=201).json['id']
    record = api.get(f'/tasks/{later}', headers=AUTH).json
    assert (record['state'], record['due'], record['name'],
            record['label'], record['priority']) == (
        'scheduled', eta.timestamp(), 'report-7', 'reports', None)
    panels = api.get('/panels', headers=AUTH).text
    assert '<span class="option">name report-7</span>' in panels
    app = RecordingApp()
    consume(app)
    now = api.post_json('/tasks', {'url': '/now', 'priority': 9,
                                   'countdown': 0}, headers=AUTH,
                        status=201).json['id']
    [environ] = app.wait_for(1)
    assert (environ['HTTP_X_TASK_ID'], environ['HTTP_X_TASK_PRIORITY']) == (
        now, '9')
    assert 'HTTP_X_TASK_ETA' not in environ
    assert api.get(f'/tasks/{now}', headers=AUTH).json['priority'] == 9


@pytest.mark.parametrize('options, message', [
    ({'priority': 10}, 'priority must be a whole number from 0 to 9'),
    ({'priority': '9'}, 'priority must be a whole number'),
    ({'countdown': -1}, 'countdown must be a number of seconds'),
    ({'eta': '2030-01-01T00:00:00'}, 'eta must be an aware datetime'),
    ({'eta': 'tomorrow'}, 'eta must be an ISO 8601 date and time'),
    ({'countdown': 5, 'eta': '2030-01-01T00:00:00+00:00'},
     'give countdown or eta, not both'),
    ({'name': 'a b'}, 'name must be'),
    ({'label': ''}, 'label must be'),
])
def test_a_bad_option_is_refused_as_add_refuses_it(api, queue, options,
                                                   message):
    response = api.post_json('/tasks', {'url': '/x', **options},
                             headers=AUTH, status=400)
    assert message in response.json['error']
    assert queue.counts()['pending'] == 0


def test_a_binary_payload_travels_as_base64(api, queue, consume):
    app = RecordingApp()
    consume(app)
    api.post_json('/tasks', {'url': '/bin', 'method': 'POST',
                             'payload_base64': 'AAH/'}, headers=AUTH)
    assert app.wait_for(1)[0]['test.body'] == b'\x00\x01\xff'


def test_the_api_request_itself_does_not_travel_with_the_task(queue, consume):
    """Mounted behind the filter, the management request is bound as the
    request being served; its key, cookies and body must not be copied."""
    api = webtest.TestApp(TaskQueueMiddleware(make_app(KEY),
                                              manage_transaction=True))
    app = RecordingApp()
    consume(app)
    api.post_json('/tasks', {'url': '/clean'}, status=201, headers=dict(
        AUTH, Cookie='session=secret', Authorization='Basic c2VjcmV0'))
    [environ] = app.wait_for(1)
    assert not {'HTTP_X_API_KEY', 'HTTP_COOKIE', 'HTTP_AUTHORIZATION',
                'CONTENT_TYPE'} & set(environ)
    assert environ['test.body'] == b''
    assert environ['REQUEST_METHOD'] == 'GET'


@pytest.mark.parametrize('body, message', [
    ({'url': 'relative'}, 'invalid task: url must be a path inside the app'),
    ({'url': '/a b'}, 'invalid task: url must not contain spaces'),
    ({'url': 5}, 'invalid task: url must be a non-empty string'),
    ({'method': 'GET'}, 'url is required'),
    ({'url': '/x', 'method': 'get'}, 'invalid task: method must be one of'),
    ({'url': '/x', 'method': 'BREW'}, 'invalid task: method must be one of'),
    ({'url': '/x', 'headers': {'X-Task-Id': 'a'}},
     "invalid task: header 'X-Task-Id': X-Task-* headers are set by"),
    ({'url': '/x', 'headers': {'X-A': 'a\r\nInjected: 1'}},
     "invalid task: header 'X-A': value must not contain CR, LF"),
    ({'url': '/x', 'headers': {'bad name': 'a'}},
     "invalid task: invalid header name 'bad name'"),
    ({'url': '/x', 'headers': {'X-A': None}},
     "invalid task: header 'X-A': value must be a string"),
    ({'url': '/x', 'headers': ['X-A']},
     'invalid task: headers must be a dict, not list'),
    ({'url': '/x', 'params': 'a=1'},
     'invalid task: params must be a dict, not str'),
    ({'url': '/x', 'params': {'a': {'b': 1}}},
     "params['a'] must be a string, a number or a list of them"),
    ({'url': '/x', 'params': {'a': True}},
     "params['a'] must be a string, a number or a list of them"),
    ({'url': '/x', 'payload': 3}, 'payload must be a string'),
    ({'url': '/x', 'payload': 'a', 'payload_base64': 'YQ=='},
     'give payload or payload_base64, not both'),
    ({'url': '/x', 'payload_base64': 'not base64!'},
     'payload_base64 is not base64'),
    ({'url': '/x', 'queue': 'mail'},
     "unknown task queue 'mail'; configured queues: default"),
    ({'url': '/x', 'queue': 1}, 'queue must be a string'),
    ({'url': '/x', 'urgency': 1},
     'unknown field(s) urgency; known fields: after, countdown, eta'),
])
def test_a_bad_task_is_refused_with_a_clear_400(api, queue, body, message):
    response = api.post_json('/tasks', body, headers=AUTH, status=400)
    assert response.content_type == 'application/json'
    assert response.json['error'].startswith(message)
    assert queue.counts()['pending'] == 0


def test_a_body_that_is_not_a_json_object_is_refused(api):
    for body in (b'', b'not json', b'[1]', b'\xff'):
        response = api.post('/tasks', body, headers=AUTH, status=400)
        assert response.json['error'].startswith('the body must be a JSON')


def test_a_task_above_the_queue_limit_is_refused(api, queue):
    queue.max_task_size = 10
    response = api.post_json('/tasks', {'url': '/x', 'payload': 'x' * 9},
                             headers=AUTH, status=400)
    assert 'larger than the queue\'s max_task_size of 10' in \
        response.json['error']


def test_an_unavailable_backend_answers_503():
    wsgi_taskqueue.register_queue('default', wsgi_taskqueue.RedisQueue(
        url=f'redis://127.0.0.1:{_closed_port()}/0', socket_timeout=0.5))
    api = webtest.TestApp(make_app(KEY))
    assert api.get('/status', headers=AUTH, status=503).json[
        'error'].startswith('Redis at redis://127.0.0.1')
    api.post_json('/tasks', {'url': '/x'}, headers=AUTH, status=503)
    assert 'unavailable' in api.get('/panels', headers=AUTH).text


def _closed_port():
    from wsgi_taskqueue.testing import free_port
    return free_port()


# -- dead letters ----------------------------------------------------------

def test_dead_letters_are_listed_requeued_and_purged(api, queue, consume):
    first, second = bury(queue, '/one', '/two')
    letters = api.get('/dead-letters', headers=AUTH).json['dead_letters']
    assert [letter['task_id'] for letter in letters] == [second, first]
    assert letters[0]['status'] == '404 Not Found'
    assert letters[0]['url'] == '/two'
    handle = letters[1]['id']
    assert api.post(f'/dead-letters/default/{handle}/requeue',
                    headers=AUTH).json == {'requeued': True, 'task_id': first}
    assert api.post(f'/dead-letters/default/{handle}/requeue', headers=AUTH,
                    status=404).json['error'].startswith('no such dead letter')
    app = RecordingApp()
    consume(app)
    [environ] = app.wait_for(1)
    assert environ['HTTP_X_TASK_ID'] == first
    assert environ['wsgi_taskqueue.task'].attempt == 1
    assert api.post('/dead-letters/default/purge', headers=AUTH).json == {
        'purged': 1}
    assert api.get('/dead-letters', headers=AUTH).json == {
        'dead_letters': []}
    api.post('/dead-letters/other/purge', headers=AUTH, status=404)


def test_a_dead_letter_deep_in_the_list_is_found(api, local_queue):
    ids = bury(local_queue, *[f'/n{i}' for i in range(3)])
    letters = api.get('/dead-letters', headers=AUTH).json['dead_letters']
    found = admin_dead.find_letter(local_queue.name, letters[-1]['id'], chunk=1)
    assert found.task_id == ids[0]


# -- which queues ----------------------------------------------------------

def test_an_app_shows_only_its_queues(local_queue):
    wsgi_taskqueue.register_queue('mail', wsgi_taskqueue.LocalQueue())
    api = webtest.TestApp(make_app(KEY, queues=['mail']))
    assert [q['name'] for q in api.get('/status', headers=AUTH).json[
        'queues']] == ['mail']
    assert api.post_json('/tasks', {'url': '/x'}, headers=AUTH).json[
        'queue'] == 'mail'
    assert api.post_json('/tasks', {'url': '/x', 'queue': 'default'},
                         headers=AUTH, status=400).json['error'] == \
        "unknown task queue 'default'; configured queues: mail"
    api.post('/dead-letters/default/purge', headers=AUTH, status=404)
    with pytest.raises(UnknownQueue):
        make_app(KEY, queues=['nope'])


def test_without_queues_it_shows_every_queue_registered_later(local_queue):
    api = webtest.TestApp(make_app(KEY))
    wsgi_taskqueue.register_queue('mail', wsgi_taskqueue.LocalQueue())
    assert [q['name'] for q in api.get('/status', headers=AUTH).json[
        'queues']] == ['default', 'mail']


# -- the dashboard ---------------------------------------------------------

def test_the_panels_show_counts_failures_and_dead_letters(api, queue):
    [dead] = bury(queue, '/gone')
    add('/waiting')
    panels = api.get('/panels', headers=AUTH).text
    row = re.search(r'<tr data-queue="default">.*?</tr>', panels)[0]
    assert '<td class="number" data-count="pending">1</td>' in row
    assert '<td class="number" data-count="dead">1</td>' in row
    assert f'<tr data-task="{dead}" data-state="dead">' in panels
    assert 'data-action="requeue"' in panels and 'data-action="purge"' in panels
    # What the app answered is text, never markup.
    assert '<img' not in panels
    assert html.escape('<img src=x onerror=alert(1)>') in panels


def test_the_page_and_its_files_come_from_the_package(api):
    page = api.get('/', headers=AUTH).text
    assert 'src="static/dashboard.js"' in page
    assert '<table data-panel="queues">' in page
    assert api.get('/static/dashboard.css', headers=AUTH).content_type == \
        'text/css'
    assert api.get('/static/dashboard.svg', headers=AUTH).content_type == \
        'image/svg+xml'
    api.get('/static/other.js', headers=AUTH, status=404)
    spec = api.get('/openapi.yaml', headers=AUTH)
    assert spec.content_type == 'application/yaml'
    assert spec.text.startswith('openapi: 3.1')


def test_package_data_ships_every_file_the_app_reads():
    """setup.cfg's package_data must cover the non-Python files, or a
    wheel lacks them."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'setup.cfg')
    # One a line: setuptools splits on newlines when there are any, and
    # then a trailing comma would be part of the name.
    patterns = parser['options.package_data'][
        'wsgi_taskqueue.management'].split()
    files = [path.relative_to(PACKAGE).as_posix()
             for path in PACKAGE.rglob('*') if path.is_file()
             and path.suffix not in ('.py', '.pyc')
             and '__pycache__' not in path.parts]
    assert {'openapi.yaml', 'dashboard.html', 'dashboard.js',
            'dashboard.css', 'dashboard.svg'} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), \
            name


# -- the ini factory -------------------------------------------------------

def _ini(tmp_path, text):
    path = tmp_path / 'app.ini'
    path.write_text(text)
    return {'__file__': str(path), 'here': str(tmp_path)}


def test_app_factory_configures_the_ini_queues(tmp_path):
    global_conf = _ini(tmp_path, '[taskqueue]\ntype = local\n\n'
                                 '[taskqueue:mail]\ntype = local\n')
    app = app_factory(global_conf, api_key=KEY, queues='mail')
    assert registry.queue_names() == ['default', 'mail']
    assert webtest.TestApp(app).get('/status', headers=AUTH).json[
        'queues'][0]['name'] == 'mail'


def test_app_factory_needs_an_api_key_and_known_settings(tmp_path):
    global_conf = _ini(tmp_path, '[taskqueue]\ntype = local\n')
    with pytest.raises(ConfigurationError, match="key 'api_key'"):
        app_factory(global_conf)
    with pytest.raises(ConfigurationError, match="key 'colour'"):
        app_factory(global_conf, api_key=KEY, colour='blue')
    with pytest.raises(ConfigurationError, match="unknown task queue 'x'"):
        app_factory(global_conf, api_key=KEY, queues='x')


def test_the_entry_point_loads_it_from_an_ini(tmp_path):
    from paste.deploy import loadapp
    global_conf = _ini(tmp_path, f'[app:main]\nuse = egg:wsgi-taskqueue#'
                                 f'management\napi_key = {KEY}\n\n'
                                 f'[taskqueue]\ntype = local\n')
    app = loadapp(f'config:{global_conf["__file__"]}')
    assert webtest.TestApp(app).get('/status', headers=AUTH).json[
        'queues'][0]['name'] == 'default'


# -- the OpenAPI document, checked against the app -------------------------

schema = schemathesis.openapi.from_path(PACKAGE / 'openapi.yaml')


@schema.hook
def map_case(context, case):
    """Any string is a valid queue name, but only configured queues take
    tasks: post to the one there is.  Any date-time is a valid eta, but
    only one at most a year ahead is taken: ask for one in an hour.  Any
    string is a valid queue in a path too: ask for a queue's jobs of the
    one there is."""
    if isinstance(case.body, dict) and isinstance(case.body.get('queue'), str):
        case.body['queue'] = 'default'
    if '/jobs' in case.operation.path:
        case.path_parameters['queue'] = 'default'
    if isinstance(case.body, dict) and _aware(case.body.get('eta')):
        case.body['eta'] = datetime.datetime.fromtimestamp(
            time.time() + 3600, datetime.timezone.utc).isoformat()
    return case


def _aware(text) -> bool:
    try:
        return datetime.datetime.fromisoformat(text).tzinfo is not None
    except (TypeError, ValueError):
        return False


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                     database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_the_app_answers_as_its_openapi_document_says(case, queue):
    # ignored_auth expects 401/403 without a key; this app answers 404 on
    # purpose (tested above).
    # Any task id is a valid dependency (``after``) to the document, but
    # only one the queue knows can be waited for: a request naming others
    # is refused (tests/test_task_dependencies.py), not a mismatch; so is
    # a task added to a job (tests/test_jobs.py).
    waits = isinstance(case.body, dict) and (
        case.body.get('after') is not None or case.body.get('job') is not None)
    # An app to drain into: a drain runs (the queue is empty, so it
    # ends at once) rather than answering 409.
    app = make_app(KEY, app=RecordingApp())
    case.call_and_validate(app=app, headers=AUTH,
                           excluded_checks=[ignored_auth] + (
                               [positive_data_acceptance] if waits else []))
