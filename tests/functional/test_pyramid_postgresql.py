"""The Pyramid example on PostgreSQL: its notes and its tasks in one
database, a note and its task written in one database transaction (the
outbox), or the task staged on the queue's own connection (``outbox =
false``); consumers woken by LISTEN/NOTIFY."""
import configparser

import pytest
import requests
import sqlalchemy as sa

from conftest import empty_sql_queue

ALICE = ('alice', 'wonderland')


#: Triggers that record the transaction of every note and task row
#: inserted, and the state the task row was inserted in.
INSERTS_LOG = """
CREATE TABLE inserts (kind text, id text, state text, txid bigint);
CREATE FUNCTION log_note() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO inserts VALUES ('note', NEW.id::text, NULL,
                                      txid_current()); RETURN NEW; END $$;
CREATE FUNCTION log_task() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO inserts VALUES ('task', NEW.task_id, NEW.state,
                                      txid_current()); RETURN NEW; END $$;
CREATE TRIGGER log_note AFTER INSERT ON notes
    FOR EACH ROW EXECUTE FUNCTION log_note();
CREATE TRIGGER log_task AFTER INSERT ON taskqueue_tasks
    FOR EACH ROW EXECUTE FUNCTION log_task();
"""


def drop_inserts_log(connection) -> None:
    connection.execute(sa.text(
        'DROP TRIGGER IF EXISTS log_task ON taskqueue_tasks;'
        'DROP TABLE IF EXISTS notes, task_runs, inserts;'
        'DROP FUNCTION IF EXISTS log_note, log_task'))


@pytest.fixture
def database(postgresql_url):
    """The suite's PostgreSQL without notes, task runs or queue rows."""
    empty_sql_queue(postgresql_url).close()
    engine = sa.create_engine(postgresql_url)
    with engine.begin() as connection:
        drop_inserts_log(connection)
    yield engine
    with engine.begin() as connection:
        drop_inserts_log(connection)
    engine.dispose()


def inserts(engine) -> dict:
    """(kind, id) -> (state, transaction id) of each row inserted."""
    with engine.connect() as connection:
        return {(row.kind, row.id): (row.state, row.txid)
                for row in connection.execute(sa.text(
                    'SELECT * FROM inserts'))}


def post(url, path, expected_status=200, **kwargs):
    response = requests.post(url + path, timeout=10, **kwargs)
    assert response.status_code == expected_status, response.text
    return response.json()


def task_runs(engine) -> dict:
    with engine.connect() as connection:
        runs = {}
        for row in connection.execute(sa.text('SELECT * FROM task_runs')):
            runs.setdefault(row.task_id, []).append(row)
        return runs


@pytest.mark.parametrize('outbox', ['true', 'false'])
def test_notes_and_their_tasks_in_one_postgresql_database(
        deployment, database, outbox):
    ini = deployment.ini(
        'pyramid_app/postgresql.ini',
        database_url=database.url.render_as_string(hide_password=False))
    settings = configparser.RawConfigParser()
    settings.optionxform = str
    settings.read(ini)
    settings['app:main']['taskqueue.queue.default.outbox'] = outbox
    with open(ini, 'w') as file:
        settings.write(file)
    url = deployment.serve(ini)
    with database.begin() as connection:  # the app created its tables
        connection.execute(sa.text(INSERTS_LOG))
    written = [post(url, '/notes', auth=ALICE, data={'text': 'one two',
                                                     'count': 20})
               for _ in range(3)]
    aborted = post(url, '/notes/fail', 500,
                   data={'text': 'aborted', 'count': 3, 'how': 'raise'})
    task_ids = [id for batch in written for id in batch['tasks']]
    deployment.wait_until(lambda: set(task_ids) <= set(task_runs(database)),
                          f'runs of {len(task_ids)} tasks')
    runs = task_runs(database)
    assert sorted(runs) == sorted(task_ids)
    assert all(len(rows) == 1 for rows in runs.values())
    assert all(row.note_found and row.attempt == 1
               and row.remote_user == 'alice'
               for [row] in runs.values())
    assert not set(aborted['tasks']) & set(runs)
    # How each note's task was written: in the note's own transaction,
    # pending at once (the outbox), or staged in a transaction of the
    # queue's own.
    logged = inserts(database)
    for batch in written:
        [note_transaction] = {logged['note', str(id)][1]
                              for id in batch['notes']}
        tasks = {logged['task', id] for id in batch['tasks']}
        if outbox == 'true':
            assert tasks == {('ready', note_transaction)}
        else:
            [(state, transaction)] = tasks
            assert state == 'staged' and transaction != note_transaction
