"""PostgreSQL: SKIP LOCKED, RETURNING, LISTEN/NOTIFY, and statements that
do several things at once.

A consumer's round and a web request's task are each a few round trips:
data-modifying CTEs (``WITH x AS (INSERT/UPDATE/DELETE ... RETURNING)``)
run whether or not the statement's ``SELECT`` reads them, so a task's row,
its status record, its attempt history, the minute count and the
``NOTIFY`` go in one statement where other databases need one each.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .dialects import Dialect, OnConflict
from .statuslog import RECORDED

__all__ = ['PostgreSQL']


class PostgreSQL(OnConflict, Dialect):
    listens = True

    def clock(self):
        # statement_timestamp() is stable within a statement (an index
        # bound); clock_timestamp() would be volatile, re-read per row.
        return sa.cast(sa.func.extract(
            'epoch', sa.func.statement_timestamp()), sa.Double)

    def take(self, connection, queue, slot, consumer, limit, records=True):
        # One statement: WITH chosen AS MATERIALIZED (SELECT ... FOR
        # UPDATE SKIP LOCKED LIMIT n), taken AS (UPDATE ... RETURNING),
        # and the taken tasks' status records say running, unless the
        # attempt finished already (a replay, which the caller buries).
        tasks, status = self.tables.tasks, self.tables.status

        def build():
            # A CTE PostgreSQL must materialize: as ``id IN (SELECT ...
            # LIMIT n)`` the planner may run the subquery more than once
            # (a plan that changes with the table's statistics), taking
            # more than n rows and out of order.
            chosen = self._due(sa.select(tasks.c.id), limit) \
                .with_for_update(skip_locked=True).cte('chosen') \
                .prefix_with('MATERIALIZED')
            taken = tasks.update().where(tasks.c.id == chosen.c.id).values(
                state='processing', slot=sa.bindparam('b_slot'),
                consumer=sa.bindparam('b_consumer'),
                delayed=False).returning(
                tasks.c.id, tasks.c.message, tasks.c.task_id,
                tasks.c.attempt, tasks.c.due, tasks.c.priority).cte('taken')
            if not records:
                return sa.select(taken)
            running = status.update().where(
                status.c.queue == sa.bindparam('b_queue'),
                status.c.task_id == taken.c.task_id,
                sa.or_(status.c.finished <= 0, status.c.finished
                       < sa.func.coalesce(taken.c.attempt, 0))).values(
                state='running', consumer=sa.bindparam('b_slot'),
                attempt=taken.c.attempt,
                updated=sa.bindparam('b_updated', type_=sa.Double)
            ).returning(status.c.task_id).cte('running')
            return sa.select(taken, running.c.task_id.is_not(None).label(
                'marked')).select_from(taken.outerjoin(
                    running, running.c.task_id == taken.c.task_id))
        rows = connection.execute(self.statement(('take', limit, records),
                                                 build), {
            'b_queue': queue, 'b_slot': slot, 'b_consumer': consumer,
            'b_updated': time.time()}).all()
        marked = {row.task_id for row in rows if records and row.marked}
        # RETURNING follows no ORDER BY.
        return sorted(rows, key=lambda row: (-row.priority, row.due,
                                             row.id)), marked

    def finish_one(self, connection, row_id, holder, report, recorded):
        # The row's DELETE, the minute's count, and (``recorded``) the
        # status record and attempt history, each only if the DELETE
        # found the row still held.
        tasks, status = self.tables.tasks, self.tables.status
        attempts, minutes = self.tables.attempts, self.tables.minutes

        def bound(name, type_):
            return sa.bindparam(name, type_=type_)

        def build():
            gone = tasks.delete().where(
                tasks.c.id == sa.bindparam('b_id'),
                tasks.c.queue == sa.bindparam('b_queue'),
                tasks.c.consumer == sa.bindparam('b_consumer'),
                tasks.c.slot == sa.bindparam('b_slot'),
                tasks.c.state == 'processing').returning(
                tasks.c.id, tasks.c.waited_on).cte('gone')
            count = pg_insert(minutes).from_select(
                ['queue', 'minute', 'done', 'retried', 'dead'],
                sa.select(bound('b_queue', minutes.c.queue.type),
                          bound('b_minute', sa.Integer), sa.literal(1),
                          sa.literal(0), sa.literal(0)).select_from(gone))
            ctes = [count.on_conflict_do_update(
                index_elements=[minutes.c.queue, minutes.c.minute],
                set_={'done': minutes.c.done + count.excluded.done}).cte(
                'counted')]
            if recorded:
                ctes.append(status.update().where(
                    status.c.queue == sa.bindparam('b_queue'),
                    status.c.task_id == sa.bindparam('b_task_id'),
                    sa.exists(sa.select(gone.c.id))).values(
                    state='done', status=sa.bindparam('b_status'),
                    finished=sa.bindparam('b_attempt'),
                    updated=sa.bindparam('b_at')).cte('recorded'))
                history = pg_insert(attempts).from_select(
                    ['queue', 'task_id', 'attempt', 'status', 'at',
                     'duration_ms'],
                    sa.select(bound('b_queue', attempts.c.queue.type),
                              bound('b_task_id', attempts.c.task_id.type),
                              bound('b_attempt', sa.Integer),
                              bound('b_status', attempts.c.status.type),
                              bound('b_at', sa.Double),
                              bound('b_duration', sa.Double)).select_from(
                        gone))
                ctes.append(history.on_conflict_do_update(
                    index_elements=[attempts.c.queue, attempts.c.task_id,
                                    attempts.c.attempt],
                    set_={name: history.excluded[name]
                          for name in ('status', 'at', 'duration_ms')}).cte(
                    'tried'))
            return sa.select(sa.func.count(), sa.func.coalesce(
                sa.func.bool_or(gone.c.waited_on), False)).select_from(
                gone).add_cte(*ctes)
        now = time.time()
        parameters = {'b_id': row_id, **holder,
                      'b_minute': int(now // 60)}
        if recorded:
            parameters.update(
                b_task_id=report.task_id, b_attempt=report.attempt,
                b_status=report.status, b_at=now,
                b_duration=round(report.duration * 1000, 1))
        held, waited_on = connection.execute(self.statement(
            ('finish', recorded), build), parameters).one()
        return bool(held), bool(waited_on)

    def _insert(self, table):
        return pg_insert(table)

    def notify(self, connection, queue):
        connection.execute(self.statement('notify', lambda: sa.select(
            sa.func.pg_notify(self.channel, sa.bindparam('b_queue')))),
            {'b_queue': queue})

    # The usual web request's single task, and its promotion: statements
    # with data-modifying CTEs, which run whether or not the statement's
    # SELECT reads them; one round trip each, not two to four.

    def write_one(self, connection, insert, row, record, notify):
        status = self.tables.status

        def build():
            upsert = self._insert(status).values(
                {name: sa.bindparam(f's_{name}') for name in record})
            upsert = self._on_conflict(
                upsert, [status.c.queue, status.c.task_id],
                {name: upsert.excluded[name] for name in RECORDED})
            result = (sa.func.pg_notify(self.channel, sa.bindparam('queue'))
                      if notify else sa.literal(1))
            return sa.select(result).add_cte(insert.cte('written'),
                                             upsert.cte('recorded'))
        connection.execute(self.statement(('one', notify, *record), build), {
            **row, **{f's_{name}': value for name, value in record.items()}})
        return True

    def promote(self, connection, promote, queue, batch):
        tasks, status = self.tables.tasks, self.tables.status

        def build():
            promoted = promote.returning(
                tasks.c.task_id, tasks.c.delayed, tasks.c.due).cte(
                'promoted')
            recorded = status.update().where(
                status.c.queue == sa.bindparam('b_queue'),
                status.c.task_id == promoted.c.task_id).values(
                state=sa.case((promoted.c.delayed, 'scheduled'),
                              else_='queued'),
                next=sa.case((promoted.c.delayed, promoted.c.due),
                             else_=status.c.next),
                updated=sa.bindparam('b_updated')).cte('recorded')
            return sa.select(sa.func.pg_notify(
                self.channel, sa.bindparam('b_queue'))).where(sa.exists(
                    sa.select(promoted.c.task_id))).add_cte(recorded)
        return bool(connection.execute(self.statement(('promote', 'records'), build), {
            'b_queue': queue, 'b_batch': batch,
            'b_updated': time.time()}).all())

    @property
    def channel(self) -> str:
        """The channel the consumers of these tables listen on."""
        return f'{self.tables.prefix}wakeup'
