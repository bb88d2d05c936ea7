"""The tables of the SQL queue, their version, and ``wsgi-taskqueue init``.

The tables are SQLAlchemy ``Table`` objects, so one definition serves
PostgreSQL, MariaDB/MySQL and SQLite.  ``SCHEMA_VERSION`` is written in
the version table by ``init``, which upgrades an older database through
the numbered steps of ``migrations.py``; a queue that finds another
version (or no tables) refuses to run and names the command that fixes
it.  A change of the tables below is a new step there.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ...errors import SchemaError
from ...validation import DEFAULT_PRIORITY
from . import migrations

__all__ = ['Tables', 'SCHEMA_VERSION', 'init', 'check']

#: The version of the tables below: that of the last step in
#: ``migrations.py``, which upgrade an older database to it.
SCHEMA_VERSION = migrations.LATEST

#: Epoch seconds with microseconds (MySQL's FLOAT is single precision).
Seconds = sa.Double
#: A message or a dead-letter record: MySQL's BLOB stops at 64 KiB.
Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), 'mysql', 'mariadb')
#: SQLite assigns increasing ids only to an INTEGER PRIMARY KEY.
Serial = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
#: Queue and consumer names (a slot is a consumer name and '#n').
Name = sa.String(191)
#: MySQL: any name, compared as written (not case-folded), whatever the
#: database's default character set.
OPTIONS = {'mysql_charset': 'utf8mb4', 'mysql_collate': 'utf8mb4_bin'}


class Tables:
    """The tables of one ``schema`` and ``table_prefix``."""

    def __init__(self, schema: str | None = None,
                 prefix: str = 'taskqueue_'):
        self.prefix = prefix
        self.metadata = metadata = sa.MetaData(schema=schema)
        self.tasks = sa.Table(
            prefix + 'tasks', metadata,
            sa.Column('id', Serial, primary_key=True, autoincrement=True),
            sa.Column('queue', Name, nullable=False),
            # staged | ready (pending, or delayed when `delayed`) |
            # processing
            sa.Column('state', sa.String(10), nullable=False),
            # Ready rows are taken in (priority descending, due, id) order:
            # a promoted batch is due when it was promoted, a retry when
            # it falls due.
            sa.Column('due', Seconds, nullable=False, default=0),
            # 0 (lowest) to 9; ready rows of a higher priority are taken
            # first (backends/priority.py).
            sa.Column('priority', sa.SmallInteger, nullable=False,
                      default=DEFAULT_PRIORITY,
                      server_default=str(DEFAULT_PRIORITY)),
            sa.Column('delayed', sa.Boolean, nullable=False, default=False),
            sa.Column('batch', sa.String(64)),
            sa.Column('staged_at', Seconds),
            sa.Column('slot', Name),
            sa.Column('consumer', Name),
            sa.Column('deliveries', sa.Integer, nullable=False, default=0),
            sa.Column('task_id', sa.String(64)),
            sa.Column('attempt', sa.Integer),
            sa.Column('message', Blob, nullable=False),
            # The task waits for others (after=): parked at promotion
            # (dependencies.py), in state waiting.
            sa.Column('waits', sa.Boolean, nullable=False, default=False),
            # Settling this task sets something off: tasks wait for it,
            # which it releases, or its job counts it (an acknowledgement
            # looks for them only then).
            sa.Column('waited_on', sa.Boolean, nullable=False, default=False),
            # The job the message names (a job's task or marker: jobs.py),
            # for the promotion to find them.
            sa.Column('job', sa.String(64)),
            sa.Index(prefix + 'tasks_ready', 'queue', 'state',
                     sa.desc('priority'), 'due', 'id'),
            sa.Index(prefix + 'tasks_batch', 'batch', 'queue', 'state'),
            sa.Index(prefix + 'tasks_slot', 'queue', 'consumer', 'slot'),
            **OPTIONS,
        )
        self.dead = sa.Table(
            prefix + 'dead', metadata,
            sa.Column('id', Serial, primary_key=True, autoincrement=True),
            sa.Column('queue', Name, nullable=False),
            sa.Column('record', Blob, nullable=False),
            sa.Column('dead_at', Seconds, nullable=False),
            sa.Index(prefix + 'dead_queue', 'queue', 'id'),
            sa.Index(prefix + 'dead_at', 'queue', 'dead_at'),
            **OPTIONS,
        )
        self.status = sa.Table(
            prefix + 'status', metadata,
            sa.Column('seq', Serial, primary_key=True, autoincrement=True),
            sa.Column('queue', Name, nullable=False),
            sa.Column('task_id', sa.String(64), nullable=False),
            sa.Column('state', sa.String(10), nullable=False),
            sa.Column('updated', Seconds, nullable=False),
            sa.Column('consumer', Name),
            sa.Column('attempt', sa.Integer),
            sa.Column('next', Seconds),
            sa.Column('status', sa.String(200)),
            # The last attempt that finished (done, retried or buried): a
            # delivery of it or an earlier one is a replay.
            sa.Column('finished', sa.Integer, nullable=False, default=0),
            # The task's header as the status log shows it (JSON).
            sa.Column('header', sa.Text, nullable=False),
            sa.UniqueConstraint('queue', 'task_id',
                                name=prefix + 'status_task'),
            sa.Index(prefix + 'status_updated', 'queue', 'updated'),
            **OPTIONS,
        )
        self.attempts = sa.Table(
            prefix + 'attempts', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('task_id', sa.String(64), primary_key=True),
            sa.Column('attempt', sa.Integer, primary_key=True),
            sa.Column('status', sa.String(200), nullable=False),
            sa.Column('at', Seconds, nullable=False),
            sa.Column('duration_ms', Seconds, nullable=False),
            **OPTIONS,
        )
        # Results of tasks that keep theirs (results.py): the stored
        # text as UTF-8, hidden after `expires`.
        self.results = sa.Table(
            prefix + 'results', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('task_id', sa.String(64), primary_key=True),
            sa.Column('expires', Seconds, nullable=False),
            sa.Column('result', Blob, nullable=False),
            sa.Index(prefix + 'results_expires', 'queue', 'expires'),
            **OPTIONS,
        )
        # What each parked task still waits for (dependencies.py).
        self.dependencies = sa.Table(
            prefix + 'dependencies', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('task_id', sa.String(64), primary_key=True),
            sa.Column('waiting', sa.String(64), primary_key=True),
            sa.Index(prefix + 'dependencies_waiting', 'queue', 'waiting'),
            **OPTIONS,
        )
        # Jobs of many tasks (jobs.py): each one's record, and its tasks
        # counted in total and not settled yet (deleting a task's row is
        # what counts it done or failed, once).
        self.jobs = sa.Table(
            prefix + 'jobs', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('job_id', sa.String(64), primary_key=True),
            sa.Column('label', sa.String(100)),
            # open | closed | complete
            sa.Column('state', sa.String(10), nullable=False),
            sa.Column('total', sa.Integer, nullable=False, default=0),
            sa.Column('done', sa.Integer, nullable=False, default=0),
            sa.Column('failed', sa.Integer, nullable=False, default=0),
            sa.Column('created', Seconds, nullable=False),
            sa.Column('closed', Seconds),
            sa.Column('completed', Seconds),
            sa.Column('changed', Seconds, nullable=False),
            # Its on_complete task: id, and the message until it is queued.
            sa.Column('on_complete', sa.String(64)),
            sa.Column('message', Blob),
            sa.Index(prefix + 'jobs_created', 'queue', 'created'),
            sa.Index(prefix + 'jobs_changed', 'queue', 'changed'),
            **OPTIONS,
        )
        self.job_tasks = sa.Table(
            prefix + 'job_tasks', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('task_id', sa.String(64), primary_key=True),
            sa.Column('job_id', sa.String(64), nullable=False),
            **OPTIONS,
        )
        self.minutes = sa.Table(
            prefix + 'minutes', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('minute', sa.Integer, primary_key=True,
                      autoincrement=False),
            sa.Column('done', sa.Integer, nullable=False, default=0),
            sa.Column('retried', sa.Integer, nullable=False, default=0),
            sa.Column('dead', sa.Integer, nullable=False, default=0),
            **OPTIONS,
        )
        self.leases = sa.Table(
            prefix + 'leases', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('consumer', Name, primary_key=True),
            sa.Column('token', sa.String(64), nullable=False),
            sa.Column('expires', Seconds, nullable=False),
            sa.Column('lease', Seconds, nullable=False),
            sa.Column('info', sa.Text, nullable=False),
            **OPTIONS,
        )
        # Task names (backends/names.py): who holds each, until when, and
        # the staged batch that claimed it (released if it is discarded).
        self.names = sa.Table(
            prefix + 'names', metadata,
            sa.Column('queue', Name, primary_key=True),
            sa.Column('name', sa.String(200), primary_key=True),
            sa.Column('task_id', sa.String(64), nullable=False),
            sa.Column('expires', Seconds, nullable=False),
            sa.Column('batch', sa.String(64)),
            sa.Index(prefix + 'names_expires', 'queue', 'expires'),
            **OPTIONS,
        )
        self.version = sa.Table(
            prefix + 'version', metadata,
            sa.Column('version', sa.Integer, nullable=False),
            **OPTIONS,
        )

    def of_queue(self):
        """The tables that hold rows of one queue (all but the version)."""
        return [self.tasks, self.dead, self.status, self.attempts,
                self.results, self.dependencies, self.jobs, self.job_tasks,
                self.minutes, self.leases, self.names]


def init(connection, tables: Tables) -> list[str]:
    """Create the tables in a database that has none, or upgrade them
    step by step from the version they have; return what was done, one
    line each (nothing when the schema was up to date)."""
    inspector = sa.inspect(connection)
    schema = tables.metadata.schema
    done = []
    if schema is not None and schema not in inspector.get_schema_names():
        connection.execute(sa.schema.CreateSchema(schema))
        done.append(f'created schema {schema}')
    existing = set(inspector.get_table_names(schema=schema))
    found = None
    if tables.version.name in existing:
        found = connection.execute(_read_version(connection, tables)).scalar()
    if found is None:
        for table in tables.metadata.sorted_tables:
            if table.name not in existing:
                table.create(connection)
                done.append(f'created table {table.fullname}')
        connection.execute(tables.version.insert().values(
            version=SCHEMA_VERSION))
        done.append(f'recorded schema version {SCHEMA_VERSION}')
    elif found > SCHEMA_VERSION:
        raise SchemaError(f'the task queue tables are of version {found}, '
                          f'newer than this wsgi-taskqueue knows '
                          f'({SCHEMA_VERSION}): upgrade wsgi-taskqueue')
    else:
        done += migrations.upgrade(connection, tables, found)
    return done


def _read_version(connection, tables):
    """The version's SELECT; locking its row where the database can, so
    that two ``init`` at once upgrade one after the other."""
    select = sa.select(tables.version.c.version)
    if connection.dialect.name == 'sqlite':  # BEGIN IMMEDIATE locked it
        return select
    return select.with_for_update()


def check(connection, tables: Tables, where: str) -> None:
    """Raise SchemaError, naming the command to run, unless the tables
    exist in the version this code expects."""
    advice = ('run `wsgi-taskqueue init CONFIG` (CONFIG: the ini file that '
              'defines the queue) to create or upgrade them')
    try:
        found = connection.execute(
            sa.select(tables.version.c.version)).scalar()
    except sa.exc.ProgrammingError:
        found = None
    except sa.exc.OperationalError as exc:
        if 'no such table' not in str(exc):
            raise
        found = None
    if found is None:
        raise SchemaError(f'the task queue tables ({tables.prefix}*) are '
                          f'missing in {where}: {advice}')
    if found != SCHEMA_VERSION:
        raise SchemaError(f'the task queue tables in {where} are of version '
                          f'{found}, this wsgi-taskqueue needs '
                          f'{SCHEMA_VERSION}: {advice}')
