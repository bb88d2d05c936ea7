"""What differs between PostgreSQL, MariaDB/MySQL and SQLite, and only that.

The queue's logic asks its dialect for the database's clock, for the
reserve (the one statement that must let many consumers take different
rows at once), for the per-minute counter (an upsert) and for engine
set-up; everything else is plain SQLAlchemy Core that runs everywhere.
"""
from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from .mysql_tls import share_preferred_tls_context

__all__ = ['dialect_for', 'Dialect', 'OnConflict']


class Dialect:
    """A database's ways; chosen by the engine's dialect name."""

    #: True when the database can wake waiting consumers (LISTEN/NOTIFY).
    listens = False
    #: True when the database takes one writer at a time: a process then
    #: lets one of its threads at a time ask (SQLite's wait for a busy
    #: file favours no one, so threads could starve each other).
    one_writer = False

    def __init__(self, tables):
        self.tables = tables
        self._statements: dict = {}
        # Built once: constructing an expression costs more than running
        # its cached compiled form.
        clock = self.clock()
        self.now = lambda: clock

    def statement(self, key, build):
        """The statement ``build()`` makes, built once per ``key`` (its
        values are bound parameters): SQLAlchemy caches the compiled form,
        but building the expression each time would cost more than
        running it."""
        try:
            return self._statements[key]
        except KeyError:
            statement = self._statements[key] = build()
            return statement

    def configure(self, engine) -> None:
        """Set up a new engine (connection events)."""

    def clock(self):
        """The database's clock, epoch seconds: one clock for the leases,
        staging times and due times of every host (``now()``)."""
        raise NotImplementedError

    def take(self, connection, queue: str, slot: str, consumer: str,
             limit: int, records: bool = True) -> tuple[list, set | None]:
        """Move up to ``limit`` ready rows of ``queue`` that are due into
        ``slot``, skipping rows other consumers are taking; return them
        (id, message, task_id, attempt) in queue order, and the task ids
        whose status records now say running (with ``records``), or None
        when the caller writes them."""
        tasks = self.tables.tasks
        rows = connection.execute(self.statement(
            ('due', limit), lambda: self._due(sa.select(
                tasks.c.id, tasks.c.message, tasks.c.task_id,
                tasks.c.attempt), limit)), {'b_queue': queue}).all()
        if rows:
            connection.execute(self.statement('take', lambda: tasks.update(
            ).where(tasks.c.id.in_(sa.bindparam('b_ids', expanding=True))
                    ).values(state='processing', slot=sa.bindparam('b_slot'),
                             consumer=sa.bindparam('b_consumer'),
                             delayed=False)),
                {'b_ids': [row.id for row in rows], 'b_slot': slot,
                 'b_consumer': consumer})
        return rows, None

    def _due(self, select, limit: int):
        """``select`` of the first ``limit`` ready rows of the queue
        ``b_queue`` that are due."""
        tasks = self.tables.tasks
        return select.where(
            tasks.c.queue == sa.bindparam('b_queue'),
            tasks.c.state == 'ready', tasks.c.due <= self.now()).order_by(
            tasks.c.priority.desc(), tasks.c.due, tasks.c.id).limit(limit)

    def count(self, connection, queue: str, minute: int,
              outcomes: dict) -> None:
        """Add ``outcomes`` ({done|retried|dead: n}) to the counts of
        ``minute``, creating its row."""
        minutes = self.tables.minutes

        def build():
            insert = self._insert(minutes).values(
                queue=sa.bindparam('b_queue'),
                minute=sa.bindparam('b_minute'),
                **{name: sa.bindparam(f'b_{name}') for name in outcomes})
            new = self._proposed(insert)
            return self._on_conflict(
                insert, [minutes.c.queue, minutes.c.minute],
                {name: minutes.c[name] + new[name] for name in outcomes})
        connection.execute(self.statement(('count', *outcomes), build), {
            'b_queue': queue, 'b_minute': minute,
            **{f'b_{name}': number for name, number in outcomes.items()}})

    def upsert(self, table, keys, updates):
        """An INSERT into ``table`` (bound by column name, executemany
        allowed) that, where a row with the same unique ``keys`` exists,
        sets its ``updates`` columns instead."""
        insert = self._insert(table)
        new = self._proposed(insert)
        return self._on_conflict(insert, [table.c[key] for key in keys],
                                 {name: new[name] for name in updates})

    def notify(self, connection, queue: str) -> None:
        """Wake the consumers of other processes (when ``listens``)."""

    def finish_one(self, connection, row_id: int, holder: dict, report,
                   recorded: bool) -> tuple[bool, bool] | None:
        """Acknowledge the row ``row_id`` if it is still held as
        ``holder`` says (``b_queue``, ``b_consumer``, ``b_slot``) in one
        statement, with its minute count and (``recorded``) its status
        record and attempt history from ``report``; return whether it was
        held and whether tasks wait for it.  None: the database cannot,
        the caller does it."""
        return None

    def write_one(self, connection, insert, row: dict, record: dict,
                  notify: bool) -> bool:
        """Write one task (``insert`` bound by ``row``), its status
        ``record`` and, with ``notify``, the wakeup in one statement, if
        the database can (return True); else leave it to the caller
        (False)."""
        return False

    def promote(self, connection, promote, queue: str, batch: str):
        """Run ``promote`` (the UPDATE of a batch's rows to ready, bound by
        ``b_queue`` and ``b_batch``) with its status records and wakeup in
        one statement, if the database can: return whether it promoted
        any; else return None."""
        return None


class OnConflict:
    """PostgreSQL's and SQLite's upsert: INSERT ... ON CONFLICT DO UPDATE,
    the proposed row named ``excluded``."""

    def _proposed(self, insert):
        return insert.excluded

    def _on_conflict(self, insert, keys, values):
        return insert.on_conflict_do_update(index_elements=keys, set_=values)


class MySQL(Dialect):
    """MariaDB (10.6 and later) and MySQL 8: SKIP LOCKED, but MariaDB has
    no UPDATE ... RETURNING, so a reserve is SELECT ... FOR UPDATE SKIP
    LOCKED and an UPDATE of what it locked, in one short transaction; READ
    COMMITTED, as for PostgreSQL."""

    def configure(self, engine):
        if engine.dialect.driver == 'pymysql':
            share_preferred_tls_context(engine)

        @sa.event.listens_for(engine, 'connect')
        def connected(dbapi_connection, _record):
            # InnoDB's default (REPEATABLE READ) locks the gaps between
            # the rows a statement reads: inserts and reserves of other
            # transactions would wait for, and deadlock with, each other.
            cursor = dbapi_connection.cursor()
            cursor.execute('SET SESSION TRANSACTION ISOLATION LEVEL '
                           'READ COMMITTED')
            cursor.close()

    def clock(self):
        return sa.func.unix_timestamp(sa.func.now(6))

    def _due(self, select, limit):
        return super()._due(select, limit).with_for_update(
            skip_locked=True)

    def _insert(self, table):
        from sqlalchemy.dialects.mysql import insert
        return insert(table)

    def _proposed(self, insert):
        return insert.inserted

    def _on_conflict(self, insert, keys, values):
        return insert.on_duplicate_key_update(values)


class SQLite(OnConflict, Dialect):
    """One writer at a time: every transaction starts with BEGIN
    IMMEDIATE, so two processes never both read and then fail to write
    (SQLite's deadlock, 'database is locked'); WAL lets readers go on
    beside the writer.  A busy database is waited for up to the queue's
    ``timeout``.  ``synchronous = NORMAL``: in WAL mode a commit survives
    the crash of any process (kill -9), and only a power cut may lose the
    last ones; the file's writers hold their lock for far shorter."""

    one_writer = True

    def configure(self, engine):
        @sa.event.listens_for(engine, 'connect')
        def connected(dbapi_connection, _record):
            # The driver must not open transactions of its own.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute('PRAGMA journal_mode=WAL')
            cursor.execute('PRAGMA synchronous=NORMAL')
            cursor.close()

        @sa.event.listens_for(engine, 'begin')
        def begin(connection):
            connection.exec_driver_sql('BEGIN IMMEDIATE')

    def clock(self):
        return (sa.func.julianday('now') - 2440587.5) * 86400.0

    def take(self, connection, queue, slot, consumer, limit, records=True):
        if sqlite3.sqlite_version_info < (3, 35):  # no RETURNING yet
            return super().take(connection, queue, slot, consumer, limit)
        # One statement, UPDATE ... WHERE id IN (SELECT ... LIMIT n)
        # RETURNING: the transaction holds the file's write lock from its
        # BEGIN IMMEDIATE, so no other writer runs between the two.
        tasks = self.tables.tasks
        rows = connection.execute(self.statement(
            ('take', limit), lambda: tasks.update().where(tasks.c.id.in_(
                self._due(sa.select(tasks.c.id), limit).scalar_subquery())
            ).values(state='processing', slot=sa.bindparam('b_slot'),
                     consumer=sa.bindparam('b_consumer'),
                     delayed=False).returning(
                tasks.c.id, tasks.c.message, tasks.c.task_id,
                tasks.c.attempt, tasks.c.due, tasks.c.priority)), {
            'b_queue': queue, 'b_slot': slot, 'b_consumer': consumer}).all()
        # RETURNING follows no ORDER BY.
        return sorted(rows, key=lambda row: (-row.priority, row.due,
                                             row.id)), None

    def _insert(self, table):
        from sqlalchemy.dialects.sqlite import insert
        return insert(table)


def dialect_for(engine, tables) -> Dialect:
    from .postgresql import PostgreSQL
    dialects = {'postgresql': PostgreSQL, 'mysql': MySQL, 'mariadb': MySQL,
                'sqlite': SQLite}
    try:
        return dialects[engine.dialect.name](tables)
    except KeyError:
        raise ValueError(
            f'a SQL queue runs on {", ".join(sorted(dialects))}, not '
            f'{engine.dialect.name!r}') from None
