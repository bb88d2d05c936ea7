"""The numbered upgrades of the SQL queue's tables: a database made at
version 1 and upgraded by ``wsgi-taskqueue init`` has the tables a fresh
one gets, on each database."""
import pathlib

import pytest
import sqlalchemy as sa
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.backends.sql import migrations, schema
from wsgi_taskqueue.backends.sql.schema import SCHEMA_VERSION, Tables
from wsgi_taskqueue.errors import SchemaError
from wsgi_taskqueue.testing import free_port

VERSION_1 = pathlib.Path(__file__).parent / 'sql_schema_v1'


@pytest.fixture(params=['sqlite', 'postgresql', 'mariadb'])
def url(request):
    return request.getfixturevalue(f'{request.param}_url')


def prefix(name):
    # The servers are shared by the session's tests: tables of their own.
    return f'{name}{free_port()}_'


def make_version_1(engine, table_prefix, pending=0):
    """The tables of version 1 as its ``init`` made them, with
    ``pending`` tasks waiting."""
    dialect = 'mysql' if engine.dialect.name == 'mariadb' \
        else engine.dialect.name
    text = (VERSION_1 / f'{dialect}.sql').read_text()
    statements = [statement for statement in text.format(
        prefix=table_prefix).split(';') if statement.strip()]
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(
            f'INSERT INTO {table_prefix}version (version) VALUES (1)')
        tasks = sa.table(f'{table_prefix}tasks', *map(sa.column, (
            'queue', 'state', 'due', 'delayed', 'deliveries', 'message')))
        for number in range(pending):
            connection.execute(tasks.insert().values(
                queue='default', state='ready', due=0, delayed=False,
                deliveries=0, message=str(number).encode()))


def layout(engine, tables):
    """What the inspector sees of ``tables``: per table its columns,
    primary key, unique constraints and indexes (names without the
    prefix, which differs)."""
    inspector = sa.inspect(engine)

    def bare(name):
        return name and name.removeprefix(tables.prefix)
    found = {}
    names = inspector.get_table_names()
    for name in names:
        if not name.startswith(tables.prefix):
            continue
        found[bare(name)] = {
            'columns': sorted(
                (column['name'], str(column['type']), column['nullable'])
                for column in inspector.get_columns(name)),
            'primary key': inspector.get_pk_constraint(name)[
                'constrained_columns'],
            'unique': sorted((bare(unique['name']),
                              tuple(unique['column_names']))
                             for unique in inspector.get_unique_constraints(
                                 name)),
            'indexes': sorted((bare(index['name']),
                               tuple(index['column_names']),
                               bool(index['unique']))
                              for index in inspector.get_indexes(name)),
        }
    return found


def test_the_steps_are_numbered_one_after_the_other():
    assert [step.version for step in migrations.STEPS] == list(
        range(2, SCHEMA_VERSION + 1))


def test_tables_upgraded_from_version_1_are_the_tables_made_fresh(url):
    fresh = wsgi_taskqueue.SqlQueue(url=url, table_prefix=prefix('fresh'))
    fresh.store.init()
    old_prefix = prefix('old')
    make_version_1(fresh.store.engine, old_prefix, pending=3)
    upgraded = wsgi_taskqueue.SqlQueue(url=url, table_prefix=old_prefix)
    done = upgraded.store.init()
    assert [line for line in done if line.startswith('upgraded')] == [
        f'upgraded to version {step.version}: {step.what}'
        for step in migrations.STEPS]
    assert upgraded.store.init() == []  # idempotent
    try:
        assert layout(fresh.store.engine, fresh.store.tables) == layout(
            upgraded.store.engine, upgraded.store.tables)
        assert upgraded.counts()['pending'] == 3  # the tasks stay
    finally:
        fresh.close()
        upgraded.close()


def test_a_commit_or_consumer_on_an_older_version_names_the_command(
        url, monkeypatch):
    """As this code meets the tables of the version before it (here: a
    step more than there is), until ``init`` upgrades them."""
    newer = SCHEMA_VERSION + 1
    monkeypatch.setattr(migrations, 'STEPS', [
        *migrations.STEPS, migrations.Step(newer, 'nothing new')])
    monkeypatch.setattr(schema, 'SCHEMA_VERSION', newer)
    queue = wsgi_taskqueue.SqlQueue(url=url, table_prefix=prefix('older'))
    with queue.store.engine.begin() as connection:
        schema.init(connection, queue.store.tables)
        connection.execute(queue.store.tables.version.update().values(
            version=SCHEMA_VERSION))
    wsgi_taskqueue.register_queue('default', queue)
    taskqueue.add('/x')
    advice = (rf'of version {SCHEMA_VERSION}, this wsgi-taskqueue needs '
              rf'{newer}: run `wsgi-taskqueue init CONFIG`')
    with pytest.raises(SchemaError, match=advice):
        transaction.commit()
    transaction.abort()
    with pytest.raises(SchemaError, match=advice):
        queue.reserve('w#1', 1, 0)
    assert queue.store.init() == [f'upgraded to version {newer}: nothing '
                                  f'new']
    taskqueue.add('/x')
    transaction.commit()
    assert len(queue.reserve('w#1', 1, 0)) == 1


class Grown(Tables):
    """The tables with what a later version might add and drop."""

    def __init__(self, prefix):
        super().__init__(prefix=prefix)
        self.tasks.append_column(sa.Column('weight', sa.Integer,
                                           nullable=False, default=0))
        self.tasks.append_column(sa.Column('nickname', sa.String(100)))
        sa.Index(prefix + 'tasks_weight', self.tasks.c.queue,
                 self.tasks.c.weight)
        self.dead.indexes.discard(next(index for index in self.dead.indexes
                                       if index.name == prefix + 'dead_at'))
        self.extras = sa.Table(
            prefix + 'extras', self.metadata,
            sa.Column('id', sa.Integer, primary_key=True),
            sa.Column('queue', sa.String(191), nullable=False),
            sa.Index(prefix + 'extras_queue', 'queue'))


GROWTH = migrations.Step(
    SCHEMA_VERSION + 1, 'a later version',
    migrations.AddColumn('tasks', 'weight', fill=0),
    migrations.AddColumn('tasks', 'nickname'),
    migrations.AddIndex('tasks', 'tasks_weight'),
    migrations.DropIndex('dead', 'dead_at'),
    migrations.AddTable('extras'),
    migrations.Statements(
        'named the tasks',
        postgresql=["UPDATE {schema}{prefix}tasks SET nickname = 'old'"],
        mysql=["UPDATE {schema}{prefix}tasks SET nickname = 'old'"],
        sqlite=["UPDATE {prefix}tasks SET nickname = 'old'"]))


def test_each_kind_of_step_gives_what_the_tables_define(url, monkeypatch):
    """So that a step of a later version is a line of declarations: each
    operation, on each database, twice (a step cut short runs again)."""
    grown_prefix, fresh_prefix = prefix('grown'), prefix('fresh')
    engine = sa.create_engine(url)
    make_version_1(engine, grown_prefix, pending=2)
    monkeypatch.setattr(migrations, 'STEPS', [*migrations.STEPS, GROWTH])
    grown = Grown(grown_prefix)
    with engine.begin() as connection:
        done = migrations.upgrade(connection, grown, 1)
        again = migrations.upgrade(connection, grown, 1)
    assert done[-7:] == [
        f'added column {grown_prefix}tasks.weight',
        f'added column {grown_prefix}tasks.nickname',
        f'created index {grown_prefix}tasks_weight',
        f'dropped index {grown_prefix}dead_at',
        f'created table {grown_prefix}extras',
        'named the tasks',
        f'upgraded to version {GROWTH.version}: a later version']
    assert again[-2:] == done[-2:]  # only the statements and the version
    fresh = Grown(fresh_prefix)
    fresh.metadata.create_all(engine)
    try:
        assert layout(engine, grown) == layout(engine, fresh)
        with engine.connect() as connection:
            assert connection.execute(sa.select(
                grown.tasks.c.weight, grown.tasks.c.nickname)).all() == [
                (0, 'old'), (0, 'old')]
            assert connection.execute(sa.select(
                grown.version.c.version)).scalar() == GROWTH.version
    finally:
        engine.dispose()


def test_a_definition_changed_without_its_step_is_seen(sqlite_url):
    engine = sa.create_engine(sqlite_url)
    make_version_1(engine, 'old_')
    old = Tables(prefix='old_')
    with engine.begin() as connection:
        migrations.upgrade(connection, old, 1)
    grown = Grown('new_')
    grown.metadata.create_all(engine)
    try:
        differences = {
            name for name, table in layout(engine, grown).items()
            if layout(engine, old).get(name) != table}
        assert differences == {'tasks', 'dead', 'extras'}
    finally:
        engine.dispose()
