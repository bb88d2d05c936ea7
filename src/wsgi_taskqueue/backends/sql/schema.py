"""The tables of the SQL queue, their version, and ``wsgi-taskqueue init``.

The tables are SQLAlchemy ``Table`` objects, so one definition serves
PostgreSQL, MariaDB/MySQL and SQLite.  ``SCHEMA_VERSION`` is written in
the version table by ``init``; a queue that finds another version (or no
tables) refuses to run and names the command that fixes it.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ...errors import SchemaError

__all__ = ['Tables', 'SCHEMA_VERSION', 'init', 'check']

#: Bumped with every change of the tables below; ``init`` upgrades from
#: every earlier version it knows (none yet: this is the first).
SCHEMA_VERSION = 1

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
            # Ready rows are taken in (due, id) order: a promoted batch is
            # due when it was promoted, a retry when it falls due.
            sa.Column('due', Seconds, nullable=False, default=0),
            sa.Column('delayed', sa.Boolean, nullable=False, default=False),
            sa.Column('batch', sa.String(64)),
            sa.Column('staged_at', Seconds),
            sa.Column('slot', Name),
            sa.Column('consumer', Name),
            sa.Column('deliveries', sa.Integer, nullable=False, default=0),
            sa.Column('task_id', sa.String(64)),
            sa.Column('attempt', sa.Integer),
            sa.Column('message', Blob, nullable=False),
            sa.Index(prefix + 'tasks_ready', 'queue', 'state', 'due', 'id'),
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
        self.version = sa.Table(
            prefix + 'version', metadata,
            sa.Column('version', sa.Integer, nullable=False),
            **OPTIONS,
        )

    def of_queue(self):
        """The tables that hold rows of one queue (all but the version)."""
        return [self.tasks, self.dead, self.status, self.attempts,
                self.minutes, self.leases]


def init(connection, tables: Tables) -> list[str]:
    """Create what is missing and record the version; return what was
    done, one line each (nothing when the schema was up to date)."""
    inspector = sa.inspect(connection)
    schema = tables.metadata.schema
    done = []
    if schema is not None and schema not in inspector.get_schema_names():
        connection.execute(sa.schema.CreateSchema(schema))
        done.append(f'created schema {schema}')
    existing = set(inspector.get_table_names(schema=schema))
    for table in tables.metadata.sorted_tables:
        if table.name not in existing:
            table.create(connection)
            done.append(f'created table {table.fullname}')
    found = connection.execute(sa.select(tables.version.c.version)).scalar()
    if found is None:
        connection.execute(tables.version.insert().values(
            version=SCHEMA_VERSION))
        done.append(f'recorded schema version {SCHEMA_VERSION}')
    elif found > SCHEMA_VERSION:
        raise SchemaError(f'the task queue tables are of version {found}, '
                          f'newer than this wsgi-taskqueue knows '
                          f'({SCHEMA_VERSION}): upgrade wsgi-taskqueue')
    elif found < SCHEMA_VERSION:
        raise SchemaError(f'no upgrade from version {found} of the task '
                          f'queue tables to {SCHEMA_VERSION} is known')
    return done


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
