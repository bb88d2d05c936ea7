"""The status log of a SQL queue: written in the transaction that moves
the task, read back in the form ``status.record`` renders.

Rows older than ``status_ttl`` are hidden at once and deleted by the
sweep in bounded batches, as are the oldest beyond ``status_max``.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

from ...status import header_of, record

__all__ = ['SqlStatusLog']

#: What a new record sets, also where one of the task exists already.
RECORDED = ('state', 'updated', 'attempt', 'header')

#: Rows one sweep deletes at most (a long-idle queue catches up over
#: several sweeps without one long transaction).
TRIM_BATCH = 1000


class SqlStatusLog:
    """The status rows of one queue (see the module docstring)."""

    def __init__(self, queue):
        self.queue = queue

    def _statement(self, key, build):
        return self.queue.store.dialect.statement(('status', key), build)

    @property
    def _status(self):
        return self.queue.store.tables.status

    @property
    def _attempts(self):
        return self.queue.store.tables.attempts

    def new(self, connection, tasks, state: str) -> None:
        """Records for ``tasks`` (None entries are not tasks)."""
        self.write(connection, self.records(tasks, state))

    def records(self, tasks, state: str) -> list[dict]:
        """The new records of ``tasks`` (None entries are not tasks), for
        ``write``; none when the queue keeps none."""
        if not self.queue.status_ttl:
            return []
        return [{'queue': self.queue.name, 'task_id': task.id,
                 'state': state, 'updated': time.time(),
                 'attempt': task.attempt, 'header': header_of(task),
                 'finished': 0}
                for task in tasks if task is not None]

    def write(self, connection, records: list[dict]) -> None:
        if records:
            # A record the task has already (a replay staged again) keeps
            # which of its attempts finished.
            connection.execute(self._statement(
                'new', lambda: self.queue.store.dialect.upsert(
                    self._status, ['queue', 'task_id'],
                    RECORDED)), records)

    def promoted(self, connection, batch_id: str) -> list:
        """The records of the staged tasks of ``batch_id`` say queued
        (before the promotion, in its transaction); return the ids of
        those that wait for other tasks, for the queue to park (their
        records are left to that).  The ids are read first: MariaDB runs
        an UPDATE ... IN (SELECT ...) as a scan of the whole log."""
        if not self.queue.status_ttl:
            return []
        tasks = self.queue.tasks_table
        now = self.queue.store.dialect.now()
        rows = connection.execute(self._statement(
            'in batch', lambda: sa.select(
                tasks.c.task_id, tasks.c.due > now, tasks.c.due,
                tasks.c.waits).where(
                tasks.c.batch == sa.bindparam('b_batch'),
                tasks.c.queue == sa.bindparam('b_queue'),
                tasks.c.state == 'staged')),
            {'b_queue': self.queue.name, 'b_batch': batch_id}).all()
        self.update(connection, [task_id for task_id, later, _, waits in rows
                                 if not later and not waits], state='queued')
        # Scheduled for later (countdown, eta): as rarely as they are
        # used, one update each.
        for task_id, later, due, waits in rows:
            if later and not waits:
                self.update(connection, [task_id], state='scheduled',
                            next=due)
        return [task_id for task_id, _, _, waits in rows if waits]

    def update(self, connection, task_ids, **fields) -> None:
        task_ids = [task_id for task_id in task_ids if task_id]
        if not task_ids or not self.queue.status_ttl:
            return
        status = self._status
        connection.execute(self._statement(
            ('update', *fields), lambda: status.update().where(
                status.c.queue == sa.bindparam('b_queue'),
                status.c.task_id.in_(sa.bindparam('b_ids', expanding=True))
            ).values(updated=sa.bindparam('b_updated'), **{
                key: sa.bindparam(f'b_{key}') for key in fields})),
            {'b_queue': self.queue.name, 'b_ids': task_ids,
             'b_updated': time.time(),
             **{f'b_{key}': value for key, value in fields.items()}})

    def update_each(self, connection, rows: list[dict]) -> None:
        """Several records, each with fields of its own (dicts with
        task_id and the fields)."""
        rows = [row for row in rows if row['task_id']]
        if not rows or not self.queue.status_ttl:
            return
        status = self._status
        fields = [key for key in rows[0] if key != 'task_id']
        now = time.time()
        connection.execute(
            self._statement(('each', *fields), lambda: status.update().where(
                status.c.queue == sa.bindparam('b_queue'),
                status.c.task_id == sa.bindparam('b_task_id')).values(
                updated=sa.bindparam('b_updated'),
                **{key: sa.bindparam(f'b_{key}') for key in fields})),
            [{'b_queue': self.queue.name, 'b_updated': now,
              **{f'b_{key}': value for key, value in row.items()}}
             for row in rows])

    def outcome(self, connection, reports, state: str, outcome: str,
                **fields) -> None:
        """Record how deliveries ended (None: a message that was not a
        task, only counted), and count them for the current minute."""
        reports = list(reports)
        if reports:
            self.queue.store.dialect.count(
                connection, self.queue.name, int(time.time() // 60),
                {outcome: len(reports)})
        reports = [report for report in reports if report is not None]
        if not reports or not self.queue.status_ttl:
            return
        self.update_each(connection, [
            {'task_id': report.task_id, 'state': state,
             'status': report.status, 'finished': report.attempt, **fields}
            for report in reports])
        # An upsert: a task requeued from the dead letters runs its
        # attempts again.
        now = time.time()
        connection.execute(self._statement(
            'attempt', lambda: self.queue.store.dialect.upsert(
                self._attempts, ['queue', 'task_id', 'attempt'],
                ['status', 'at', 'duration_ms'])), [
            {'queue': self.queue.name, 'task_id': report.task_id,
             'attempt': report.attempt, 'status': report.status, 'at': now,
             'duration_ms': round(report.duration * 1000, 1)}
            for report in reports])

    def running(self, connection, rows, slot: str, marked=None) -> list:
        """Record ``rows`` (just reserved: task_id, attempt) as running in
        ``slot``, except those whose attempt finished already (replays),
        which are returned.  ``marked``: the task ids the reserve recorded
        running already.  One reserved row is one UPDATE that skips a
        finished attempt; only when it updated nothing (a replay, or a
        task without a record) are the records read."""
        if not rows or not self.queue.status_ttl:
            return []
        if marked is not None:
            rows = [row for row in rows
                    if row.task_id and row.task_id not in marked]
            if not rows:
                return []
        if len(rows) == 1 and rows[0].task_id:
            [row] = rows
            status = self._status
            if connection.execute(self._statement(
                    'running', lambda: status.update().where(
                        status.c.queue == sa.bindparam('b_queue'),
                        status.c.task_id == sa.bindparam('b_task_id'),
                        sa.or_(status.c.finished <= 0, status.c.finished
                               < sa.bindparam('b_attempt_or_0'))).values(
                        state='running', updated=sa.bindparam('b_updated'),
                        consumer=sa.bindparam('b_consumer'),
                        attempt=sa.bindparam('b_attempt'))), {
                    'b_queue': self.queue.name, 'b_task_id': row.task_id,
                    'b_attempt_or_0': row.attempt or 0,
                    'b_attempt': row.attempt, 'b_consumer': slot,
                    'b_updated': time.time()}).rowcount:
                return []
        replays = self.replays(connection, rows)
        self.update_each(connection, [
            {'task_id': row.task_id, 'state': 'running', 'consumer': slot,
             'attempt': row.attempt}
            for row in rows if row not in replays])
        return replays

    def replays(self, connection, rows) -> list:
        """Those of ``rows`` (reserved: task_id, attempt) whose attempt
        finished already, by the records still kept."""
        ids = [row.task_id for row in rows if row.task_id]
        if not ids or not self.queue.status_ttl:
            return []
        status = self._status
        finished = dict(connection.execute(self._statement(
            'finished', lambda: sa.select(status.c.task_id,
                                          status.c.finished).where(
                status.c.queue == sa.bindparam('b_queue'),
                status.c.task_id.in_(sa.bindparam('b_ids', expanding=True)),
                status.c.finished > 0)),
            {'b_queue': self.queue.name, 'b_ids': ids}).all())
        return [row for row in rows if row.task_id in finished
                and (row.attempt or 0) <= finished[row.task_id]]

    def get(self, connection, task_id: str) -> dict | None:
        found = self._records(connection, self._status.c.task_id == task_id)
        return found[0] if found else None

    def list(self, connection, state=None, start=0, count=50) -> list[dict]:
        condition = [] if state is None else [self._status.c.state == state]
        return self._records(connection, *condition, start=start,
                             count=count)

    def throughput(self, connection, minutes: int) -> list[dict]:
        table = self.queue.store.tables.minutes
        current = int(time.time() // 60)
        rows = {row.minute: row for row in connection.execute(
            sa.select(table).where(table.c.queue == self.queue.name,
                                   table.c.minute > current - minutes))}
        result = []
        for minute in range(current - minutes + 1, current + 1):
            row = rows.get(minute)
            counts = {} if row is None else {
                name: getattr(row, name) for name in ('done', 'retried',
                                                      'dead')
                if getattr(row, name)}
            result.append({'minute': minute * 60, **counts})
        return result

    def trim(self, connection) -> None:
        """Delete (a bounded batch of) expired records, those beyond
        status_max, and minute counts older than an hour."""
        status, name = self._status, self.queue.name
        expired = sa.select(status.c.seq).where(
            status.c.queue == name,
            status.c.updated < time.time() - self.queue.status_ttl)
        beyond = connection.execute(sa.select(status.c.seq).where(
            status.c.queue == name).order_by(status.c.seq.desc()).offset(
            self.queue.status_max).limit(1)).scalar()
        if beyond is not None:
            expired = sa.select(status.c.seq).where(
                status.c.queue == name, sa.or_(
                    status.c.updated < time.time() - self.queue.status_ttl,
                    status.c.seq <= beyond))
        old = connection.execute(
            expired.limit(TRIM_BATCH)).scalars().all()
        if old:
            ids = connection.execute(sa.select(status.c.task_id).where(
                status.c.seq.in_(old))).scalars().all()
            connection.execute(status.delete().where(status.c.seq.in_(old)))
            connection.execute(self._attempts.delete().where(
                self._attempts.c.queue == name,
                self._attempts.c.task_id.in_(ids)))
        minutes = self.queue.store.tables.minutes
        connection.execute(minutes.delete().where(
            minutes.c.queue == name,
            minutes.c.minute < int(time.time() // 60) - 60))

    def _records(self, connection, *condition, start=0, count=1):
        status = self._status
        rows = connection.execute(
            sa.select(status).where(
                status.c.queue == self.queue.name,
                status.c.updated >= time.time() - self.queue.status_ttl,
                *condition).order_by(status.c.seq.desc()).offset(
                start).limit(count)).all()
        if not rows:
            return []
        attempts = self._attempts
        history: dict = {}
        for attempt in connection.execute(sa.select(attempts).where(
                attempts.c.queue == self.queue.name,
                attempts.c.task_id.in_([row.task_id for row in rows]))):
            history.setdefault(attempt.task_id, {})[
                f'a{attempt.attempt}'] = (f'{attempt.status}\t{attempt.at}\t'
                                          f'{attempt.duration_ms}')
        return [record({
            'id': row.task_id, 'state': row.state,
            'updated': str(row.updated), 'consumer': row.consumer or '',
            'attempt': str(row.attempt or ''),
            'next': '' if row.next is None else str(row.next),
            'status': row.status or '', 'header': row.header,
            **history.get(row.task_id, {})}, self.queue.name)
            for row in rows]
