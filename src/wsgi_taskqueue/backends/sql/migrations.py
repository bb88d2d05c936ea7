"""The numbered upgrades of the SQL queue's tables, applied by
``wsgi-taskqueue init``.

``schema.py`` defines the tables as they are now; a fresh database gets
them whole.  A database made by an earlier release has the version it was
made at, and every version after 1 is a numbered ``Step`` here: what
changed, as declarative operations that name what they add by the name it
has in ``schema.py`` (so a column is declared once, there, and the step
only says that it is new).  Each operation is rendered in the database's
own dialect (SQLite, PostgreSQL, MariaDB/MySQL) and checks first whether
its change is already there, so a step that was cut short (MariaDB/MySQL
commit each DDL statement at once) runs again harmlessly; on PostgreSQL
and SQLite a step and its version number commit together.

Adding a column, table or index is then two edits: the definition in
``schema.py`` and one line here::

    STEPS = [
        ...,
        Step(3, 'tasks get a priority',
             AddColumn('tasks', 'priority', fill=0),
             AddIndex('tasks', 'tasks_priority')),
    ]

The test that builds the tables fresh and migrates a version-1 database
(``tests/test_sql_migrations.py``) fails when a definition changed without
its step.
"""
from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from ...validation import DEFAULT_PRIORITY

__all__ = ['Step', 'AddTable', 'AddColumn', 'AddIndex', 'DropIndex',
           'Statements', 'STEPS', 'LATEST', 'upgrade']


class Operation:
    """One change of a step: ``apply`` makes it unless it is there
    already, returning what it did (or None)."""

    def apply(self, connection, tables) -> str | None:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class AddTable(Operation):
    """The table ``schema.py`` defines as ``Tables.<name>``, with its
    indexes."""

    name: str

    def apply(self, connection, tables):
        table = getattr(tables, self.name)
        if _inspect(connection).has_table(table.name, schema=table.schema):
            return None
        table.create(connection)
        return f'created table {table.fullname}'


@dataclasses.dataclass(frozen=True)
class AddColumn(Operation):
    """The column ``column`` of ``Tables.<table>``.  A NOT NULL column
    needs ``fill``, the value the rows already there get (and the
    column's default in the database from then on)."""

    table: str
    column: str
    fill: object = None

    def apply(self, connection, tables):
        table = getattr(tables, self.table)
        column = table.c[self.column]
        existing = {found['name'] for found in _inspect(
            connection).get_columns(table.name, schema=table.schema)}
        if column.name in existing:
            return None
        dialect = connection.dialect
        quote = dialect.identifier_preparer
        definition = [quote.format_column(column),
                      column.type.compile(dialect=dialect)]
        if self.fill is not None:
            definition.append('DEFAULT ' + str(sa.literal(self.fill).compile(
                dialect=dialect, compile_kwargs={'literal_binds': True})))
        elif not column.nullable:
            raise ValueError(f'AddColumn({self.table!r}, {self.column!r}): '
                             f'a NOT NULL column needs fill=')
        if not column.nullable:
            definition.append('NOT NULL')
        connection.exec_driver_sql(
            f'ALTER TABLE {quote.format_table(table)} ADD COLUMN '
            f'{" ".join(definition)}')
        return f'added column {table.fullname}.{column.name}'


@dataclasses.dataclass(frozen=True)
class AddIndex(Operation):
    """The index ``schema.py`` defines on ``Tables.<table>`` as
    ``table_prefix + name``."""

    table: str
    name: str

    def apply(self, connection, tables):
        table = getattr(tables, self.table)
        name = tables.prefix + self.name
        if _has_index(connection, table, name):
            return None
        index = next(index for index in table.indexes if index.name == name)
        index.create(connection)
        return f'created index {name}'


@dataclasses.dataclass(frozen=True)
class DropIndex(Operation):
    """An index an earlier version had on ``Tables.<table>``."""

    table: str
    name: str

    def apply(self, connection, tables):
        table = getattr(tables, self.table)
        name = tables.prefix + self.name
        if not _has_index(connection, table, name):
            return None
        # Bound to the table for DROP INDEX ... ON (MariaDB), then taken
        # off it again: the tables define what is, not what was.
        index = sa.Index(name, _table=table)
        try:
            index.drop(connection)
        finally:
            table.indexes.discard(index)
        return f'dropped index {name}'


@dataclasses.dataclass(frozen=True)
class Statements(Operation):
    """What no declarative operation says (a backfill, a changed type):
    SQL per dialect (``postgresql``, ``mysql`` for MariaDB too,
    ``sqlite``), with ``{prefix}`` for the table prefix and ``{schema}``
    for the schema's name and a dot (empty without one).  It must be
    safe to run twice."""

    what: str
    postgresql: tuple[str, ...] = ()
    mysql: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()

    def apply(self, connection, tables):
        name = 'mysql' if connection.dialect.name == 'mariadb' \
            else connection.dialect.name
        schema = tables.metadata.schema
        for statement in getattr(self, name):
            connection.exec_driver_sql(statement.format(
                prefix=tables.prefix,
                schema=f'{schema}.' if schema else ''))
        return self.what


@dataclasses.dataclass(frozen=True)
class Step:
    """What changed from version ``version - 1`` to ``version``."""

    version: int
    what: str
    operations: tuple[Operation, ...]

    def __init__(self, version: int, what: str, *operations: Operation):
        object.__setattr__(self, 'version', version)
        object.__setattr__(self, 'what', what)
        object.__setattr__(self, 'operations', operations)


#: Every version after 1, in order.
STEPS: list[Step] = [
    Step(2, 'tasks get a priority; task names are held',
         AddColumn('tasks', 'priority', fill=DEFAULT_PRIORITY),
         DropIndex('tasks', 'tasks_ready'),
         AddIndex('tasks', 'tasks_ready'),
         AddTable('names')),
    Step(3, 'results are kept; tasks wait for other tasks',
         AddColumn('tasks', 'waits', fill=False),
         AddColumn('tasks', 'waited_on', fill=False),
         AddTable('results'),
         AddTable('dependencies')),
    Step(4, 'jobs of many tasks',
         AddColumn('tasks', 'job'),
         AddTable('jobs'),
         AddTable('job_tasks')),
]

#: The version ``schema.py`` defines.
LATEST = STEPS[-1].version if STEPS else 1


def upgrade(connection, tables, found: int) -> list[str]:
    """Run the steps after version ``found`` in order, recording each
    version reached; return what was done, one line each."""
    done = []
    for step in STEPS:
        if step.version <= found:
            continue
        for operation in step.operations:
            did = operation.apply(connection, tables)
            if did:
                done.append(did)
        connection.execute(tables.version.update().values(
            version=step.version))
        done.append(f'upgraded to version {step.version}: {step.what}')
    return done


def _inspect(connection):
    # A new inspector each time: one caches what it read, and the
    # operations before it may have changed that.
    return sa.inspect(connection)


def _has_index(connection, table, name) -> bool:
    return any(index['name'] == name for index in _inspect(
        connection).get_indexes(table.name, schema=table.schema))
