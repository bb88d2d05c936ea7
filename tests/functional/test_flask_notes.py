"""The Flask example (examples/flask): Flask-SQLAlchemy and Flask-Login,
where ``db.session.commit()`` commits a note and the task that processes
it, or neither.  Served by waitress in a subprocess, configured as its
users configure it: ``FLASK_*`` environment variables; its queue in
process, on Redis, or in the app's own SQLite file."""
import json
import signal
import sqlite3
import sys

import pytest
import requests

import wsgi_taskqueue
from wsgi_taskqueue.testing import free_port

from .harness import Process, notes, runs_by_task

ALICE = {'name': 'alice', 'password': 'wonderland'}


class FlaskNotes:
    """The example app of one test, its database and its processes."""

    def __init__(self, deployment, redis_url: str | None,
                 sqlite: bool = False):
        """The queue: on Redis at ``redis_url``; with ``sqlite``, in the
        app's own file (the note and its task in one commit); else in
        process."""
        self.deployment = deployment
        self.directory = deployment.directory
        self.database_url = f'sqlite:///{self.directory}/notes.sqlite'
        if sqlite:
            queues = {'default': {'type': 'sqlite', 'url': self.database_url,
                                  'secret': 'test-secret'}}
        elif redis_url is None:
            queues = {'default': {'type': 'local'}}
        else:
            queues = {'default': {'type': 'redis', 'url': redis_url,
                                  'secret': 'test-secret'}}
        self.env = {
            'FLASK_SQLALCHEMY_DATABASE_URI': self.database_url,
            'FLASK_TASKQUEUE_QUEUES': json.dumps(queues),
        }

    def serve(self, consumers: dict | None = None) -> str:
        """waitress serving the app, with the example's two consumer
        threads unless ``consumers`` says otherwise."""
        port = free_port()
        env = dict(self.env)
        if consumers is not None:
            env['FLASK_TASKQUEUE_CONSUMERS'] = json.dumps(consumers)
        self._start('waitress', env, [
            sys.executable, '-m', 'waitress', f'--listen=127.0.0.1:{port}',
            '--call', 'flask_notes:create_app'])
        url = f'http://127.0.0.1:{port}'
        self.deployment.wait_until(lambda: _answers(url), 'waitress to answer')
        return url

    def flask(self, *arguments: str) -> Process:
        """``flask --app flask_notes ARGUMENTS`` in a subprocess."""
        return self._start(arguments[0], dict(
            self.env, FLASK_TASKQUEUE_CONSUMERS=json.dumps(
                {'worker': {'poll_interval': 0.2}})), [
            sys.executable, '-m', 'flask', '--app', 'flask_notes',
            *arguments])

    def _start(self, label: str, env: dict, argv: list[str]) -> Process:
        process = Process(label, self.directory / label, title=' '.join(
            argv[1:]), log_path=self.directory / f'{label}.log', argv=argv,
            env=env)
        self.deployment.processes.append(process)
        return process

    def runs(self) -> dict[str, list[sqlite3.Row]]:
        """The task_run rows, by task id."""
        return runs_by_task(self.directory / 'notes.sqlite', 'task_run')

    def wait_for_runs(self, task_ids: list[str]) -> dict:
        self.deployment.wait_until(
            lambda: set(task_ids) <= set(self.runs()),
            f'runs of the tasks {task_ids}')
        return self.runs()


def _answers(url: str) -> bool:
    try:
        requests.get(url + '/notes', timeout=1)
    except requests.ConnectionError:
        return False
    return True


@pytest.fixture(params=['local', 'redis', 'sqlite'])
def app(request, deployment):
    redis_url = (request.getfixturevalue('redis_url')
                 if request.param == 'redis' else None)
    return FlaskNotes(deployment, redis_url, sqlite=request.param == 'sqlite')


def post(session, url: str, path: str, expected_status: int = 200,
         **form) -> dict:
    response = session.post(url + path, data=form, timeout=10)
    assert response.status_code == expected_status, response.text
    return response.json()


def test_every_note_is_processed_once_by_a_task_that_sees_it(app):
    url = app.serve()
    written = [post(requests, url, '/notes', text='one two three', count=20)
               for _ in range(3)]
    note_ids = [id for batch in written for id in batch['notes']]
    task_ids = [id for batch in written for id in batch['tasks']]
    runs = app.wait_for_runs(task_ids)
    assert sorted(runs) == sorted(task_ids)
    assert all(len(rows) == 1 for rows in runs.values())
    rows = [row for [row] in runs.values()]
    assert sorted(row['note_id'] for row in rows) == sorted(note_ids)
    assert all(row['note_found'] and row['attempt'] == 1 for row in rows)
    assert {note['id']: note['words'] for note in notes(url)} == dict.fromkeys(
        note_ids, 3)


def test_writes_that_are_not_committed_queue_no_task(app):
    url = app.serve()
    form = {'text': 'lost', 'count': 3}
    raised = post(requests, url, '/notes/fail', 500, how='raise', **form)
    rolled_back = post(requests, url, '/notes/fail', how='rollback', **form)
    refused = post(requests, url, '/notes/fail', 409, how='commit', **form)
    failed_reminder = post(requests, url, '/remind', 500, fail='1')
    lost = (raised['tasks'] + rolled_back['tasks'] + refused['tasks']
            + failed_reminder['tasks'])
    assert len(lost) == 10
    # Tasks queued after the lost ones; once they ran, a lost task that
    # had been queued would have run too.
    later = post(requests, url, '/notes', text='committed', count=3)
    reminder = post(requests, url, '/remind')
    runs = app.wait_for_runs(later['tasks'] + reminder['tasks'])
    assert sorted(runs) == sorted(later['tasks'] + reminder['tasks'])
    assert {note['text'] for note in notes(url)} == {'committed'}


def test_the_task_runs_as_the_logged_in_user(app):
    url = app.serve()
    alice = requests.Session()
    post(alice, url, '/login', **ALICE)
    hers = post(alice, url, '/notes', text='by alice')
    reminder = post(alice, url, '/remind')
    anonymous = post(requests, url, '/notes', text='by nobody')
    runs = app.wait_for_runs(hers['tasks'] + reminder['tasks']
                             + anonymous['tasks'])
    assert [runs[id][0]['user'] for id in hers['tasks'] + reminder['tasks']
            + anonymous['tasks']] == ['alice', 'alice', None]
    assert {note['text']: note['author'] for note in notes(url)} == {
        'by alice': 'alice', 'by nobody': None}


def test_a_network_request_cannot_pose_as_a_task(deployment):
    app = FlaskNotes(deployment, None)
    url = app.serve()
    written = post(requests, url, '/notes', text='x')
    [note_id], [task_id] = written['notes'], written['tasks']
    app.wait_for_runs([task_id])
    forged = {'X-Task-Id': task_id, 'X-Task-Queue': 'default',
              'X-Task-Retry-Count': '0'}
    response = requests.post(f'{url}/tasks/process?id={note_id}',
                             headers=forged, timeout=10)
    assert response.status_code == 404
    response = requests.get(f'{url}/whoami', headers=forged, timeout=10)
    assert response.json() == {'user': None, 'task': False,
                               'task_headers': {}}
    assert len(app.runs()[task_id]) == 1


def test_a_web_only_process_and_the_flask_taskqueue_worker(
        deployment, redis_url):
    app = FlaskNotes(deployment, redis_url)
    url = app.serve(consumers={})  # a web-only process
    written = post(requests, url, '/notes', text='for the worker', count=5)
    # The commit sends the promotion without waiting for it.
    queue = wsgi_taskqueue.RedisQueue(url=redis_url)
    wsgi_taskqueue.register_queue('default', queue)
    deployment.wait_until(lambda: queue.counts()['pending'] == 5,
                          'five pending tasks')
    status = app.flask('taskqueue', 'status', '--json')
    assert status.popen.wait(30) == 0, status.report()
    [queue] = json.loads(status.log_path.read_text())
    assert queue['pending'] == 5
    assert app.runs() == {}
    worker = app.flask('taskqueue', 'worker', '--once')
    assert worker.popen.wait(60) == 0, worker.report()
    runs = app.runs()
    assert sorted(runs) == sorted(written['tasks'])
    assert {note['words'] for note in notes(url)} == {3}


def test_tasks_queued_in_sqlite_outlive_the_web_process(deployment):
    """The embedded durable queue: a web-only process commits notes and
    their tasks to its SQLite file and is killed (SIGKILL) before anyone
    ran them; the tasks wait in the file, and a ``flask taskqueue
    worker`` beside the restarted web process runs them, and the new
    ones, once each."""
    app = FlaskNotes(deployment, None, sqlite=True)
    url = app.serve(consumers={})
    before = post(requests, url, '/notes', text='one two three', count=5)
    web = deployment.processes[-1]
    web.popen.send_signal(signal.SIGKILL)
    assert web.popen.wait(10) == -signal.SIGKILL
    deployment.processes.remove(web)
    queue = wsgi_taskqueue.SqlQueue(url=app.database_url)
    wsgi_taskqueue.register_queue('default', queue)
    assert queue.counts()['pending'] == 5
    assert app.runs() == {}

    url = app.serve(consumers={})
    app.flask('taskqueue', 'worker')
    after = post(requests, url, '/notes', text='four five six', count=5)
    task_ids = before['tasks'] + after['tasks']
    runs = app.wait_for_runs(task_ids)
    deployment.wait_until(lambda: queue.counts()['pending'] == 0 and
                          not queue.counts()['processing'], 'an empty queue')

    assert sorted(runs) == sorted(task_ids)
    assert all(len(rows) == 1 for rows in runs.values())
    assert all(row['note_found'] and row['attempt'] == 1
               for [row] in runs.values())
    assert {note['id']: note['words'] for note in notes(url)} == dict.fromkeys(
        before['notes'] + after['notes'], 3)
    for process in deployment.processes:
        assert 'database is locked' not in process.log_path.read_text()
