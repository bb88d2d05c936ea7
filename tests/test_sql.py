"""What the SQL queue does beyond the backend contract: settings, schema,
wakeups, bounds."""
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import config, taskqueue
from wsgi_taskqueue.backends.sql.schema import SCHEMA_VERSION
from wsgi_taskqueue.errors import (
    BackendUnavailable,
    ConfigurationError,
    SchemaError,
)
from wsgi_taskqueue.testing import free_port


def write_ini(tmp_path, text):
    path = tmp_path / 'app.ini'
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('kind', ['sql', 'sqlite'])
def test_a_sql_queue_is_configured_by_its_url(tmp_path, kind):
    path = write_ini(tmp_path, f'''
[taskqueue]
type = {kind}
url = sqlite:///%(here)s/tasks.db
table_prefix = app_tq_
poll_interval = 0.25
''')
    queue = config.load(path).queues['default']
    assert isinstance(queue, wsgi_taskqueue.SqlQueue)
    assert queue.where == f'sqlite:///{tmp_path}/tasks.db'
    assert queue.store.tables.tasks.name == 'app_tq_tasks'
    assert queue.store.wakeups.poll_interval == 0.25
    queue.close()


@pytest.mark.parametrize('lines, key, message', [
    ('', 'url', 'needs a SQLAlchemy URL'),
    ('url = nonsense', None, 'not a SQLAlchemy URL'),
    ('url = sqlite://', None, 'needs a file'),
    ('url = sqlite:///x.db\ntable_prefix = my-queue', 'table_prefix',
     'letters, digits'),
    ('url = sqlite:///x.db\nhost = db', 'host', 'unknown key'),
    ('url = sqlite:///x.db\nschema = tq', None, 'has no schemas'),
])
def test_bad_sql_settings_are_named(tmp_path, lines, key, message):
    path = write_ini(tmp_path, f'[taskqueue]\ntype = sql\n{lines}\n')
    with pytest.raises(ConfigurationError) as raised:
        config.load(path)
    assert message in str(raised.value)
    assert raised.value.section == 'taskqueue'
    assert raised.value.key == key


def test_a_missing_driver_names_the_extra_to_install():
    with pytest.raises(ValueError, match=r'wsgi-taskqueue\[postgresql\]'):
        wsgi_taskqueue.SqlQueue(url='postgresql+asyncpg://db/tasks')


def test_a_sqlite_file_gets_its_tables_on_first_use(tmp_path):
    queue = wsgi_taskqueue.SqlQueue(url=f'sqlite:///{tmp_path}/new.db')
    wsgi_taskqueue.register_queue('default', queue)
    taskqueue.add('/x')
    transaction.commit()
    assert queue.counts()['pending'] == 1


def run_cli(*args):
    return subprocess.run(
        [sys.executable, '-m', 'wsgi_taskqueue', *args],
        capture_output=True, text=True, timeout=60)


def test_a_commit_against_missing_tables_names_the_command_that_makes_them(
        postgresql_url, tmp_path):
    prefix = f'fresh{free_port()}_'
    path = write_ini(tmp_path, f'[taskqueue]\ntype = postgresql\n'
                               f'url = {postgresql_url}\n'
                               f'table_prefix = {prefix}\n')
    queue = wsgi_taskqueue.SqlQueue(url=postgresql_url, table_prefix=prefix)
    wsgi_taskqueue.register_queue('default', queue)
    taskqueue.add('/x')
    with pytest.raises(SchemaError, match=r'run `wsgi-taskqueue init CONFIG`'):
        transaction.commit()
    transaction.abort()

    first = run_cli('init', path)
    assert first.returncode == 0, first.stderr
    assert f'created table {prefix}tasks' in first.stdout
    assert f'recorded schema version {SCHEMA_VERSION}' in first.stdout
    second = run_cli('init', path)
    assert (second.returncode, second.stdout.split(': ')[-1]) == (
        0, 'up to date\n')

    queue.close()
    queue = wsgi_taskqueue.SqlQueue(url=postgresql_url, table_prefix=prefix)
    wsgi_taskqueue.register_queue('default', queue)
    taskqueue.add('/x')
    transaction.commit()
    assert queue.counts()['pending'] == 1


def test_tables_of_another_version_are_refused(postgresql_url):
    prefix = f'old{free_port()}_'
    queue = wsgi_taskqueue.SqlQueue(url=postgresql_url, table_prefix=prefix)
    queue.store.init()
    with queue.store.engine.begin() as connection:
        connection.execute(queue.store.tables.version.update().values(
            version=SCHEMA_VERSION + 1))
    queue.close()
    queue = wsgi_taskqueue.SqlQueue(url=postgresql_url, table_prefix=prefix)
    with pytest.raises(SchemaError, match=rf'of version {SCHEMA_VERSION + 1}'
                                          rf', this wsgi-taskqueue needs '
                                          rf'{SCHEMA_VERSION}: run '
                                          rf'`wsgi-taskqueue init'):
        queue.stage('b1', [b'1'])
    with pytest.raises(SchemaError, match='upgrade wsgi-taskqueue'):
        queue.store.init()
    queue.close()


def test_init_without_a_sql_queue_says_so(tmp_path):
    path = write_ini(tmp_path, '[taskqueue]\ntype = local\n')
    result = run_cli('init', path)
    assert result.returncode == 2
    assert 'no SQL queue' in result.stderr


def test_a_database_that_is_down_fails_the_vote_within_the_timeout():
    queue = wsgi_taskqueue.SqlQueue(
        url=f'postgresql+psycopg://postgres@127.0.0.1:{free_port()}/tasks',
        timeout=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as raised:
        queue.stage('b1', [b'1'])
    assert raised.value.unsent
    assert time.monotonic() - started < 5
    queue.close()


def test_a_promotion_in_another_process_wakes_a_waiting_consumer_at_once(
        postgresql_queue, postgresql_url):
    # A poll interval far beyond the test's patience: only the
    # notification can end the wait in time.
    waiting = wsgi_taskqueue.SqlQueue(url=postgresql_url, poll_interval=60)
    result = []
    consumer = threading.Thread(
        target=lambda: result.append(waiting.reserve('c', 1, 30)))
    consumer.start()
    time.sleep(0.5)  # let it start waiting: a promotion before is no test
    started = time.monotonic()
    postgresql_queue.stage('b1', [b'hello'])
    postgresql_queue.promote('b1')
    consumer.join(30)
    assert result == [[b'hello']]
    assert time.monotonic() - started < 10
    waiting.close()


def test_a_waiting_consumer_polls_at_the_poll_interval_and_no_more(
        sqlite_url):
    queue = wsgi_taskqueue.SqlQueue(url=sqlite_url, poll_interval=0.5)
    queue.store.init()
    statements = []
    sa.event.listen(queue.store.engine, 'before_cursor_execute',
                    lambda *args: statements.append(args[2]))
    assert queue.reserve('c', 1, 2.0) == []
    # Each look is one reserve (a SELECT) and one look for due retries.
    looks = sum('ORDER BY' in statement for statement in statements)
    assert 3 <= looks <= 6
    queue.close()


def test_the_sweep_trims_the_status_log_to_status_max(sqlite_queue):
    from test_backends import task_message
    sqlite_queue.status_max = 3
    tasks = [task_message(sqlite_queue) for _ in range(5)]
    for number, (_, message) in enumerate(tasks):
        sqlite_queue.stage(f'b{number}', [message])
        sqlite_queue.promote(f'b{number}')
    sqlite_queue.sweep(grace=60)
    assert [s['id'] for s in sqlite_queue.tasks()] == [
        task.id for task, _ in reversed(tasks[2:])]


def test_expired_status_records_are_hidden_then_deleted(sqlite_queue):
    from test_backends import task_message
    task, message = task_message(sqlite_queue)
    sqlite_queue.stage('b1', [message])
    sqlite_queue.promote('b1')
    sqlite_queue.status_ttl = 0.01
    time.sleep(0.05)  # let the record expire: the time is the point
    assert sqlite_queue.task_status(task.id) is None
    sqlite_queue.sweep(grace=60)
    status = sqlite_queue.store.tables.status
    with sqlite_queue.store.transaction() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(
            status)).scalar() == 0


def test_init_creates_the_schema_it_is_told_to_use(postgresql_url):
    schema = f'tq{free_port()}'
    queue = wsgi_taskqueue.SqlQueue(url=postgresql_url, schema=schema)
    assert queue.store.init()[0] == f'created schema {schema}'
    assert queue.store.init() == []
    wsgi_taskqueue.register_queue('default', queue)
    taskqueue.add('/x')
    transaction.commit()
    with queue.store.engine.connect() as connection:
        assert connection.execute(sa.text(
            f'SELECT count(*) FROM {schema}.taskqueue_tasks')).scalar() == 1


def test_a_promoted_batch_sends_one_notification(postgresql_queue,
                                                 postgresql_url):
    import psycopg
    conninfo = sa.engine.make_url(postgresql_url).set(
        drivername='postgresql').render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute('LISTEN taskqueue_wakeup')
        postgresql_queue.stage('b1', [str(n).encode() for n in range(100)])
        postgresql_queue.promote('b1')
        postgresql_queue.promote('b1')  # gone: nothing more to say
        postgresql_queue.stage('b2', [b'x'])
        postgresql_queue.discard('b2')  # never promoted: no notification
        payloads = [notice.payload for notice in
                    listener.notifies(timeout=1.0)]
    assert payloads == ['default']


#: Whether another connection runs a statement that needs the lease row
#: locked (so it waits for the lock, or is about to): a lock wait on
#: PostgreSQL; on MariaDB, whose lists of lock waits leave out some
#: (a lock taken while the optimizer reads a row by its key), the lease
#: table's locking statements under way.
LOCK_WAITS = {
    'postgresql': "SELECT count(*) FROM pg_stat_activity WHERE "
                  "wait_event_type = 'Lock' AND datname = current_database()",
    'mariadb': "SELECT count(*) FROM information_schema.processlist "
               "WHERE id <> connection_id() AND command = 'Query' "
               "AND info LIKE '%taskqueue_leases%' "
               "AND (info LIKE '%FOR UPDATE' OR info LIKE 'DELETE%')",
}


@pytest.mark.parametrize('kind', ['postgresql', 'mariadb'])
def test_the_sweep_leaves_alone_a_lease_renewed_while_it_ran(request, kind):
    """G5: the sweep read the lease expired; the heartbeat renewed it
    before the sweep took the tasks back.  The sweep waits for the
    renewal, sees it, and leaves the consumer's tasks alone."""
    from dummies import wait_until
    from test_backends import promoted
    queue = request.getfixturevalue(f'{kind}_queue')
    leases = queue.store.tables.leases
    mine = (leases.c.queue == queue.name, leases.c.consumer == 'slow')
    promoted(queue, b'1')
    queue.acquire('slow', 'token', 0.2)
    assert queue.reserve('slow#1', 1, 0) == [b'1']
    wait_until(lambda: not queue.consumers()[0]['alive'])
    report = {}
    sweeper = threading.Thread(
        target=lambda: report.update(queue.sweep(grace=60)))
    with queue.store.engine.connect() as heartbeat, \
            queue.store.engine.connect() as observer:
        with heartbeat.begin():  # the renewal, as acquire makes it
            heartbeat.execute(sa.select(leases).where(*mine)
                              .with_for_update())
            heartbeat.execute(leases.update().where(*mine).values(
                expires=queue.store.now(heartbeat) + 30))
            sweeper.start()

            def sweep_waits():
                with observer.begin():  # each look a snapshot of its own
                    return observer.execute(sa.text(LOCK_WAITS[kind])).scalar()
            wait_until(lambda: not sweeper.is_alive() or sweep_waits())
        sweeper.join(10)
    assert report['consumers'] == [] and report['requeued'] == 0
    assert queue.counts()['processing'] == {'slow': 1}
    [consumer] = queue.consumers()
    assert consumer['alive']
