"""``POST queues/{queue}/drain`` on the management app: a consumer run
within the request, for hosts where no worker may run, on each backend;
how the management app finds the app to run tasks in (given, the filter,
the Pyramid tween, Flask).  tests/functional/test_drain_served.py drains
a served app over HTTP with curl."""
import threading
import time

import flask
import pytest
import webob.dec
import webtest
from pyramid.config import Configurator
from pyramid.wsgi import wsgiapp2
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from wsgi_taskqueue import ConfigurationError, current_task
from wsgi_taskqueue.flask import TaskQueue
from wsgi_taskqueue.management import app_factory, make_app
from wsgi_taskqueue.middleware import TaskQueueMiddleware

from dummies import RecordingApp, add, wait_until

KEY = 'drain-test-key-0123456789'
AUTH = {'X-API-Key': KEY}
DRAIN = '/queues/default/drain'


@pytest.fixture(params=['local', 'redis', 'sqlite', 'postgresql'])
def queue(request):
    """The in-process queue, Redis, SQLite and PostgreSQL in turn."""
    return request.getfixturevalue(f'{request.param}_queue')


def task_ids(app) -> list[str]:
    """The ids of the tasks ``app`` (a RecordingApp) ran, in order."""
    return [environ['HTTP_X_TASK_ID'] for environ in app.environs]


def in_flight(queue) -> int:
    return sum(queue.counts()['processing'].values())


def test_a_drain_runs_the_queue_empty_and_says_what_it_did(queue):
    ran = RecordingApp()
    ids = add('/a', '/b', '/c')
    api = webtest.TestApp(make_app(KEY, app=ran))

    answer = api.post(DRAIN, headers=AUTH).json

    assert answer['queue'] == 'default'
    assert answer['tasks'] == 3
    assert answer['outcomes'] == {'done': 3, 'redirected': 0, 'retried': 0,
                                  'dead': 0}
    assert answer['stopped_because'] == 'empty'
    assert answer['runtime_limit'] == 60  # drain_max_runtime's default
    assert 0 <= answer['runtime'] < 60
    assert task_ids(ran) == ids
    assert queue.counts()['pending'] == 0 and in_flight(queue) == 0
    # Its lease is given back: no gone consumer is left behind.
    assert queue.consumers() == []
    # Nothing left: the next drain does nothing, and says so.
    assert api.post(DRAIN, headers=AUTH).json['tasks'] == 0


def test_a_drain_stops_after_max_tasks(queue):
    ran = RecordingApp()
    ids = add(*[f'/t{n}' for n in range(6)])
    api = webtest.TestApp(make_app(KEY, app=ran))

    answer = api.post(DRAIN + '?max_tasks=2', headers=AUTH).json

    assert (answer['tasks'], answer['stopped_because']) == (2, 'max_tasks')
    assert task_ids(ran) == ids[:2]
    assert queue.counts()['pending'] == 4 and in_flight(queue) == 0
    # The next one takes up where it stopped.
    answer = api.post(DRAIN + '?max_tasks=10', headers=AUTH).json
    assert (answer['tasks'], answer['stopped_because']) == (4, 'empty')
    assert task_ids(ran) == ids


def slow_app(seconds: float) -> RecordingApp:
    """A RecordingApp whose every task takes ``seconds``."""
    def respond(environ):
        time.sleep(seconds)
        return '200 OK'
    return RecordingApp(respond=respond)


def test_a_drain_stops_when_its_runtime_is_over(queue):
    ran = slow_app(0.1)
    add(*['/slow'] * 40)  # 4 s of work
    api = webtest.TestApp(make_app(KEY, app=ran))

    answer = api.post(DRAIN + '?runtime=0.5', headers=AUTH).json

    assert answer['stopped_because'] == 'runtime'
    assert answer['runtime_limit'] == 0.5
    assert answer['runtime'] >= 0.5
    # It finished the tasks it was running, and took no other.
    assert answer['tasks'] == len(ran.environs) < 40
    assert queue.counts()['pending'] == 40 - answer['tasks']
    assert in_flight(queue) == 0


def test_the_runtime_is_capped_by_drain_max_runtime(local_queue):
    ran = slow_app(0.1)
    add(*['/slow'] * 100)  # 10 s of work
    api = webtest.TestApp(make_app(KEY, app=ran, drain_max_runtime=0.3))
    started = time.monotonic()

    answer = api.post(DRAIN + '?runtime=3600', headers=AUTH).json

    assert answer['runtime_limit'] == 0.3
    assert answer['stopped_because'] == 'runtime'
    assert time.monotonic() - started < 5
    # Without a runtime, the cap is the runtime.
    answer = api.post(DRAIN, headers=AUTH).json
    assert (answer['runtime_limit'], answer['stopped_because']) == (
        0.3, 'runtime')


def test_outcomes_are_counted_as_the_outcome_table_says(queue):
    statuses = {'/ok': '200 OK', '/moved': '302 Found',
                '/busy': '503 Service Unavailable', '/bad': '400 Bad Request'}
    ran = RecordingApp(respond=lambda environ: statuses[environ['PATH_INFO']])
    add('/ok', '/moved', '/busy', '/bad', '/ok')
    api = webtest.TestApp(make_app(KEY, app=ran))

    answer = api.post(DRAIN, headers=AUTH).json

    assert answer['outcomes'] == {'done': 2, 'redirected': 1, 'retried': 1,
                                  'dead': 1}
    assert answer['tasks'] == 5
    counts = queue.counts()
    assert (counts['delayed'], counts['dead'], counts['pending']) == (1, 1, 0)


def test_a_task_out_of_retries_is_counted_dead(local_queue):
    failing = RecordingApp(status='500 Internal Server Error')
    add('/fails')
    app = make_app(KEY, app=failing)
    api = webtest.TestApp(app)
    answer = api.post(DRAIN, headers=AUTH).json
    assert answer['outcomes']['retried'] == 1
    # Each retry due at once rather than after its delay.
    local_queue.requeue_delayed()
    for _attempt in range(2, 12):  # attempts 2 to 11
        answer = api.post(DRAIN, headers=AUTH).json
        local_queue.requeue_delayed()
    # The 11th attempt is past retry_max_count (10): dead.
    assert answer['outcomes'] == {'done': 0, 'redirected': 0, 'retried': 0,
                                  'dead': 1}
    assert local_queue.counts()['dead'] == 1


def test_concurrent_drains_of_one_queue_run_each_task_once(queue):
    ids = add(*[f'/t{n}' for n in range(40)])

    def both_drains_hold_a_lease():
        return len([consumer for consumer in queue.consumers()
                    if consumer['name'].startswith('drain-')
                    and consumer['alive']]) == 2

    def respond(environ):
        # No task finishes before both drains run: they compete for the
        # whole queue.
        wait_until(both_drains_hold_a_lease)
        time.sleep(0.005)
        return '200 OK'
    ran = RecordingApp(respond=respond)
    api = webtest.TestApp(make_app(KEY, app=ran))
    answers = []

    def drain():
        answers.append(api.post(DRAIN, headers=AUTH).json)
    drains = [threading.Thread(target=drain) for _ in range(2)]
    for thread in drains:
        thread.start()
    for thread in drains:
        thread.join(60)

    assert len(answers) == 2
    assert sorted(task_ids(ran)) == sorted(ids)  # each exactly once
    assert sum(answer['tasks'] for answer in answers) == 40
    assert {answer['stopped_because'] for answer in answers} == {'empty'}
    assert queue.counts()['pending'] == 0 and in_flight(queue) == 0


# -- the key and the parameters -------------------------------------------

@pytest.mark.parametrize('headers', [
    {}, {'X-API-Key': 'wrong-key-0123456789'}, {'X-API-Key': KEY[:-1]},
    {'Authorization': 'Bearer wrong'}])
def test_without_the_key_a_drain_is_not_found_and_runs_nothing(
        local_queue, headers):
    ran = RecordingApp()
    add('/a')
    api = webtest.TestApp(make_app(KEY, app=ran))
    response = api.post(DRAIN, headers=headers, status=404)
    assert response.json == {'error': 'not found'}
    assert ran.environs == [] and local_queue.counts()['pending'] == 1


def test_a_drain_of_an_unknown_queue_is_not_found(local_queue):
    api = webtest.TestApp(make_app(KEY, app=RecordingApp()))
    response = api.post('/queues/nowhere/drain', headers=AUTH, status=404)
    assert "unknown task queue 'nowhere'" in response.json['error']
    api.get(DRAIN, headers=AUTH, status=405)


@pytest.mark.parametrize('query, message', [
    ('runtime=0', "runtime must be a positive number of seconds, not '0'"),
    ('runtime=-1', "runtime must be a positive number of seconds, not '-1'"),
    ('runtime=soon', 'runtime must be a positive number of seconds, not '
                     "'soon'"),
    ('runtime=nan', "runtime must be a positive number of seconds, not "
                    "'nan'"),
    ('runtime=inf', "runtime must be a positive number of seconds, not "
                    "'inf'"),
    ('max_tasks=0', 'max_tasks must be between 1 and 1000000, not 0'),
    ('max_tasks=1.5', "max_tasks must be an integer, not '1.5'"),
    ('max_tasks=all', "max_tasks must be an integer, not 'all'"),
    ('max-tasks=5', 'unknown parameter(s) max-tasks; known: max_tasks, '
                    'runtime'),
])
def test_bad_parameters_are_refused_naming_them(local_queue, query, message):
    ran = RecordingApp()
    add('/a')
    api = webtest.TestApp(make_app(KEY, app=ran))
    response = api.post(f'{DRAIN}?{query}', headers=AUTH, status=400)
    assert response.json == {'error': message}
    assert ran.environs == [] and local_queue.counts()['pending'] == 1


def test_parameters_in_a_body_are_refused_not_ignored(local_queue):
    ran = RecordingApp()
    add('/a')
    api = webtest.TestApp(make_app(KEY, app=ran))
    response = api.post(DRAIN, params={'max_tasks': '1'}, headers=AUTH,
                        status=400)
    assert response.json == {'error': 'a drain takes no body: give runtime '
                                      'and max_tasks in the query string'}
    assert ran.environs == [] and local_queue.counts()['pending'] == 1


def test_drain_max_runtime_is_checked_where_it_is_set(tmp_path):
    with pytest.raises(ValueError, match='drain_max_runtime must be a '
                                         'positive number of seconds'):
        make_app(KEY, drain_max_runtime=0)
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue]\ntype = local\n')
    global_conf = {'__file__': str(ini), 'here': str(tmp_path)}
    with pytest.raises(ConfigurationError,
                       match="key 'drain_max_runtime': bad value '-5'"):
        app_factory(global_conf, api_key=KEY, drain_max_runtime='-5')
    app = app_factory(global_conf, api_key=KEY, drain_max_runtime='2.5')
    assert app.drain_max_runtime == 2.5


# -- the app tasks run in ---------------------------------------------------

#: The app of the ini test below, by its dotted name.
INI_TASKS_APP = RecordingApp()


def test_the_ini_names_the_app_to_run_tasks_in(tmp_path, local_queue):
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue]\ntype = local\n')
    global_conf = {'__file__': str(ini), 'here': str(tmp_path)}
    with pytest.raises(ConfigurationError, match=(
            "key 'app': bad value 'no_such_module.app': cannot import it: "
            "No module named 'no_such_module'")):
        app_factory(global_conf, api_key=KEY, app='no_such_module.app')
    with pytest.raises(ConfigurationError, match=(
            "key 'app': bad value '.*KEY': it is not a WSGI app")):
        app_factory(global_conf, api_key=KEY, app=f'{__name__}.KEY')
    app = app_factory(global_conf, api_key=KEY,
                      app=f'{__name__}.INI_TASKS_APP')
    ids = add('/a')
    webtest.TestApp(app).post(DRAIN, headers=AUTH)
    assert task_ids(INI_TASKS_APP) == ids


def test_without_an_app_to_run_tasks_in_a_drain_says_how_to_give_one(
        local_queue):
    add('/a')
    api = webtest.TestApp(make_app(KEY))
    response = api.post(DRAIN, headers=AUTH, status=409)
    assert 'make_app(..., app=WSGI_APP)' in response.json['error']
    assert '`app = package.module.name`' in response.json['error']
    assert 'behind the taskqueue filter' in response.json['error']
    assert local_queue.counts()['pending'] == 1


def mounted(app, management, prefix='/_tasks'):
    """``app`` with ``management`` at ``prefix``."""
    @webob.dec.wsgify
    def router(request):
        if request.path_info.startswith(prefix + '/'):
            request.path_info_pop()
            return request.get_response(management)
        return request.get_response(app)
    return router


def test_behind_the_filter_a_drain_runs_tasks_through_it(local_queue):
    ran = RecordingApp()
    pipeline = TaskQueueMiddleware(mounted(ran, make_app(KEY)))
    ids = add('/a', '/b')

    answer = webtest.TestApp(pipeline).post(
        '/_tasks' + DRAIN, headers=AUTH).json

    assert answer['tasks'] == 2
    assert task_ids(ran) == ids
    # As a worker's would: through the filter, as tasks.
    assert all(current_task(environ) is not None for environ in ran.environs)


def test_an_app_given_wins_over_the_filters(local_queue):
    behind_filter, given = RecordingApp(), RecordingApp()
    pipeline = TaskQueueMiddleware(
        mounted(behind_filter, make_app(KEY, app=given)))
    add('/a')
    webtest.TestApp(pipeline).post('/_tasks' + DRAIN, headers=AUTH)
    assert (len(given.environs), behind_filter.environs) == (1, [])


def test_in_a_pyramid_app_a_drain_runs_tasks_in_it():
    ran = []

    def task(request):
        ran.append(request.headers['X-Task-Id'])
        return {}
    with Configurator(settings={'taskqueue.queue.default.type': 'local',
                                'taskqueue.start_consumers': 'false'}
                      ) as config:
        config.include('wsgi_taskqueue')
        config.add_route('task', '/task')
        config.add_view(task, route_name='task', renderer='json', task=True)
        config.add_route('taskqueue', '/_tasks/*subpath')
        config.add_view(wsgiapp2(make_app(KEY)), route_name='taskqueue')
        app = config.make_wsgi_app()
    ids = add('/task', '/task')

    answer = webtest.TestApp(app).post('/_tasks' + DRAIN, headers=AUTH).json

    assert (answer['tasks'], answer['outcomes']['done']) == (2, 2)
    assert ran == ids


def test_in_a_flask_app_a_drain_runs_tasks_in_it():
    ran = []
    app = flask.Flask(__name__)
    app.config['TASKQUEUE_QUEUES'] = {'default': {'type': 'local'}}

    @app.post('/task')
    def task():
        ran.append(flask.request.headers['X-Task-Id'])
        return 'ok'
    # Mounted before the extension wraps wsgi_app: behind its filter.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app,
                                        {'/_tasks': make_app(KEY)})
    TaskQueue(app)
    ids = add('/task', '/task', method='POST')

    answer = webtest.TestApp(app).post('/_tasks' + DRAIN, headers=AUTH).json

    assert (answer['tasks'], answer['outcomes']['done']) == (2, 2)
    assert ran == ids
