"""What operators do to a SQL queue: counts, listings, dead letters, purge,
requeue, reset (the read side and the bulk writes of IQueueBackend)."""
from __future__ import annotations

import sqlalchemy as sa

from ..base import peek
from ..priority import priority_of

__all__ = ['Operations']


class Operations:
    """Mixed into SqlQueue; see IQueueBackend."""

    def counts(self):
        tasks = self.tasks_table
        counts = {'pending': 0, 'delayed': 0, 'dead': 0, 'staged': 0,
                  'processing': {}}
        with self.store.transaction() as connection:
            for state, delayed, consumer, number in connection.execute(
                    sa.select(tasks.c.state, tasks.c.delayed,
                              tasks.c.consumer, sa.func.count()).where(
                        tasks.c.queue == self.name).group_by(
                        tasks.c.state, tasks.c.delayed, tasks.c.consumer)):
                if state == 'ready':
                    counts['delayed' if delayed else 'pending'] += number
                elif state == 'processing':
                    counts['processing'][consumer] = number
            counts['staged'] = connection.execute(
                sa.select(sa.func.count(tasks.c.batch.distinct())).where(
                    tasks.c.queue == self.name,
                    tasks.c.state == 'staged')).scalar()
            dead = self.store.tables.dead
            counts['dead'] = connection.execute(
                sa.select(sa.func.count()).select_from(dead).where(
                    dead.c.queue == self.name)).scalar()
        return counts

    def task_status(self, task_id):
        with self.store.transaction() as connection:
            return self.log.get(connection, task_id)

    def task_result(self, task_id):
        with self.store.transaction() as connection:
            return self.settlements.result(connection, task_id)

    def job_status(self, job_id):
        with self.store.transaction() as connection:
            return self.jobs.status(connection, job_id)

    def job_list(self, start=0, count=50):
        with self.store.transaction() as connection:
            return self.jobs.list(connection, start, count)

    def tasks(self, state=None, start=0, count=50):
        with self.store.transaction() as connection:
            return self.log.list(connection, state, start, count)

    def throughput(self, minutes=15):
        with self.store.transaction() as connection:
            return self.log.throughput(connection, minutes)

    def dead_letters(self, start=0, stop=-1):
        dead = self.store.tables.dead
        with self.store.transaction() as connection:
            if start < 0 or stop < 0:
                total = connection.execute(
                    sa.select(sa.func.count()).select_from(dead).where(
                        dead.c.queue == self.name)).scalar()
                start = max(0, total + start if start < 0 else start)
                stop = total + stop if stop < 0 else stop
            if stop < start:
                return []
            return [bytes(record) for record in connection.execute(
                sa.select(dead.c.record).where(dead.c.queue == self.name)
                .order_by(dead.c.id.desc()).offset(start).limit(
                    stop - start + 1)).scalars()]

    def requeue_dead(self, record, message):
        dead = self.store.tables.dead
        with self.store.transaction() as connection:
            row_id = connection.execute(sa.select(dead.c.id).where(
                dead.c.queue == self.name, dead.c.record == record).limit(1)
            ).scalar()
            if row_id is None:
                return False
            connection.execute(dead.delete().where(dead.c.id == row_id))
            task = peek(message)
            connection.execute(self.tasks_table.insert().values(
                queue=self.name, state='ready', message=message,
                due=self.store.dialect.now(), task_id=task and task.id,
                attempt=task and task.attempt,
                priority=priority_of(message)))
            # Its attempts count from 1 again: none of them has finished.
            self.log.update(connection, [task and task.id], state='queued',
                            attempt=1, next=None, finished=0)
        self.store.wakeups.notify()
        return True

    def purge_dead(self):
        dead = self.store.tables.dead
        with self.store.transaction() as connection:
            return connection.execute(dead.delete().where(
                dead.c.queue == self.name)).rowcount

    def purge(self):
        tasks = self.tasks_table
        ready = (tasks.c.queue == self.name, tasks.c.state == 'ready')
        with self.store.transaction() as connection:
            ids = connection.execute(sa.select(tasks.c.task_id).where(
                *ready)).scalars().all()
            purged = connection.execute(tasks.delete().where(*ready)).rowcount
            self.log.update(connection, ids, state='purged', next=None)
            self.dependencies.release(connection, [
                (task_id, 'purged') for task_id in ids if task_id])
        return purged

    def cancel(self, task_id):
        tasks = self.tasks_table
        mine = (tasks.c.queue == self.name, tasks.c.task_id == task_id)
        with self.store.transaction() as connection:
            if connection.execute(tasks.delete().where(
                    *mine, tasks.c.state == 'ready')).rowcount:
                self.log.update(connection, [task_id], state='cancelled',
                                next=None)
                self.dependencies.release(connection,
                                          [(task_id, 'cancelled')])
                return 'cancelled'
            if self.dependencies.cancel(connection, task_id):
                return 'cancelled'
            if connection.execute(sa.select(tasks.c.id).where(
                    *mine, tasks.c.state == 'processing')).first():
                return 'running'
        return None

    def requeue_delayed(self):
        tasks = self.tasks_table
        delayed = (tasks.c.queue == self.name, tasks.c.state == 'ready',
                   tasks.c.delayed.is_(True))
        with self.store.transaction() as connection:
            ids = connection.execute(sa.select(tasks.c.task_id).where(
                *delayed)).scalars().all()
            # Due at once, ahead of everything pending.
            moved = connection.execute(tasks.update().where(*delayed).values(
                delayed=False, due=0)).rowcount
            self.log.update(connection, ids, state='queued', next=None)
        self.store.wakeups.notify()
        return moved

    def reset(self):
        with self.store.transaction() as connection:
            for table in self.store.tables.of_queue():
                connection.execute(table.delete().where(
                    table.c.queue == self.name))
