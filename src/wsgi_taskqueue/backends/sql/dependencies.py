"""Tasks that wait for other tasks, on a SQL queue: parked at promotion,
released in the transaction that settles what they wait for
(``backends/dependencies.py`` states the rules; ``backends/rules.py`` is
their plain reading).

A parked task is a row of ``tasks`` in state ``waiting``; each task it
still waits for is a row of ``dependencies`` (queue, task_id: the one
waited for, waiting: the parked one).  A task condemned by a dependency
that died is buried in the same transaction, with its dead letter and
on_failure callback, as any task buried unrun.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

from ...completion import finished
from ...errors import DecodeError
from ...status import Report
from ..base import peek
from ..dependencies import DYING, check_known, doomed_reason, waits

__all__ = ['SqlDependencies', 'waiting_ids']


class SqlDependencies:
    """The parked tasks of one SQL queue (see the module docstring)."""

    def __init__(self, queue):
        self.queue = queue

    @property
    def _table(self):
        return self.queue.store.tables.dependencies

    def check(self, connection, messages) -> None:
        """UnknownDependency unless every task ``messages`` wait for is
        known (``dependencies.check_known``)."""
        status = self.queue.store.tables.status

        def known(ids):
            return connection.execute(sa.select(status.c.task_id).where(
                status.c.queue == self.queue.name,
                status.c.task_id.in_(ids))).scalars().all()
        check_known(self.queue, messages, known)

    def park(self, connection, state: str, task_ids) -> None:
        """Park (or condemn) those of the rows in ``state`` of
        ``task_ids`` (tasks with ``after``) that wait for tasks not done;
        in order, so a task may wait for one parked just before it."""
        tasks = self.queue.tasks_table
        rows = connection.execute(sa.select(
            tasks.c.id, tasks.c.task_id, tasks.c.message, tasks.c.due).where(
            tasks.c.queue == self.queue.name, tasks.c.state == state,
            tasks.c.task_id.in_(task_ids)).order_by(tasks.c.id)).all()
        for row in rows:
            task = peek(row.message)
            after = (task.options.after or []) if task is not None else []
            states = self._states(connection, after)
            dying = [d for d in after if states.get(d) in DYING]
            if dying:
                self._doom(connection, row.id, row.message,
                           doomed_reason(dying[0], states[dying[0]]))
                continue
            left = [d for d in after if states.get(d) not in (None, 'done')]
            if not left:
                if state == 'staged':  # promoted as any other
                    later = row.due > time.time()
                    self.queue.log.update(
                        connection, [row.task_id],
                        **({'state': 'scheduled', 'next': row.due} if later
                           else {'state': 'queued'}))
                continue
            connection.execute(tasks.update().where(
                tasks.c.id == row.id).values(state='waiting', batch=None,
                                             staged_at=None))
            connection.execute(self._table.insert(), [
                {'queue': self.queue.name, 'task_id': dependency,
                 'waiting': row.task_id} for dependency in left])
            connection.execute(tasks.update().where(
                tasks.c.queue == self.queue.name,
                tasks.c.task_id.in_(left)).values(waited_on=True))
            self.queue.log.update(connection, [row.task_id], state='waiting')

    def release(self, connection, settled) -> bool:
        """Tasks left their queue: ``settled`` holds (task id, state:
        done, dead, cancelled or purged).  What waits for them counts them
        done, or is buried with them; their jobs count them.  True when
        tasks became pending."""
        states = dict(settled)
        if not states:
            return False
        counted = self.queue.jobs.settled(connection, states)
        return self._release(connection, states) or counted

    def _release(self, connection, states: dict) -> bool:
        table = self._table
        mine = table.c.queue == self.queue.name
        parked = connection.execute(self.queue.store.dialect.statement(
            ('dependencies', 'of'), lambda: sa.select(
                table.c.task_id, table.c.waiting).where(
                table.c.queue == sa.bindparam('b_queue'),
                table.c.task_id.in_(sa.bindparam('b_ids', expanding=True)))),
            {'b_queue': self.queue.name, 'b_ids': list(states)}).all()
        if not parked:
            return False
        connection.execute(table.delete().where(
            mine, table.c.task_id.in_(list(states))))
        released = False
        for dependency, waiting in parked:
            state = states[dependency]
            if state == 'done':
                released |= self._unpark_if_free(connection, waiting)
            else:
                row = self._parked_row(connection, waiting)
                if row is not None:
                    connection.execute(table.delete().where(
                        mine, table.c.waiting == waiting))
                    released |= self._doom(connection, row.id, row.message,
                                           doomed_reason(dependency, state))
        return released

    def cancel(self, connection, task_id: str) -> bool:
        """Cancel ``task_id`` if it is parked."""
        tasks = self.queue.tasks_table
        if not connection.execute(tasks.delete().where(
                tasks.c.queue == self.queue.name, tasks.c.task_id == task_id,
                tasks.c.state == 'waiting')).rowcount:
            return False
        connection.execute(self._table.delete().where(
            self._table.c.queue == self.queue.name,
            self._table.c.waiting == task_id))
        self.queue.log.update(connection, [task_id], state='cancelled',
                              next=None)
        self.release(connection, [(task_id, 'cancelled')])
        return True

    def _states(self, connection, task_ids) -> dict:
        if not task_ids:
            return {}
        status = self.queue.store.tables.status
        return dict(connection.execute(sa.select(
            status.c.task_id, status.c.state).where(
            status.c.queue == self.queue.name,
            status.c.task_id.in_(task_ids))).all())

    def _parked_row(self, connection, task_id):
        tasks = self.queue.tasks_table
        return connection.execute(sa.select(tasks.c.id, tasks.c.message).where(
            tasks.c.queue == self.queue.name, tasks.c.task_id == task_id,
            tasks.c.state == 'waiting')).first()

    def _unpark_if_free(self, connection, task_id: str) -> bool:
        """Queue ``task_id`` if it waits for nothing more."""
        table = self._table
        if connection.execute(sa.select(table.c.task_id).where(
                table.c.queue == self.queue.name,
                table.c.waiting == task_id).limit(1)).first():
            return False
        tasks = self.queue.tasks_table
        now = self.queue.store.dialect.now()
        moved = connection.execute(tasks.update().where(
            tasks.c.queue == self.queue.name, tasks.c.task_id == task_id,
            tasks.c.state == 'waiting').values(
            state='ready', due=sa.case((tasks.c.due > now, tasks.c.due),
                                       else_=now),
            delayed=tasks.c.due > now)).rowcount
        if moved:
            later = connection.execute(sa.select(tasks.c.due).where(
                tasks.c.queue == self.queue.name, tasks.c.task_id == task_id,
                tasks.c.delayed.is_(True))).scalar()
            self.queue.log.update(
                connection, [task_id], **({'state': 'queued'} if later is None
                                          else {'state': 'scheduled',
                                                'next': later}))
            self.queue.store.dialect.notify(connection, self.queue.name)
        return bool(moved)

    def _doom(self, connection, row_id, message, reason: str) -> bool:
        """Bury a task a dependency condemned, as one buried unrun: dead
        letter, status record, on_failure callback, and what waits for it
        in turn."""
        message = bytes(message)
        queue = self.queue
        try:
            task = queue.codec.decode(message)
        except DecodeError:
            task = None
        peeked = task or peek(message)
        report = None
        if peeked is not None:
            report = Report(peeked.id, peeked.attempt, reason, 0.0)
            if task is not None:
                report = finished(queue, task, report, None, 'dead')
        queue._bury(connection, row_id, queue.dead_letter(
            message, task, None, reason, peeked.attempt if peeked else 0))
        queue.log.outcome(connection, [report], 'dead', 'dead')
        return queue.settlements.settled(connection, [report], 'dead')


def waiting_ids(messages) -> list:
    """The ids of those of ``messages`` that may wait for others."""
    found = []
    for message in messages:
        if waits(message):
            task = peek(message)
            if task is not None and task.options.after:
                found.append(task.id)
    return found
