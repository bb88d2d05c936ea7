"""``config.include('wsgi_taskqueue')``: queues and consumers from the
app's settings, the tween that does the filter's work, consumers started
with the app.  tests/functional/test_pyramid_notes.py serves the example
app with it under ``wsgi-taskqueue serve`` and ``pserve``."""
import textwrap

import pytest
import webtest
from pyramid.config import Configurator

import wsgi_taskqueue
from wsgi_taskqueue import ConfigurationError, is_task, taskqueue
from wsgi_taskqueue.pyramid import configuration_from_settings, stop_consumers

from dummies import wait_until


def make_app(**settings):
    ran = []

    def enqueue(request):
        taskqueue.add('/task', queue=request.params.get('queue'))
        if request.params.get('fail'):
            raise RuntimeError('view failed')
        return {'queued': True}

    def task(request):
        ran.append((request.headers.get('X-Task-Id'), is_task(request)))
        return {}

    def headers(request):
        return {'task_headers': sorted(
            name for name in request.headers if name.startswith('X-Task'))}

    settings.setdefault('taskqueue.start_consumers', 'false')
    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.include('wsgi_taskqueue')
        config.add_route('enqueue', '/enqueue')
        config.add_route('task', '/task')
        config.add_route('headers', '/headers')
        config.add_view(enqueue, route_name='enqueue', renderer='json')
        config.add_view(task, route_name='task', renderer='json', task=True)
        config.add_view(headers, route_name='headers', renderer='json')
        app = config.make_wsgi_app()
    app.ran = ran
    return app


def test_queues_and_consumers_come_from_the_settings():
    configuration = configuration_from_settings({
        'sqlalchemy.url': 'sqlite://',
        'taskqueue.queue.default.type': 'local',
        'taskqueue.queue.mail.type': 'local',
        'taskqueue.queue.mail.secret': 'new old',
        'taskqueue.consumer.w1.queue': 'mail',
        'taskqueue.consumer.w1.concurrent_limit': '2',
    })
    assert sorted(configuration.queues) == ['default', 'mail']
    [consumer] = configuration.consumers
    assert consumer.settings['queue'] == 'mail'
    assert consumer.settings['concurrent_limit'] == 2


@pytest.mark.parametrize('settings, message', [
    ({'taskqueue.queue.default.colour': 'red'},
     "file Pyramid settings, section [taskqueue:default], key 'colour': "
     "unknown key"),
    ({'taskqueue.queues': 'default'},
     "file Pyramid settings, key 'taskqueue.queues': unknown setting"),
    ({'taskqueue.queue.default.type': 'local',
      'taskqueue.consumer.w.concurrent_limit': '0'},
     "file Pyramid settings, section [taskqueue-server:w], key "
     "'concurrent_limit': bad value '0': must be at least 1"),
])
def test_wrong_settings_fail_at_include(settings, message):
    with pytest.raises(ConfigurationError) as raised:
        make_app(**settings)
    assert str(raised.value).startswith(message)


def test_settings_from_an_ini_file(tmp_path):
    ini = tmp_path / 'queues.ini'
    ini.write_text(textwrap.dedent("""
        [taskqueue:mail]
        type = local
    """))
    make_app(**{'taskqueue.ini': str(ini)})
    assert wsgi_taskqueue.get_queue().name == 'mail'


def test_tasks_follow_pyramid_tm_and_network_requests_cannot_pose_as_tasks():
    app = webtest.TestApp(make_app(**{
        'taskqueue.queue.default.type': 'local'}))
    queue = wsgi_taskqueue.get_queue()
    app.get('/enqueue')
    with pytest.raises(RuntimeError):
        app.get('/enqueue', params={'fail': '1'})
    assert queue.counts()['pending'] == 1
    assert app.get('/headers', headers={'X-Task-Id': 'forged'}).json == {
        'task_headers': []}
    app.get('/task', headers={'X-Task-Id': 'forged'}, status=404)


def test_consumers_start_with_the_app():
    app = make_app(**{'taskqueue.queue.default.type': 'local',
                      'taskqueue.consumer.w.poll_interval': '0.2',
                      'taskqueue.start_consumers': 'true'})
    try:
        webtest.TestApp(app).get('/enqueue')
        wait_until(lambda: len(app.ran) == 1)
        [(task_id, as_task)] = app.ran
        assert as_task and task_id
    finally:
        stop_consumers(app.registry)
    assert not any(c['alive'] for c in wsgi_taskqueue.get_queue().consumers())


def test_under_the_worker_command_the_consumers_are_handed_over():
    from wsgi_taskqueue.serve import hosting_consumers

    with hosting_consumers() as handed_over:
        app = make_app(**{'taskqueue.queue.default.type': 'local',
                          'taskqueue.consumer.w.queue': 'default',
                          'taskqueue.start_consumers': 'true'})
    [configuration] = handed_over
    assert len(configuration.consumers) == 1
    assert 'taskqueue.consumers' not in app.registry
