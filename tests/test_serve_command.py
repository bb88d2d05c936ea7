"""``wsgi-taskqueue serve`` and ``worker`` as a newcomer meets them: the
version, configuration errors that exit 2 naming file, section and key,
``NAME=VALUE`` variables, and what the log says at start and stop."""
import logging
import signal
import textwrap

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.serve import running_consumers

from dummies import RecordingApp

#: What the app and server factories below were given, by name.
seen = {}


def app_factory(global_conf, **settings):
    seen['app'] = settings
    return RecordingApp()


def server_factory(global_conf, **settings):
    """A server that returns at once, as one stopped by Ctrl-C does."""
    seen['server'] = settings
    return lambda app: None


@pytest.fixture(autouse=True)
def sigterm_handler():
    """``serve`` turns SIGTERM into an exit: not in the test process."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


@pytest.fixture
def write_ini(tmp_path):
    def write(text: str, name: str = 'app.ini') -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)
    return write


def test_version(run):
    code, out, _ = run('--version')
    assert (code, out) == (0, f'wsgi-taskqueue {wsgi_taskqueue.__version__}\n')


@pytest.mark.parametrize('command', ['serve', 'worker'])
def test_an_ini_without_the_app_section_exits_2_naming_it(
        command, write_ini, run):
    ini = write_ini("""
        [taskqueue]
        type = redis
        [taskqueue-server]
    """)
    code, _, err = run(command, ini)
    assert code == 2
    assert f'file {ini}' in err and '[app:main]' in err
    assert 'Traceback' not in err


@pytest.mark.parametrize('command', ['serve', 'worker'])
def test_an_undefined_interpolation_exits_2_naming_section_key_and_name(
        command, write_ini, run):
    ini = write_ini("""
        [app:main]
        use = call:test_serve_command:app_factory
        message = %(greeting)s
    """)
    code, _, err = run(command, ini)
    assert code == 2
    assert (f"file {ini}, section [app:main], key 'message': %(greeting)s "
            f"is not defined") in err
    assert 'greeting=VALUE' in err


def test_an_undefined_interpolation_in_a_queue_section_exits_2(
        write_ini, run):
    ini = write_ini("""
        [app:main]
        use = call:test_serve_command:app_factory
        [taskqueue]
        type = redis
        url = %(redis_url)s
    """)
    code, _, err = run('worker', ini)
    assert code == 2
    assert f"file {ini}, section [taskqueue], key 'url': %(redis_url)s" in err


def test_variables_win_over_the_default_in_app_server_and_queue_sections(
        write_ini, run, redis_url):
    # The default points at a port nothing listens on: the worker below
    # could not run if the variable did not reach [taskqueue].
    ini = write_ini("""
        [DEFAULT]
        redis_url = redis://127.0.0.1:1/0
        greeting = hello
        [app:main]
        use = call:test_serve_command:app_factory
        message = %(greeting)s world
        [server:main]
        use = call:test_serve_command:server_factory
        listen = 127.0.0.1:%(http_port)s
        [taskqueue]
        type = redis
        url = %(redis_url)s
        [taskqueue-server]
        poll_interval = 0.2
    """)
    code, _, err = run('worker', ini, '--once', f'redis_url={redis_url}',
                       'greeting=bonjour')
    assert code == 0, err
    assert seen['app'] == {'message': 'bonjour world'}
    code, _, err = run('serve', ini, 'http_port=7000', 'greeting=hi')
    assert code == 0, err
    assert seen['server'] == {'listen': '127.0.0.1:7000'}


def test_serve_logs_its_start_and_stop(write_ini, run, caplog):
    ini = write_ini("""
        [app:main]
        use = call:test_serve_command:app_factory
        [server:main]
        use = call:test_serve_command:server_factory
        [taskqueue]
        type = local
        [taskqueue-server]
        name = w1
    """)
    with caplog.at_level(logging.INFO, 'wsgi_taskqueue'):
        assert run('serve', ini)[0] == 0
    messages = [record.getMessage() for record in caplog.records]
    assert f'serving {ini} (process ' in messages[0]
    assert "consumers running: w1 (queue 'default')" in messages
    assert messages[-1] == f'stopped serving {ini}'


def test_stopping_with_tasks_in_a_local_queue_logs_how_many_are_dropped(
        write_ini, caplog):
    ini = write_ini("""
        [taskqueue]
        type = local
        [taskqueue:mail]
        type = local
    """)
    with caplog.at_level(logging.WARNING, 'wsgi_taskqueue'), \
            running_consumers(RecordingApp(), ini):  # a web-only process
        for _ in range(3):
            taskqueue.add('/x')
        taskqueue.add('/y', queue='mail')
        transaction.commit()
    assert [record.getMessage() for record in caplog.records] == [
        "queue 'default' is in-process (type local): 3 task(s) that did not "
        "run are dropped as this process stops",
        "queue 'mail' is in-process (type local): 1 task(s) that did not "
        "run are dropped as this process stops"]


def test_every_command_takes_variables(write_ini, run, redis_url):
    ini = write_ini("""
        [DEFAULT]
        redis_url = redis://127.0.0.1:1/0
        [taskqueue]
        type = redis
        url = %(redis_url)s
    """)
    assert run('status', ini)[0] == 3  # the default: nothing listens there
    wsgi_taskqueue.config._configured.clear()
    code, out, err = run('status', ini, f'redis_url={redis_url}', '--json')
    assert code == 0, err
    assert '"pending": 0' in out
