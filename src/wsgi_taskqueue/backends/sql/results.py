"""What settling a task sets off on a SQL queue: its result kept, its
completion callbacks made pending — in the transaction that takes it out
of its processing rows, and only if it was there (``backends/rules.py``
is the plain reading of these rules).

Results live in their own table (``results``: queue, task id, expiry,
the stored text as UTF-8), kept ``result_ttl`` seconds: hidden once
expired, deleted by the sweep in bounded batches.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

__all__ = ['SqlSettlements']

#: Expired results one sweep deletes at most.
TRIM_BATCH = 1000


class SqlSettlements:
    """The results of one SQL queue, and the release of what a settled
    task lets go."""

    def __init__(self, queue):
        self.queue = queue

    @property
    def _table(self):
        return self.queue.store.tables.results

    def settled(self, connection, reports, outcome: str,
                waited_on=None) -> bool:
        """Tasks left their processing rows (``outcome``: done or dead)
        as ``reports`` say (None entries: not tasks): keep their results,
        queue their callbacks, release what waits for them (only for the
        ids in ``waited_on``, when given: the rows say which).  True when
        tasks became pending (consumers of this process are to be woken
        once the transaction commits)."""
        reports = [report for report in reports if report is not None]
        kept = [{'queue': self.queue.name, 'task_id': report.task_id,
                 'expires': time.time() + self.queue.result_ttl,
                 'result': report.result.encode()}
                for report in reports if report.result is not None]
        if kept and self.queue.result_ttl:
            connection.execute(self.queue.store.dialect.statement(
                ('results', 'keep'), lambda: self.queue.store.dialect.upsert(
                    self._table, ['queue', 'task_id'], ['expires', 'result'])),
                kept)
        released = [message for report in reports for message in report.then]
        if released:
            self.queue.insert(connection, {self.queue: released})
        return self.queue.dependencies.release(connection, [
            (report.task_id, outcome) for report in reports
            if waited_on is None or report.task_id in waited_on]) or bool(
            released)

    def result(self, connection, task_id: str) -> str | None:
        table = self._table
        found = connection.execute(sa.select(table.c.result).where(
            table.c.queue == self.queue.name, table.c.task_id == task_id,
            table.c.expires > time.time())).scalar()
        return None if found is None else bytes(found).decode(
            'utf-8', 'replace')

    def trim(self, connection) -> None:
        """Delete (a bounded batch of) expired results."""
        table = self._table
        old = connection.execute(sa.select(table.c.task_id).where(
            table.c.queue == self.queue.name,
            table.c.expires < time.time()).limit(TRIM_BATCH)).scalars().all()
        if old:
            connection.execute(table.delete().where(
                table.c.queue == self.queue.name, table.c.task_id.in_(old)))
