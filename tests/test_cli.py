"""The ``wsgi-taskqueue`` command: operating the queues of an ini file.

Most tests call ``main([...])``; the last ones run the real console script
in a subprocess.  Tasks are run synchronously (``work``), so no test waits
for a consumer thread.
"""
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import types
import urllib.request
from pathlib import Path

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import console, taskqueue
from wsgi_taskqueue.cli import _configure_logging, main
from wsgi_taskqueue.testing import free_port

from dummies import RecordingApp, add, wait_until
from test_admin import pending_ids, work


def app_factory(global_conf, **settings):
    """The app of the ini below (``use = call:test_cli:app_factory``)."""
    return RecordingApp()


INI = """
    [app:main]
    use = call:test_cli:app_factory

    [taskqueue]
    type = {type}
    url = {url}
    secret = s3cret

    [taskqueue:mail]
    type = {type}
    url = {url}
    secret = s3cret

    [taskqueue-server]
    name = worker
    poll_interval = 0.2
"""


@pytest.fixture(params=['redis', 'sqlite'])
def ini(request, tmp_path):
    """The ini file of two queues on the test Redis, then in a SQLite
    file."""
    url = (request.getfixturevalue('redis_url') if request.param == 'redis'
           else f'sqlite:///{tmp_path}/tasks.db')
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(INI.format(type=request.param, url=url)))
    wsgi_taskqueue.configure(str(path))  # the same queues main() uses
    return str(path)


@pytest.fixture
def stdin(monkeypatch):
    """What the user types (the empty string: end of input at once)."""
    def typing(text):
        monkeypatch.setattr(sys, 'stdin', io.StringIO(text))
    return typing


class Terminal(io.StringIO):
    def isatty(self):
        return True


def live_consumer(name='w1', queue='default', concurrency=2):
    wsgi_taskqueue.get_queue(queue).acquire(name, 'token', 15, {
        'host': 'box', 'pid': 42, 'concurrency': concurrency,
        'paused': False, 'processed': 3})


def counts(queue='default'):
    return wsgi_taskqueue.get_queue(queue).counts()


# -- status ---------------------------------------------------------------

def test_status_shows_each_queue_with_its_consumers(ini, run):
    add('/ok', '/flaky', '/gone', '/ok')
    work(limit=3)
    add('/ok', queue='mail')
    live_consumer(concurrency=4)
    code, out, _ = run('status', ini)
    assert code == 0
    queue = wsgi_taskqueue.get_queue('default')
    kind = 'redis' if isinstance(queue, wsgi_taskqueue.RedisQueue) else 'sql'
    assert f'queue default  ({kind}, {queue.where})' in out
    assert 'pending 1  in flight 0  delayed 1  dead 1  staged 0' in out
    assert 'last 15 min: 1 done, 1 retried, 1 dead' in out
    row = next(line.split() for line in out.splitlines()
               if line.strip().startswith('w1'))
    # name, state, heartbeat age, in flight, concurrency, host:pid, processed
    assert row[:2] == ['w1', 'live'] and row[3:] == ['ago', '0', '4',
                                                    'box:42', '3']
    assert 'queue mail' in out and 'no live consumer' in out


def test_status_as_json(ini, run):
    live_consumer()
    code, out, _ = run('status', ini, '--json', '-q', 'default')
    [default] = json.loads(out)
    assert code == 0
    assert (default['queue'], default['pending'], default['live_consumers'],
            default['consumers'][0]['concurrency']) == ('default', 0, 1, 2)


def test_status_check_fails_for_a_queue_without_a_live_consumer(ini, run):
    live_consumer()
    assert run('status', ini, '--check', '-q', 'default')[0] == 0
    code, _, err = run('status', ini, '--check')
    assert code == 1
    assert 'no live consumer for queue(s): mail' in err


def test_an_unreachable_redis_exits_3(tmp_path, run):
    path = tmp_path / 'down.ini'
    path.write_text(INI.format(type='redis',
                               url=f'redis://127.0.0.1:{free_port()}/0'))
    code, out, err = run('status', path)
    assert (code, out) == (3, '')
    assert 'unavailable' in err and '127.0.0.1' in err


def test_an_unreachable_database_exits_3(tmp_path, run):
    path = tmp_path / 'down.ini'
    path.write_text(INI.format(
        type='postgresql', url=f'postgresql+psycopg://u:secret@127.0.0.1:'
                               f'{free_port()}/tasks'))
    code, out, err = run('status', path)
    assert (code, out) == (3, '')
    assert 'SQL queue database postgresql+psycopg://u:***@127.0.0.1:' in err
    assert 'secret' not in err


def test_a_wrong_config_exits_2_naming_file_section_and_key(tmp_path, run):
    path = tmp_path / 'bad.ini'
    path.write_text('[taskqueue]\ntype = redis\nurll = redis://x\n')
    code, _, err = run('status', path)
    assert code == 2
    assert f'file {path}, section [taskqueue], key \'urll\'' in err
    assert run('status', tmp_path / 'missing.ini')[:2] == (2, '')


def test_in_process_queues_cannot_be_operated_from_outside(tmp_path, run):
    path = tmp_path / 'local.ini'
    path.write_text('[taskqueue]\ntype = local\n')
    code, _, err = run('status', path)
    assert code == 2 and 'in-process' in err
    assert run('add', path, '/x')[0] == 2


def test_an_unknown_queue_exits_2(ini, run):
    code, _, err = run('purge', ini, 'nosuch', '--yes')
    assert code == 2 and "unknown task queue 'nosuch'" in err


def test_usage_errors_exit_2(ini, run):
    assert run('tasks', ini, '--state', 'sleeping')[0] == 2
    assert run('add', ini, '/x', '--header', 'no colon')[0] == 2
    assert run('add', ini, '/x', '-d', 'a', '--data-file', 'b')[0] == 2
    code, _, err = run('dead', 'requeue', ini)
    assert code == 2 and '--all' in err
    assert run('--help')[0] == 0


# -- show and tasks --------------------------------------------------------

def test_show_a_task_with_its_attempts(ini, run):
    [task_id] = add('/ok')
    work()
    code, out, _ = run('show', ini, task_id)
    assert code == 0
    assert f'task:         {task_id}' in out
    assert 'state:        done' in out and 'request:      GET /ok' in out
    assert '1  200 OK' in out
    record = json.loads(run('show', ini, task_id, '--json')[1])
    assert (record['state'], record['attempts'][0]['status']) == \
        ('done', '200 OK')


def test_show_a_task_with_its_kept_result(ini, run):
    [task_id] = add('/ok', keep_result=True)
    work()
    out = run('show', ini, task_id)[1]
    assert 'result:       200 OK (' in out
    record = json.loads(run('show', ini, task_id, '--json')[1])
    assert (record['result']['outcome'], record['result']['status']) == (
        'done', '200 OK')
    assert record['result']['body'] == taskqueue.result(task_id)[
        'body'].decode()


def test_show_a_dead_task_with_its_error(ini, run):
    [task_id] = add('/gone')
    work()
    out = run('show', ini, task_id)[1]
    assert 'state:        dead' in out
    assert 'dead since:' in out and 'error:' in out


def test_show_an_unknown_task_exits_1(ini, run):
    code, out, err = run('show', ini, 'f' * 32)
    assert (code, out) == (1, '')
    assert 'no task ffff' in err


def test_tasks_newest_first_with_filters_and_pages(ini, run):
    [first], [second], [third] = add('/ok'), add('/gone'), add('/ok')
    [mail] = add('/ok', queue='mail')
    work()
    code, out, _ = run('tasks', ini)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ['TASK', 'QUEUE', 'STATE']
    assert [line.split()[0] for line in lines[1:]] == [mail, third, second,
                                                       first]
    out = run('tasks', ini, '-q', 'default', '--state', 'done')[1]
    assert [line.split()[0] for line in out.splitlines()[1:]] == [third,
                                                                  first]
    out = run('tasks', ini, '-q', 'default', '--limit', '1', '--offset', '1')[1]
    assert second in out and '(more with --offset 2)' in out
    records = json.loads(run('tasks', ini, '--json', '--state', 'dead')[1])
    assert [r['id'] for r in records] == [second]
    assert run('tasks', ini, '--offset', '9')[1] == 'no tasks from offset 9\n'


def test_cancel_a_scheduled_task(ini, run):
    [task_id] = add('/ok', countdown=60)
    assert run('cancel', ini, task_id) == (
        0, f'cancelled task {task_id} of queue default\n', '')
    code, out, err = run('cancel', ini, task_id)
    assert (code, out) == (1, '') and 'no pending, scheduled or delayed' in err
    assert json.loads(run('show', ini, '--json', task_id)[1])['state'] == \
        'cancelled'
    assert run('cancel', ini, 'not-an-id')[0] == 2


def test_tasks_filtered_by_label(ini, run):
    [mailing] = add('/ok', label='send_mailing')
    add('/ok', '/ok')
    [mail] = add('/ok', queue='mail', label='send_mailing')
    records = json.loads(run('tasks', ini, '--json', '--label',
                             'send_mailing')[1])
    assert [r['id'] for r in records] == [mail, mailing]
    assert {r['label'] for r in records} == {'send_mailing'}
    code, _, err = run('tasks', ini, '--label', 'no spaces')
    assert code == 2 and 'label must be' in err


# -- dead letters ----------------------------------------------------------

def test_dead_list(ini, run):
    [task_id] = add('/gone')
    work()
    code, out, _ = run('dead', 'list', ini)
    assert code == 0
    [row] = out.splitlines()[1:]
    assert row.split()[:2] == [task_id, 'default']
    assert 'GET /gone' in row and '404 Not Found' in row
    [letter] = json.loads(run('dead', 'list', ini, '--json')[1])
    assert (letter['task_id'], letter['attempt']) == (task_id, 1)


def test_dead_requeue_by_id_and_a_missing_one_exits_1(ini, run):
    gone, other = add('/gone', '/gone')
    work()
    code, out, err = run('dead', 'requeue', ini, gone, 'f' * 32)
    assert code == 1
    assert out == f'requeued {gone}\nnot among the dead letters: {"f" * 32}\n'
    assert counts()['dead'] == 1 and counts()['pending'] == 1


def test_dead_requeue_all_asks_first(ini, run, stdin):
    ids = add('/gone', '/gone')
    work()
    stdin('n\n')
    code, _, err = run('dead', 'requeue', ini, '--all')
    assert code == 1
    assert 'Requeue 2 dead letter(s) of queue default? [y/N]' in err
    assert 'nothing done' in err and counts()['dead'] == 2
    stdin('y\n')
    code, out, _ = run('dead', 'requeue', ini, '--all', '--json')
    assert code == 0
    assert json.loads(out) == {'requeued': {'default': 2, 'mail': 0}}
    assert pending_ids(wsgi_taskqueue.get_queue()) == ids


def test_dead_purge_refused_at_end_of_input(ini, run, stdin):
    add('/gone')
    work()
    stdin('')
    assert run('dead', 'purge', ini)[0] == 1
    assert counts()['dead'] == 1
    code, out, _ = run('dead', 'purge', ini, '--yes')
    assert (code, out) == (0, 'deleted 1 dead letter(s) of queue default\n'
                              'deleted 0 dead letter(s) of queue mail\n')
    assert counts()['dead'] == 0


# -- whole queues ----------------------------------------------------------

def test_requeue_runs_the_delayed_and_the_dead_now(ini, run):
    add('/flaky', '/gone', '/ok')
    work(limit=2)
    code, out, _ = run('requeue', ini, 'default', '--yes')
    assert code == 0
    assert out == ('requeued 1 delayed task(s) and 1 dead letter(s) of '
                   'queue default\n')
    assert counts()['pending'] == 3 and counts()['delayed'] == 0


def test_purge_deletes_pending_and_delayed_only_after_a_yes(ini, run, stdin):
    add('/flaky', '/gone')
    work()
    add('/ok', '/ok')
    stdin('no\n')
    code, _, err = run('purge', ini, 'default')
    assert code == 1
    assert 'Delete the 2 pending and 1 delayed task(s) of queue default' in err
    stdin('yes\n')
    code, out, _ = run('purge', ini, 'default', '--json')
    assert (code, json.loads(out)) == (0, {'queue': 'default', 'purged': 3})
    assert counts()['dead'] == 1


def test_nothing_to_do_asks_nothing(ini, run):
    # stdin is pytest's, which fails if read: no question may be asked.
    assert run('purge', ini, 'default')[:2] == (
        0, 'deleted 0 pending or delayed task(s) of queue default\n')
    assert run('requeue', ini, 'default')[0] == 0
    assert run('dead', 'purge', ini)[0] == 0


def test_reset_warns_of_live_consumers(ini, run, stdin):
    add('/gone', '/ok')
    work(limit=1)
    live_consumer()
    stdin('')
    code, _, err = run('reset', ini, 'default')
    assert code == 1
    assert '1 pending, 0 in flight, 0 delayed, 1 dead' in err
    assert '1 consumer(s) still run' in err
    assert run('reset', ini, 'default', '-y')[:2] == (0,
                                                       'queue default is empty\n')
    assert counts() == {'pending': 0, 'delayed': 0, 'dead': 0, 'staged': 0,
                        'processing': {}}
    assert wsgi_taskqueue.get_queue().consumers() == []


def test_a_long_requeue_shows_a_progress_bar_on_a_terminal(ini, run,
                                                            monkeypatch):
    add(*['/gone'] * 30)
    work()
    terminal = Terminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    assert main(['requeue', ini, 'default', '--yes']) == 0
    bar = terminal.getvalue()
    assert bar.startswith('\rrequeue default [')
    assert bar.endswith('] 30/30 100%\n')


def test_an_interrupted_command_exits_130(ini, run, monkeypatch):
    add('/gone')
    work()

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr('wsgi_taskqueue.admin_dead.requeue_all_dead', interrupted)
    code, _, err = run('dead', 'requeue', ini, '--all', '--yes')
    assert (code, err) == (130, 'wsgi-taskqueue: interrupted\n')


def test_a_redis_refusal_exits_3(ini, run, monkeypatch):
    import redis

    def refused(*args):
        raise redis.ResponseError('NOPERM no permissions to run "llen"')
    monkeypatch.setattr('wsgi_taskqueue.admin.queue_status', refused)
    code, _, err = run('status', ini)
    assert code == 3 and 'Redis refused: NOPERM' in err


# -- add -------------------------------------------------------------------

def test_add_with_every_option(ini, run, tmp_path):
    code, out, _ = run(
        'add', ini, '/tasks/sync', '-q', 'mail', '-p', 'a=1', '-p', 'a=2',
        '--param', 'b=x y', '-H', 'Content-Type: application/json',
        '-H', 'X-Trace: 1', '--header', 'X-Trace: 2', '-d', '{"n": 1}',
        '--user', 'alice')
    assert code == 0
    task_id = out.strip()
    [message] = wsgi_taskqueue.get_queue('mail').reserve('r', 10, 0)
    task = wsgi_taskqueue.get_queue('mail').codec.decode(message)
    assert (task.id, task.method, task.url, task.payload, task.user_id) == (
        task_id, 'POST', '/tasks/sync?a=1&a=2&b=x+y', b'{"n": 1}', 'alice')
    assert task.environ == {'CONTENT_TYPE': 'application/json',
                            'HTTP_X_TRACE': '1, 2'}


def test_add_with_task_options_and_show_them(ini, run):
    code, out, _ = run('add', ini, '/ok', '--priority', '8', '--label',
                       'mailing', '--name', 'mailing-7', '--countdown', '600')
    assert code == 0
    task_id = out.strip()
    out = run('show', ini, task_id)[1]
    assert 'state:        scheduled' in out
    assert 'priority:     8' in out and 'label:        mailing' in out
    assert 'name:         mailing-7' in out and '\ndue:          20' in out
    # The name is held: the same name again adds nothing.
    code, again, _ = run('add', ini, '/ok', '--name', 'mailing-7')
    assert code == 0 and again.strip() != task_id
    assert run('show', ini, again.strip())[0] == 1
    code, _, err = run('add', ini, '/x', '--priority', '12')
    assert code == 2 and 'priority must be a whole number from 0 to 9' in err
    code, _, err = run('add', ini, '/x', '--eta', 'noon')
    assert code == 2 and 'eta must be an ISO 8601' in err


def test_add_reads_the_body_from_a_file_or_stdin(ini, run, tmp_path,
                                                 monkeypatch):
    body = tmp_path / 'body.bin'
    body.write_bytes(b'\x00\x01binary')
    assert run('add', ini, '/upload', '-X', 'put', '--data-file', body)[0] == 0
    monkeypatch.setattr(sys, 'stdin', types.SimpleNamespace(
        buffer=io.BytesIO(b'from stdin')))
    record = json.loads(run('add', ini, '/in', '--data-file', '-',
                            '--json')[1])
    assert (record['method'], record['queue']) == ('POST', 'default')
    queue = wsgi_taskqueue.get_queue()
    tasks = [queue.codec.decode(m) for m in queue.reserve('r', 10, 0)]
    assert [(t.method, t.payload) for t in tasks] == [
        ('PUT', b'\x00\x01binary'), ('POST', b'from stdin')]
    code, _, err = run('add', ini, '/x', '--data-file', tmp_path / 'none')
    assert code == 2 and 'cannot read' in err


def test_add_refuses_a_bad_task(ini, run):
    code, _, err = run('add', ini, 'http://elsewhere/x')
    assert code == 2 and 'path inside the app' in err
    assert run('add', ini, '/x', '-X', 'BREW')[0] == 2
    assert counts()['pending'] == 0


def test_add_commits_even_inside_an_open_transaction(ini, run):
    transaction.begin()
    taskqueue.add('/outer')
    assert run('add', ini, '/x')[0] == 0
    transaction.abort()
    assert counts()['pending'] == 1


# -- serve, worker, dashboard ------------------------------------------------

def test_worker_once_runs_what_is_pending(ini, run):
    add('/ok', '/ok')
    assert run('worker', ini, '--once')[0] == 0
    assert counts()['pending'] == 0


def test_dashboard_serves_the_management_app(ini, run, monkeypatch):
    calls = {}
    management = types.ModuleType('wsgi_taskqueue.management')
    management.make_app = lambda api_key, queues=None: calls.setdefault(
        'app', ('app', api_key, queues))
    monkeypatch.setitem(sys.modules, 'wsgi_taskqueue.management', management)
    monkeypatch.setattr('waitress.serve', lambda app, **kw: calls.update(
        served=(app, kw)))
    monkeypatch.setenv('WSGI_TASKQUEUE_API_KEY', 'from-env')
    assert run('dashboard', ini, '--listen', '127.0.0.1:9999')[0] == 0
    assert calls['served'] == (('app', 'from-env', ['default', 'mail']),
                               {'listen': '127.0.0.1:9999'})
    calls.clear()
    assert run('dashboard', ini, '--api-key', 'k', '-q', 'mail')[0] == 0
    assert calls['served'][0] == ('app', 'k', ['mail'])


def test_dashboard_needs_an_api_key(ini, run, monkeypatch):
    monkeypatch.delenv('WSGI_TASKQUEUE_API_KEY', raising=False)
    code, _, err = run('dashboard', ini)
    assert code == 2 and 'WSGI_TASKQUEUE_API_KEY' in err


# -- console ---------------------------------------------------------------

def test_the_progress_bar_draws_on_terminals_only():
    terminal = Terminal()
    with console.Progress('work', terminal) as progress:
        progress(1, 4)
        progress(4, 4)
    assert terminal.getvalue() == (
        '\rwork [' + '#' * 7 + '.' * 23 + '] 1/4  25%'
        '\rwork [' + '#' * 30 + '] 4/4 100%\n')
    pipe = io.StringIO()
    with console.Progress('work', pipe) as progress:
        progress(4, 4)
    assert pipe.getvalue() == ''


def test_confirm_takes_only_yes_and_end_of_input_is_no(stdin, capsys):
    for typed, answer in (('y\n', True), ('YES\n', True), ('\n', False),
                          ('sure\n', False), ('', False)):
        stdin(typed)
        assert console.confirm('Go?') is answer
    assert capsys.readouterr().err.startswith('Go? [y/N] \n')


def test_ages_and_tables():
    assert [console.age(s) for s in (0.42, 12, 300, 7200, 200000, None)] \
        == ['0.4s', '12s', '5m', '2h', '2d', '-']
    assert console.table(['a', 'bb'], [[1, None], ['long', 2]]) == (
        'A     BB\n1     -\nlong  2')


# -- the real console script -----------------------------------------------

def cli(*argv, input=''):
    """Run ``wsgi-taskqueue`` as a user does; stdin is a pipe with
    ``input`` and then end of input (never a terminal)."""
    script = Path(sys.executable).with_name('wsgi-taskqueue')
    command = [str(script)] if script.exists() else [
        sys.executable, '-m', 'wsgi_taskqueue']
    return subprocess.run(command + [str(arg) for arg in argv], input=input,
                          capture_output=True, text=True, timeout=30)


def test_script_adds_and_shows_a_task(ini):
    added = cli('add', ini, '/ok', '-p', 'n=1')
    assert added.returncode == 0, added.stderr
    task_id = added.stdout.strip()
    shown = cli('show', ini, task_id, '--json')
    assert shown.returncode == 0
    assert json.loads(shown.stdout)['state'] == 'queued'
    status = cli('status', ini, '--json')
    assert [q['pending'] for q in json.loads(status.stdout)] == [1, 0]


def test_script_exit_codes_for_scripts(ini, tmp_path):
    assert cli('show', ini, 'f' * 32).returncode == 1
    down = tmp_path / 'down.ini'
    down.write_text(INI.format(type='redis',
                               url=f'redis://127.0.0.1:{free_port()}/0'))
    unreachable = cli('tasks', down)
    assert unreachable.returncode == 3
    assert 'unavailable' in unreachable.stderr
    wrong = tmp_path / 'wrong.ini'
    wrong.write_text('[taskqueue]\ntype = rabbit\n')
    assert cli('status', wrong).returncode == 2


def test_script_confirmation_without_a_terminal_is_a_no(ini):
    add('/ok')
    refused = cli('purge', ini, 'default')
    assert refused.returncode == 1
    assert '[y/N]' in refused.stderr and 'nothing done' in refused.stderr
    assert counts()['pending'] == 1
    accepted = cli('purge', ini, 'default', input='y\n')
    assert accepted.returncode == 0 and counts()['pending'] == 0


def test_a_worker_serves_its_metrics(ini):
    for _ in range(3):
        add('/ok')
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    worker = subprocess.Popen(
        [sys.executable, '-m', 'wsgi_taskqueue', 'worker', ini,
         '--metrics', f'127.0.0.1:{port}'], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def scrape():
        try:
            with urllib.request.urlopen(
                    f'http://127.0.0.1:{port}/metrics', timeout=1) as page:
                return page.read().decode()
        except OSError:
            assert worker.poll() is None, worker.stderr.read().decode()
            return ''

    try:
        wait_until(lambda: 'wsgi_taskqueue_dispatched_total{outcome="done",'
                   'queue="default"} 3.0' in scrape(), timeout=20)
    finally:
        worker.terminate()
        worker.wait(10)


def test_serving_commands_take_the_logging_of_the_ini(tmp_path):
    path = tmp_path / 'logging.ini'
    path.write_text(textwrap.dedent("""
        [loggers]
        keys = root, access

        [handlers]
        keys = console

        [formatters]
        keys = plain

        [logger_root]
        level = INFO
        handlers = console

        [logger_access]
        level = WARNING
        handlers =
        qualname = wsgi_taskqueue.access

        [handler_console]
        class = StreamHandler
        args = (sys.stderr,)
        formatter = plain

        [formatter_plain]
        format = %%(message)s
    """))
    access = logging.getLogger('wsgi_taskqueue.access')
    root = logging.getLogger()
    saved = access.level, root.level, list(root.handlers)
    try:
        _configure_logging(types.SimpleNamespace(
            handler='worker', config=str(path), verbose=False))
        assert access.getEffectiveLevel() == logging.WARNING
    finally:
        access.setLevel(saved[0])
        root.setLevel(saved[1])
        root.handlers[:] = saved[2]
