"""The outbox: a task written in the app's own database transaction, with
the app's rows, through its zope.sqlalchemy session; and, beside it, the
same kills during a commit whose task is staged on the queue's own
connection."""
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
        connection.execute(outbox_app.processed.delete())
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


#: The same steps with the task staged on the queue's own connection:
#: (note committed, task staged, task promoted) right after the kill.
OWN_CONNECTION_STEPS = {
    'before-commit': (0, 0, 0),
    'after-tasks-written': (0, 0, 0),  # nothing written yet on this path
    'before-database-commit': (0, 1, 0),
    'after-database-commit': (1, 1, 0),
    'in-finish': (1, 1, 0),
    'after-commit': (1, 0, 1),
    'never': (1, 0, 1),
}


def own_queue_url(database, tmp_path):
    """Where the queue stages on its own connection: the app's
    PostgreSQL database; beside the app's SQLite file (one writer at a
    time: a stage on the app's own file waits for the app's commit, which
    waits for the stage)."""
    if database.startswith('sqlite'):
        return f'sqlite:///{tmp_path}/queue.db'
    return database


@pytest.mark.parametrize('step', OWN_CONNECTION_STEPS)
def test_kill_9_at_any_step_of_a_commit_on_the_queues_own_connection(
        database, tmp_path, consume, step):
    """G2: a task whose note committed runs, also when the process died
    before promoting it (the sweep promotes its batch after
    ``staged_grace``); G1: nothing runs of a transaction that died before
    the stage.  Between the stage and the database's commit lies the one
    window G1 names (docs/guarantees.rst): the batch is staged, the note
    never commits, and the sweep cannot tell this batch from the one of
    a process that died just after the commit, so it runs it, at least
    once, as a task that finds no note."""
    queue_url = own_queue_url(database, tmp_path)
    result = subprocess.run(
        [sys.executable, '-m', 'outbox.crash', database, queue_url, step,
         'killed', 'own'], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(TESTS)))
    assert result.returncode == (0 if step == 'never' else -9), result.stderr
    note, staged, promoted = OWN_CONNECTION_STEPS[step]
    queue = wsgi_taskqueue.SqlQueue(url=queue_url)
    wsgi_taskqueue.register_queue('default', queue)
    counts = queue.counts()
    assert (counted(database)[0], counts['staged'], counts['pending']) == (
        note, staged, promoted)

    consume(outbox_app.process, staged_grace=0.5, lease_timeout=1.5)
    runs = 1 if staged or promoted else 0

    def settled():
        counts = queue.counts()
        return not (counts['staged'] or counts['pending']
                    or counts['processing']) and len(
                        processed(database)) >= runs
    deadline = time.monotonic() + 30
    while not settled():
        assert time.monotonic() < deadline, (queue.counts(),
                                             processed(database))
        time.sleep(0.05)
    assert processed(database) == [('killed', bool(note))] * runs


def processed(url):
    """(text, note_found) of each run of the task, in the app's
    database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.select(
                outbox_app.processed.c.text,
                outbox_app.processed.c.note_found).order_by(
                    outbox_app.processed.c.id))]
    finally:
        engine.dispose()


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


def test_a_name_is_claimed_with_the_row_and_held_against_later_ones(
        database):
    outbox_queue(database)
    with transaction.manager:
        outbox_app.write_note('first')
        holder = taskqueue.add('/process', name='nightly')
    with transaction.manager:
        outbox_app.write_note('second')
        dropped = taskqueue.add('/process', name='nightly')
    assert counted(database) == (2, 1, 0)
    assert taskqueue.status(holder)['name'] == 'nightly'
    assert taskqueue.status(dropped) is None


def test_an_aborted_transaction_does_not_hold_its_name(database):
    outbox_queue(database)
    with transaction.manager as txn:
        outbox_app.write_note('first')
        taskqueue.add('/process', name='nightly')
        txn.abort()
    with transaction.manager:
        outbox_app.write_note('second')
        taskqueue.add('/process', name='nightly')
    assert counted(database) == (1, 1, 0)


def test_a_job_is_created_counted_and_closed_with_the_rows(database):
    queue = outbox_queue(database)
    with transaction.manager:
        outbox_app.write_note('job')
        job = taskqueue.job(on_complete='/report', label='outbox')
        task_id = taskqueue.add('/process', job=job)
        job.close()
    assert counted(database) == (1, 1, 0)  # the markers are no rows
    status = taskqueue.job_status(job)
    assert (status['state'], status['total'], status['label']) == (
        'closed', 1, 'outbox')
    [message] = queue.reserve('w', 10, 0)
    from wsgi_taskqueue.status import Report
    queue.ack('w', [(message, Report(task_id, 1, '200 OK', 0.01))])
    assert taskqueue.job_status(job)['state'] == 'complete'
    [report] = queue.reserve('w', 10, 0)
    assert queue.codec.decode(report).url == '/report'
