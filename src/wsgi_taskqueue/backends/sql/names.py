"""Task names in the SQL queue: the names table (``schema.py``) holds,
per queue and name, the task that claimed it and until when.

The claim is made in the database transaction that writes the tasks (the
stage's, or the app's for a queue in the app's database), so a task and
its name are written together or not at all.  Per name: an UPDATE takes
it over if it expired (or the task holds it already: a stage sent again),
else an INSERT that ignores a duplicate claims it; neither touching a row
means another task holds it.  Two transactions claiming one name meet on
its primary key: the second waits for the first and, once the first
commits, finds the name held (its INSERT inserts nothing, and the holder
it reads is the other task).  A discarded batch releases its claims.
"""
from __future__ import annotations

import sqlalchemy as sa

from .dialects import OnConflict

__all__ = ['SqlNames']


class SqlNames:
    """The name book of one SQL queue, on one connection (a transaction
    of the stage): see ``backends.names``."""

    def __init__(self, queue, connection):
        self.queue = queue
        self.connection = connection

    def claim(self, batch_id, claims) -> dict:
        names = self.queue.store.tables.names
        dialect = self.queue.store.dialect
        now = dialect.now()
        this = (names.c.queue == sa.bindparam('b_queue'),
                names.c.name == sa.bindparam('b_name'))
        refused = {}
        for name, task_id in claims:
            row = {'b_queue': self.queue.name, 'b_name': name,
                   'b_task': task_id, 'b_batch': batch_id,
                   'b_ttl': self.queue.name_ttl}
            claimed = self.connection.execute(dialect.statement(
                'claim name', lambda: names.update().where(*this, sa.or_(
                    names.c.expires <= now,
                    names.c.task_id == sa.bindparam('b_task'))).values(
                    task_id=sa.bindparam('b_task'),
                    batch=sa.bindparam('b_batch'),
                    expires=now + sa.bindparam('b_ttl'))), row).rowcount
            if claimed:
                continue
            # Whether it inserted shows in the holder, not in a rowcount
            # (which PostgreSQL's drivers do not give for this insert).
            self.connection.execute(dialect.statement(
                'new name', lambda: _ignoring_duplicates(
                    dialect, names, dialect._insert(names).values(
                        queue=sa.bindparam('b_queue'),
                        name=sa.bindparam('b_name'),
                        task_id=sa.bindparam('b_task'),
                        batch=sa.bindparam('b_batch'),
                        expires=now + sa.bindparam('b_ttl')))), row)
            holder = self.connection.execute(dialect.statement(
                'name holder', lambda: sa.select(names.c.task_id).where(
                    *this)), row).scalar()
            if holder != task_id:
                refused[task_id] = holder
        return refused

    @staticmethod
    def release(connection, queue, batch_id) -> None:
        """Free the names the discarded batch ``batch_id`` claimed."""
        names = queue.store.tables.names
        connection.execute(names.delete().where(
            names.c.queue == queue.name, names.c.batch == batch_id))

    @staticmethod
    def forget_expired(connection, queue) -> None:
        """Delete the rows of names no task holds any more."""
        names = queue.store.tables.names
        connection.execute(names.delete().where(
            names.c.queue == queue.name,
            names.c.expires <= queue.store.dialect.now()))


def _ignoring_duplicates(dialect, table, insert):
    """``insert`` that inserts nothing where the primary key exists."""
    if isinstance(dialect, OnConflict):
        return insert.on_conflict_do_nothing(
            index_elements=list(table.primary_key.columns))
    return insert.prefix_with('IGNORE')
