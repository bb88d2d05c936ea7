"""The Pyramid example (examples/pyramid_app): pyramid_tm, SQLAlchemy and
zope.sqlalchemy, where a note and the task that processes it are written in
one transaction."""
import sqlite3
import sys

import requests
from pyramid.paster import get_appsettings

import wsgi_taskqueue

from .harness import EXAMPLES, Process, _answers, _listen, notes, runs_by_task

ALICE = ('alice', 'wonderland')


def post(url: str, path: str, expected_status: int = 200, **kwargs) -> dict:
    response = requests.post(url + path, timeout=10, **kwargs)
    assert response.status_code == expected_status, response.text
    return response.json()


def task_runs(deployment) -> dict[str, list[sqlite3.Row]]:
    """The task_runs rows of the app's database, by task id."""
    return runs_by_task(deployment.directory / 'notes.sqlite', 'task_runs')


def wait_for_runs(deployment, task_ids: list[str]) -> dict:
    deployment.wait_until(lambda: set(task_ids) <= set(task_runs(deployment)),
                          f'runs of the tasks {task_ids}')
    return task_runs(deployment)


def test_every_note_is_processed_once_by_a_task_that_sees_it(
        serve, deployment):
    url = serve('pyramid_app')
    written = [post(url, '/notes', data={'text': 'one two three',
                                         'count': 30})
               for _ in range(4)]
    note_ids = [id for batch in written for id in batch['notes']]
    task_ids = [id for batch in written for id in batch['tasks']]
    runs = wait_for_runs(deployment, task_ids)
    assert sorted(runs) == sorted(task_ids)
    assert all(len(rows) == 1 for rows in runs.values())
    rows = [row for [row] in runs.values()]
    assert sorted(row['note_id'] for row in rows) == sorted(note_ids)
    assert all(row['note_found'] and row['attempt'] == 1 for row in rows)
    assert {note['id']: note['words'] for note in notes(url)} == dict.fromkeys(
        note_ids, 3)


def test_writes_that_abort_queue_no_task(serve, deployment):
    url = serve('pyramid_app')
    form = {'text': 'aborted', 'count': 3}
    raised = post(url, '/notes/fail', 500, data=dict(form, how='raise'))
    doomed = post(url, '/notes/fail', data=dict(form, how='doom'))
    assert doomed['doomed']
    # Tasks queued after the aborted ones; once they ran, an aborted task
    # that had been queued would have run too.
    later = post(url, '/notes', data={'text': 'committed', 'count': 3})
    runs = wait_for_runs(deployment, later['tasks'])
    assert not set(raised['tasks'] + doomed['tasks']) & set(runs)
    assert sorted(runs) == sorted(later['tasks'])
    assert {note['text'] for note in notes(url)} == {'committed'}


def test_the_task_runs_as_the_user_who_queued_it(serve, deployment):
    url = serve('pyramid_app')
    alice = post(url, '/notes', auth=ALICE, cookies={'lang': 'fr'},
                 data={'text': 'by alice'})
    anonymous = post(url, '/notes', data={'text': 'by nobody'})
    runs = wait_for_runs(deployment, alice['tasks'] + anonymous['tasks'])
    [[alices_run]] = [runs[id] for id in alice['tasks']]
    [[anonymous_run]] = [runs[id] for id in anonymous['tasks']]
    seen = ('remote_user', 'authorization_user', 'lang')
    assert [alices_run[key] for key in seen] == ['alice', 'alice', 'fr']
    assert [anonymous_run[key] for key in seen] == [None, None, None]
    assert {note['text']: note['author'] for note in notes(url)} == {
        'by alice': 'alice', 'by nobody': None}


def test_a_network_request_cannot_pose_as_a_task(deployment):
    url = deployment.serve(deployment.ini('pyramid_app/local.ini'))
    written = post(url, '/notes', auth=ALICE, data={'text': 'x'})
    [note_id], [task_id] = written['notes'], written['tasks']
    wait_for_runs(deployment, [task_id])
    forged = {'X-Task-Id': task_id, 'X-Task-Queue': 'default',
              'X-Task-Retry-Count': '0'}
    response = requests.post(f'{url}/notes/{note_id}/process',
                             headers=forged, auth=ALICE, timeout=10)
    assert response.status_code == 404
    response = requests.get(f'{url}/whoami', headers=forged, auth=ALICE,
                            timeout=10)
    assert response.json() == {'remote_user': 'alice', 'task': False,
                               'task_headers': {}}
    assert len(task_runs(deployment)[task_id]) == 1


def test_pserve_starts_the_consumers_of_the_settings(deployment):
    """No pipeline and no server runner of ours: pserve and waitress."""
    ini = deployment.ini('pyramid_app/local.ini')
    process = Process('pserve', ini, title=f'pserve {ini.name}',
                      log_path=ini.with_name('pserve.log'), argv=[
                          sys.executable, '-m', 'pyramid.scripts.pserve',
                          str(ini)])
    deployment.processes.append(process)
    url = 'http://' + _listen(ini)
    deployment.wait_until(lambda: _answers(url), 'pserve to answer')
    written = post(url, '/notes', auth=ALICE, data={'text': 'a b'})
    [run] = wait_for_runs(deployment, written['tasks'])[written['tasks'][0]]
    assert run['remote_user'] == 'alice' and run['note_found']


def test_get_appsettings_reads_the_apps_settings(deployment, monkeypatch):
    """What alembic's env.py and the starter's tests call."""
    monkeypatch.syspath_prepend(str(EXAMPLES / 'pyramid_app'))
    ini = deployment.ini('pyramid_app/redis.ini', 'redis://127.0.0.1:1/0')
    settings = get_appsettings(str(ini))
    assert settings['sqlalchemy.url'] == \
        f'sqlite:///{deployment.directory}/notes.sqlite'
    assert settings['taskqueue.queue.default.url'] == 'redis://127.0.0.1:6379/0'


def test_a_web_only_process_and_a_worker_of_the_apps_settings(
        deployment, redis_url):
    """As docs/pyramid.rst says: ``taskqueue.start_consumers =
    %(consumers)s``, ``serve app.ini consumers=false`` for a web-only
    process, ``worker app.ini`` for the consumers of the app's settings."""
    ini = deployment.ini('pyramid_app/redis.ini', redis_url)
    ini.write_text(ini.read_text().replace(
        '[DEFAULT]\n', '[DEFAULT]\nconsumers = true\n').replace(
        '[app:main]\n', '[app:main]\ntaskqueue.start_consumers = '
        '%(consumers)s\n'))
    web = ini.with_name('web.ini')  # the same file, served with consumers=false
    web.write_text(ini.read_text())
    deployment.variables[web] = dict(deployment.variables[ini],
                                     consumers='false')
    url = deployment.serve(web)
    written = post(url, '/notes', data={'text': 'for the worker', 'count': 5})
    # The commit sends the promotion without waiting for it: wait until
    # Redis applied it.  Consumers of the web process would hold leases.
    queue = wsgi_taskqueue.RedisQueue(url=redis_url)
    wsgi_taskqueue.register_queue('default', queue)
    deployment.wait_until(lambda: queue.counts()['pending'] == 5,
                          'five pending tasks')
    assert queue.consumers() == []
    worker = deployment.worker(ini)
    runs = wait_for_runs(deployment, written['tasks'])
    assert sorted(runs) == sorted(written['tasks'])
    assert worker.running
    assert {note['words'] for note in notes(url)} == {3}


def test_the_starters_test_pattern(deployment, monkeypatch):
    """The Pyramid starter's tests build the app from the ini's settings
    (``main({}, **get_appsettings(ini))``) and talk to it with WebTest:
    with the include, its consumers run in the test process."""
    import webtest

    from wsgi_taskqueue.pyramid import stop_consumers

    monkeypatch.syspath_prepend(str(EXAMPLES / 'pyramid_app'))
    import pyramid_notes

    ini = deployment.ini('pyramid_app/local.ini')
    app = pyramid_notes.main({}, **get_appsettings(str(ini)))
    try:
        client = webtest.TestApp(app)
        written = client.post('/notes', {'text': 'in the test process'},
                              extra_environ={'REMOTE_USER': 'alice'}).json
        wait_for_runs(deployment, written['tasks'])
        assert client.get('/notes').json[0]['words'] == 4
    finally:
        stop_consumers(app.app.registry)


def test_serve_under_another_server_stops_cleanly_on_sigterm(deployment):
    """``egg:waitress#main``, not our runner: SIGTERM still stops the
    consumers of the app's settings and logs the stop."""
    url = deployment.serve(deployment.ini('pyramid_app/local.ini'))
    written = post(url, '/notes', data={'text': 'x'})
    wait_for_runs(deployment, written['tasks'])
    [process] = deployment.processes
    process.stop()
    assert process.popen.returncode == 0
    assert 'stopped serving' in process.log_path.read_text()
