"""The outbox: a task written in the app's own database transaction, with
the app's rows, through its zope.sqlalchemy session."""
import logging
import os
import pathlib
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import BackendUnavailable

from outbox import app as outbox_app

TESTS = pathlib.Path(__file__).parent


@pytest.fixture(params=['sqlite', 'postgresql'])
def database(request, tmp_path):
    """The app's database URL, with no notes and no queue rows in it."""
    if request.param == 'sqlite':
        url = f'sqlite:///{tmp_path}/app.db'
    else:
        url = request.getfixturevalue('postgresql_url')
    engine = outbox_app.bind(url)
    queue = wsgi_taskqueue.SqlQueue(url=url)
    queue.store.init()
    with engine.begin() as connection:
        connection.execute(outbox_app.notes.delete())
        for table in queue.store.tables.of_queue():
            connection.execute(table.delete())
    queue.close()
    yield url
    outbox_app.Session.remove()
    engine.dispose()


def outbox_queue(url, **options):
    queue = wsgi_taskqueue.SqlQueue(url=url, session='outbox.app.Session',
                                    **options)
    wsgi_taskqueue.register_queue('default', queue)
    return queue


def counted(url):
    """(notes, pending tasks, staged rows) in the app's database."""
    engine = sa.create_engine(url)
    tables = wsgi_taskqueue.SqlQueue(url=url)
    try:
        with engine.connect() as connection:
            tasks = tables.store.tables.tasks
            return tuple(connection.execute(query).scalar() for query in (
                sa.select(sa.func.count()).select_from(outbox_app.notes),
                sa.select(sa.func.count()).select_from(tasks).where(
                    tasks.c.state == 'ready'),
                sa.select(sa.func.count()).select_from(tasks).where(
                    tasks.c.state == 'staged')))
    finally:
        tables.close()
        engine.dispose()


def write_note_and_task(text='hello'):
    outbox_app.write_note(text)
    return taskqueue.add('/process', params={'text': text})


def test_the_row_and_its_task_commit_together_without_staging(database):
    queue = outbox_queue(database)
    own_statements = []
    sa.event.listen(queue.store.engine, 'before_cursor_execute',
                    lambda *args: own_statements.append(args[2]))
    with transaction.manager:
        task_id = write_note_and_task()
    assert counted(database) == (1, 1, 0)
    # Nothing went through the queue's own connection: no stage, no
    # promotion.
    assert own_statements == []
    assert queue.task_status(task_id)['state'] == 'queued'
    assert queue.reserve('w', 1, 0) != []


def test_a_scheduled_task_written_with_the_row_waits_until_due(database):
    queue = outbox_queue(database)
    with transaction.manager:
        outbox_app.write_note('later')
        task_id = taskqueue.add('/process', countdown=0.5)
    assert queue.task_status(task_id)['state'] == 'scheduled'
    assert queue.counts()['delayed'] == 1
    assert queue.reserve('w', 1, 0) == []
    assert len(queue.reserve('w', 1, 5)) == 1
    assert time.time() >= queue.task_status(task_id)['due']


def test_an_abort_leaves_neither(database):
    outbox_queue(database)
    with transaction.manager as txn:
        write_note_and_task()
        txn.abort()
    assert counted(database) == (0, 0, 0)


def test_a_failing_database_commit_leaves_neither(database):
    outbox_queue(database)
    with pytest.raises(sa.exc.IntegrityError), transaction.manager:
        write_note_and_task()
        # A second note with the first one's id: the commit fails.
        outbox_app.Session().execute(outbox_app.notes.insert().values(
            id=sa.select(sa.func.max(outbox_app.notes.c.id))
            .scalar_subquery(), text='clash'))
        outbox_app.Session().flush()
    transaction.abort()
    assert counted(database) == (0, 0, 0)


def test_without_the_session_in_the_transaction_tasks_are_staged(database):
    queue = outbox_queue(database)
    with transaction.manager:
        taskqueue.add('/alone')
    assert counted(database) == (0, 1, 0)
    assert queue.reserve('w', 1, 0) != []


def test_a_session_on_another_database_is_not_used(database, tmp_path,
                                                   caplog):
    other = f'sqlite:///{tmp_path}/queue.db'
    queue = outbox_queue(other)
    with caplog.at_level(logging.WARNING), transaction.manager:
        write_note_and_task()
    assert 'not to the queue\'s database' in caplog.text
    assert queue.counts()['pending'] == 1
    assert counted(database) == (1, 0, 0)


@pytest.mark.parametrize('step, committed', [
    ('before-commit', False),
    ('after-tasks-written', False),
    ('before-database-commit', False),
    ('after-database-commit', True),
    ('in-finish', True),
    ('after-commit', True),
    ('never', True),
])
def test_kill_9_at_any_step_of_the_commit_leaves_both_or_neither(
        database, step, committed):
    result = subprocess.run(
        [sys.executable, '-m', 'outbox.crash', database, database, step,
         'killed'], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(TESTS)))
    assert result.returncode == (0 if step == 'never' else -9), result.stderr
    expected = 1 if committed else 0
    assert counted(database) == (expected, expected, 0)


def test_a_session_on_the_queues_database_is_recognised_by_its_url(database):
    """No ``session`` setting: any zope.sqlalchemy session of the
    transaction on the queue's database carries the tasks (a Pyramid app's
    per-request session, say)."""
    queue = wsgi_taskqueue.SqlQueue(url=database)
    wsgi_taskqueue.register_queue('default', queue)
    own_statements = []
    sa.event.listen(queue.store.engine, 'before_cursor_execute',
                    lambda *args: own_statements.append(args[2]))
    with transaction.manager:
        write_note_and_task()
    assert counted(database) == (1, 1, 0)
    assert own_statements == []


def test_outbox_off_stages_on_the_queues_own_connection(database):
    queue = wsgi_taskqueue.SqlQueue(url=database, outbox=False, timeout=1)
    wsgi_taskqueue.register_queue('default', queue)
    staged = []
    sa.event.listen(queue.store.engine, 'before_cursor_execute',
                    lambda *args: staged.append(args[2]))
    if database.startswith('sqlite'):
        # One writer at a time: the app's session holds the file until
        # its commit, which comes after the vote that stages.
        with pytest.raises(BackendUnavailable,
                           match='database is locked'), transaction.manager:
            write_note_and_task()
        assert counted(database) == (0, 0, 0)
        return
    with transaction.manager:
        write_note_and_task()
    assert counted(database) == (1, 1, 0)
    assert any('INSERT INTO taskqueue_tasks' in s for s in staged)
