"""The Flask extension in-process: settings from ``app.config`` checked
as the ini's, tasks that follow ``db.session``, ``task_only`` and the
``flask taskqueue`` commands.  tests/functional/test_flask_notes.py serves
the example app under waitress."""
import logging
import textwrap

import flask
import pytest
import sqlalchemy
from flask_sqlalchemy import SQLAlchemy

import wsgi_taskqueue
from wsgi_taskqueue import ConfigurationError
from wsgi_taskqueue.flask import TaskQueue, task_only
from wsgi_taskqueue.testing import free_port


def make_app(**config) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(config)
    return app


def pending(queue='default') -> int:
    return wsgi_taskqueue.get_queue(queue).counts()['pending']


@pytest.fixture(params=['local', 'sqlite'])
def notes_app(request, tmp_path):
    """A Flask-SQLAlchemy app with a note table and a local queue, or a
    SQLite queue in the app's own file (one relative URL for both, as
    Flask users write it: a file in the instance folder)."""
    url = 'sqlite:///notes.sqlite'
    queue = {'type': 'sqlite', 'url': url, 'timeout': 1} if (
        request.param == 'sqlite') else {'type': 'local'}
    app = flask.Flask(__name__, instance_path=str(tmp_path / 'instance'))
    app.config.update(SQLALCHEMY_DATABASE_URI=url,
                      TASKQUEUE_QUEUES={'default': queue})
    db = SQLAlchemy(app)

    class Note(db.Model):
        id = sqlalchemy.Column(sqlalchemy.Integer, primary_key=True)
        label = sqlalchemy.Column(sqlalchemy.String, unique=True)

    notes = Note.__table__
    app.Note = Note
    TaskQueue(app, db=db)
    with app.app_context():
        db.create_all()
    # The queue's tables, before a test's session holds the file: the
    # test looks into the queue while its session has written.
    assert pending() == 0
    app.db, app.notes = db, notes
    app.shares_file = request.param == 'sqlite'
    return app


def count_notes(app) -> int:
    with app.app_context():
        return app.db.session.scalar(
            sqlalchemy.select(sqlalchemy.func.count()).select_from(app.notes))


# -- settings ---------------------------------------------------------------

def test_settings_take_the_ini_strings_or_python_values():
    app = make_app(
        TASKQUEUE_QUEUES={
            'default': {'type': 'local', 'secret': ['new', 'old'],
                        'max_task_size': 1024},
            'mail': {'type': 'local', 'secret': 'one two'}},
        TASKQUEUE_CONSUMERS={'w1': {'queue': 'mail',
                                    'concurrent_limit': '3'}})
    TaskQueue(app)
    configuration = app.extensions['taskqueue'].configuration
    assert sorted(configuration.queues) == ['default', 'mail']
    assert wsgi_taskqueue.get_queue('default').max_task_size == 1024
    [consumer] = configuration.consumers
    assert consumer.settings['queue'] == 'mail'
    assert consumer.settings['concurrent_limit'] == 3
    assert consumer.settings['name'].startswith('w1@')


@pytest.mark.parametrize('config, message', [
    ({'TASKQUEUE_QUEUES': {'default': {'type': 'local', 'colour': 'red'}}},
     "file app.config, section [taskqueue:default], key 'colour': unknown "
     "key; known keys: "),
    ({'TASKQUEUE_QUEUES': {'default': {'type': 'redis', 'port': 0}}},
     "file app.config, section [taskqueue:default], key 'port': bad value 0: "
     "must be at least 1, not 0"),
    ({'TASKQUEUE_QUEUES': {'default': {'type': 'local'}},
      'TASKQUEUE_CONSUMERS': {'w': {'queue': 'mail'}}},
     "file app.config, section [taskqueue-server:w], key 'queue': consumer "
     "of undefined queue 'mail'; defined queues: default"),
    ({'TASKQUEUE_QUEUES': ['default']},
     'file app.config, section [taskqueue]: expected a dict of taskqueue '
     'sections by name, not list'),
])
def test_wrong_settings_fail_in_init_app_with_the_ini_message(config,
                                                              message):
    with pytest.raises(ConfigurationError) as raised:
        TaskQueue().init_app(make_app(**config))
    assert str(raised.value).startswith(message)


def test_settings_from_an_ini_file(tmp_path):
    ini = tmp_path / 'queues.ini'
    ini.write_text(textwrap.dedent("""
        [taskqueue:mail]
        type = local
        [taskqueue-server]
        queue = mail
    """))
    app = make_app(TASKQUEUE_INI=str(ini))
    TaskQueue(app)
    assert wsgi_taskqueue.get_queue().name == 'mail'
    assert len(app.extensions['taskqueue'].configuration.consumers) == 1


# -- tasks follow db.session -------------------------------------------------

def test_a_sqlite_queue_in_the_apps_file_commits_in_the_apps_transaction(
        tmp_path):
    """The outbox under Flask: a SQLite file takes one writer at a time,
    and the session holds it from its first write to its commit, so the
    tasks go through the session's connection, in its transaction."""
    app = flask.Flask(__name__, instance_path=str(tmp_path / 'instance'))
    app.config.update(
        SQLALCHEMY_DATABASE_URI='sqlite:///notes.sqlite',
        TASKQUEUE_QUEUES={'default': {'type': 'sqlite', 'timeout': 1,
                                      'url': 'sqlite:///notes.sqlite'}})
    db = SQLAlchemy(app)
    table = sqlalchemy.Table('t', db.metadata, sqlalchemy.Column(
        'id', sqlalchemy.Integer, primary_key=True))
    TaskQueue(app, db=db)
    queue = wsgi_taskqueue.get_queue()
    assert queue.store.engine.url.database == str(
        tmp_path / 'instance' / 'notes.sqlite')
    with app.test_request_context('/'):
        db.create_all()
        db.session.execute(table.insert())
        wsgi_taskqueue.taskqueue.add('/process')
        own_statements = []
        sqlalchemy.event.listen(queue.store.engine, 'before_cursor_execute',
                                lambda *args: own_statements.append(args[2]))
        db.session.commit()
        assert own_statements == []
    assert pending() == 1


def test_a_sqlite_queue_elsewhere_stages_on_its_own_connection(tmp_path):
    app = flask.Flask(__name__, instance_path=str(tmp_path / 'instance'))
    app.config.update(
        SQLALCHEMY_DATABASE_URI='sqlite:///notes.sqlite',
        TASKQUEUE_QUEUES={'default': {'type': 'sqlite',
                                      'url': f'sqlite:///{tmp_path}/q.db'}})
    db = SQLAlchemy(app)
    TaskQueue(app, db=db)
    queue = wsgi_taskqueue.get_queue()
    with app.test_request_context('/'):
        db.create_all()
        db.session.execute(sqlalchemy.text('CREATE TABLE t (id INTEGER)'))
        wsgi_taskqueue.taskqueue.add('/process')
        own_statements = []
        sqlalchemy.event.listen(queue.store.engine, 'before_cursor_execute',
                                lambda *args: own_statements.append(args[2]))
        db.session.commit()
    assert any(statement.startswith('INSERT INTO taskqueue_tasks')
               for statement in own_statements)
    assert pending() == 1


def test_a_row_and_its_task_commit_together(notes_app):
    with notes_app.test_request_context('/'):
        db = notes_app.db
        db.session.execute(notes_app.notes.insert().values(label='a'))
        wsgi_taskqueue.taskqueue.add('/process')
        if not notes_app.shares_file:  # else waits for the session's lock
            assert pending() == 0  # nothing before the commit
        db.session.commit()
        assert pending() == 1


def test_a_rollback_drops_the_tasks(notes_app):
    with notes_app.test_request_context('/'):
        notes_app.db.session.execute(notes_app.notes.insert())
        wsgi_taskqueue.taskqueue.add('/process')
        notes_app.db.session.rollback()
        notes_app.db.session.commit()
    assert pending() == 0 and count_notes(notes_app) == 0


def test_a_savepoint_rolled_back_drops_the_tasks_added_after_it(notes_app):
    with notes_app.test_request_context('/'):
        session = notes_app.db.session
        wsgi_taskqueue.taskqueue.add('/kept')
        with pytest.raises(RuntimeError), session.begin_nested():
            wsgi_taskqueue.taskqueue.add('/dropped')
            raise RuntimeError('rolls the savepoint back')
        with session.begin_nested():
            wsgi_taskqueue.taskqueue.add('/kept-too')
        session.commit()
    queue = wsgi_taskqueue.get_queue()
    urls = [queue.codec.decode(m).url for m in queue.reserve('r', 10, 0)]
    assert urls == ['/kept', '/kept-too']


def test_a_commit_that_fails_drops_the_tasks(notes_app):
    with notes_app.test_request_context('/'):
        session = notes_app.db.session
        session.execute(notes_app.notes.insert().values(label='x'))
        session.commit()
        wsgi_taskqueue.taskqueue.add('/process')
        session.add_all([notes_app.Note(label='y'), notes_app.Note(label='x')])
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            session.commit()  # its flush fails after the tasks were staged
        session.rollback()
    assert pending() == 0 and count_notes(notes_app) == 1


def test_a_queue_that_cannot_take_the_tasks_fails_the_commit(tmp_path):
    """G6: the vote happens before the database commits."""
    app = make_app(
        SQLALCHEMY_DATABASE_URI=f'sqlite:///{tmp_path}/db.sqlite',
        TASKQUEUE_QUEUES={'default': {
            'type': 'redis', 'port': free_port(), 'socket_timeout': 0.5}})
    db = SQLAlchemy(app)
    table = sqlalchemy.Table('t', db.metadata, sqlalchemy.Column(
        'id', sqlalchemy.Integer, primary_key=True))
    TaskQueue(app, db=db)
    with app.test_request_context('/'):
        db.create_all()
        db.session.execute(table.insert())
        wsgi_taskqueue.taskqueue.add('/process')
        with pytest.raises(wsgi_taskqueue.BackendUnavailable):
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(sqlalchemy.select(
            sqlalchemy.func.count()).select_from(table)) == 0


def test_requests_commit_the_tasks_of_a_clean_session_and_drop_the_others(
        notes_app, caplog):
    db, notes = notes_app.db, notes_app.notes

    @notes_app.post('/remind')
    def remind():
        wsgi_taskqueue.taskqueue.add('/reminder')
        if flask.request.form.get('fail'):
            return 'no', 500
        return 'ok'

    @notes_app.post('/forget')
    def forget():
        db.session.execute(notes.insert())  # never committed
        wsgi_taskqueue.taskqueue.add('/reminder')
        return 'ok'

    client = notes_app.test_client()
    assert client.post('/remind').status_code == 200
    assert pending() == 1
    with caplog.at_level(logging.WARNING, 'wsgi_taskqueue'):
        assert client.post('/remind', data={'fail': '1'}).status_code == 500
        assert client.post('/forget').status_code == 200
    assert pending() == 1 and count_notes(notes_app) == 0
    assert [r.getMessage() for r in caplog.records] == [
        '1 task(s) dropped: POST /remind ended without committing '
        'db.session',
        '1 task(s) dropped: POST /forget ended without committing '
        'db.session']


def test_without_db_each_request_is_a_transaction():
    app = make_app(TASKQUEUE_QUEUES={'default': {'type': 'local'}})
    TaskQueue(app)

    @app.post('/<int:status>')
    def answer(status):
        wsgi_taskqueue.taskqueue.add('/task')
        return 'done', status

    client = app.test_client()
    assert client.post('/200').status_code == 200
    assert client.post('/500').status_code == 500
    assert pending() == 1


# -- task_only and the commands ---------------------------------------------

def test_task_only_views_are_404_from_the_network():
    app = make_app(TASKQUEUE_QUEUES={'default': {'type': 'local'}},
                   TASKQUEUE_CONSUMERS={'w': {'poll_interval': 0.2}})
    extension = TaskQueue(app)
    ran = []

    @app.post('/task')
    @task_only
    def task():
        ran.append(flask.request.headers['X-Task-Id'])
        return 'ran'

    @app.post('/enqueue')
    def enqueue():
        return extension.add('/task', method='POST')

    client = app.test_client()
    assert client.post('/task', headers={'X-Task-Id': 'forged'}
                       ).status_code == 404
    task_id = client.post('/enqueue').text
    try:
        from dummies import wait_until
        wait_until(lambda: ran == [task_id])
    finally:
        extension.stop_consumers(app)


def test_flask_taskqueue_commands(redis_url):
    app = make_app(TASKQUEUE_QUEUES={'default': {'type': 'redis',
                                                 'url': redis_url}},
                   TASKQUEUE_CONSUMERS={'w': {'poll_interval': 0.2}})
    TaskQueue(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=['taskqueue', 'add', '/x'])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=['taskqueue', 'status'])
    assert result.exit_code == 0 and 'default' in result.output
    result = runner.invoke(args=['taskqueue', 'dead', 'list', '--json'])
    assert (result.exit_code, result.output) == (0, '[]\n')
    result = runner.invoke(args=['taskqueue', 'show', 'nope'])
    assert result.exit_code == 1


def test_flask_taskqueue_init_creates_the_tables_of_a_sql_queue(
        postgresql_url):
    """A Flask app has no ini to give ``wsgi-taskqueue init``."""
    from conftest import empty_sql_queue
    queue = empty_sql_queue(postgresql_url)
    with queue.store.engine.begin() as connection:
        connection.execute(sqlalchemy.text(
            'DROP TABLE taskqueue_dead, taskqueue_version'))
    queue.close()
    app = make_app(TASKQUEUE_QUEUES={'default': {'type': 'postgresql',
                                                 'url': postgresql_url}})
    TaskQueue(app)
    runner = app.test_cli_runner()
    result = runner.invoke(args=['taskqueue', 'init'])
    assert result.exit_code == 0, result.output
    assert 'created table taskqueue_dead' in result.output
    result = runner.invoke(args=['taskqueue', 'init'])
    assert (result.exit_code, result.output.split(': ')[-1]) == (
        0, 'up to date\n')


def test_under_the_worker_command_the_consumers_are_handed_over():
    """``wsgi-taskqueue worker`` runs them; the app must not start them
    again at its first request (their names would clash)."""
    from wsgi_taskqueue.serve import hosting_consumers

    app = make_app(TASKQUEUE_QUEUES={'default': {'type': 'local'}},
                   TASKQUEUE_CONSUMERS={'w': {}})
    with hosting_consumers() as handed_over:
        TaskQueue(app)
    state = app.extensions['taskqueue']
    assert handed_over == [state.configuration]
    app.test_client().get('/')
    assert state.consumers == []
