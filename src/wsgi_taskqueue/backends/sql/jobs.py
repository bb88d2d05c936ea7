"""Jobs of many tasks on a SQL queue: markers taken in and tasks counted
in the transaction that promotes their batch, tasks counted done or
failed in the transaction that settles them (``backends/jobs.py`` states
the rules; it is their plain reading for the in-process queues).

A job is a row of ``jobs``; each of its tasks counted in total and not
settled yet is a row of ``job_tasks``, and its row of ``tasks`` is marked
``waited_on`` so that the acknowledgement looks for it (as for a task
others wait for).  Deleting the ``job_tasks`` row is what counts a task,
so it is counted once.  Messages of a job (its tasks and markers) carry
the job's id in ``tasks.job``, for the promotion to find them; markers
are staged as rows like tasks and deleted when taken in.  The row lock of
the job's ``UPDATE`` orders the transactions that count its tasks, close
it or complete it: the one that completes it is the one whose
``UPDATE ... WHERE state = 'closed'`` changed the row.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

from ..base import peek
from ..jobs import JOB_TTL, check_jobs, status_of

__all__ = ['SqlJobs']

#: Expired jobs one sweep deletes at most.
TRIM_BATCH = 1000


class SqlJobs:
    """The jobs of one SQL queue (see the module docstring)."""

    def __init__(self, queue):
        self.queue = queue

    @property
    def _jobs(self):
        return self.queue.store.tables.jobs

    @property
    def _members(self):
        return self.queue.store.tables.job_tasks

    def _mine(self, job_id):
        jobs = self._jobs
        return (jobs.c.queue == self.queue.name, jobs.c.job_id == job_id)

    def check(self, connection, messages) -> None:
        """UnknownJob or ClosedJob (``jobs.check_jobs``)."""
        jobs = self._jobs

        def states(ids):
            return connection.execute(sa.select(
                jobs.c.job_id, jobs.c.state).where(
                jobs.c.queue == self.queue.name, jobs.c.job_id.in_(ids),
                jobs.c.changed >= time.time() - JOB_TTL)).all()
        check_jobs(self.queue, messages, states)

    def take_batch(self, connection, batch_id: str) -> bool:
        """Take in the markers of the staged batch ``batch_id`` and count
        its tasks; True when an on_complete task became pending.  The rows
        are locked: two promotions of one batch (a sweep's beside the
        committing process's) meet there, and the second finds them
        promoted."""
        tasks = self.queue.tasks_table
        return self._take(connection, connection.execute(sa.select(
            tasks.c.id, tasks.c.task_id, tasks.c.job, tasks.c.message).where(
            tasks.c.queue == self.queue.name, tasks.c.batch == batch_id,
            tasks.c.state == 'staged', tasks.c.job.is_not(None)).order_by(
            tasks.c.id).with_for_update()).all())

    def take_written(self, connection, task_ids) -> bool:
        """As ``take_batch``, for rows just written pending (the outbox)."""
        tasks = self.queue.tasks_table
        return self._take(connection, connection.execute(sa.select(
            tasks.c.id, tasks.c.task_id, tasks.c.job, tasks.c.message).where(
            tasks.c.queue == self.queue.name, tasks.c.task_id.in_(task_ids),
            tasks.c.state == 'ready', tasks.c.job.is_not(None)).order_by(
            tasks.c.id)).all())

    def _take(self, connection, rows) -> bool:
        tasks, jobs = self.queue.tasks_table, self._jobs
        queued = False
        now = time.time()
        for row in rows:
            task = peek(bytes(row.message))
            marker = task.job_marker if task is not None else None
            if marker is None:
                if connection.execute(jobs.update().where(
                        *self._mine(row.job),
                        jobs.c.state.in_(['open', 'closed'])).values(
                        total=jobs.c.total + 1, changed=now)).rowcount:
                    connection.execute(self._members.insert().values(
                        queue=self.queue.name, task_id=row.task_id,
                        job_id=row.job))
                    connection.execute(tasks.update().where(
                        tasks.c.id == row.id).values(waited_on=True))
                continue
            connection.execute(tasks.delete().where(tasks.c.id == row.id))
            self.queue._forget(connection, [row.task_id])
            if marker['op'] == 'open':
                if connection.execute(sa.select(jobs.c.job_id).where(
                        *self._mine(row.job))).first() is None:
                    callback = marker['cb']
                    connection.execute(jobs.insert().values(
                        queue=self.queue.name, job_id=row.job,
                        label=marker['label'], state='open', total=0,
                        done=0, failed=0, created=now, changed=now,
                        on_complete=row.task_id if callback else None,
                        message=bytes(row.message) if callback else None))
            elif connection.execute(jobs.update().where(
                    *self._mine(row.job), jobs.c.state == 'open').values(
                    state='closed', closed=now, changed=now)).rowcount:
                queued |= self._complete(connection, row.job)
        return queued

    def settled(self, connection, states: dict) -> bool:
        """Tasks left their queue (``states``: task id -> done, dead,
        cancelled or purged): count those of jobs, once; True when that
        made an on_complete task pending."""
        members = self._members
        mine = members.c.queue == self.queue.name
        found = connection.execute(self.queue.store.dialect.statement(
            ('job tasks', 'of'), lambda: sa.select(
                members.c.task_id, members.c.job_id).where(
                members.c.queue == sa.bindparam('b_queue'),
                members.c.task_id.in_(sa.bindparam('b_ids', expanding=True)))),
            {'b_queue': self.queue.name, 'b_ids': list(states)}).all()
        queued = False
        jobs = self._jobs
        for task_id, job_id in found:
            if not connection.execute(members.delete().where(
                    mine, members.c.task_id == task_id)).rowcount:
                continue  # counted by another transaction meanwhile
            counted = 'done' if states[task_id] == 'done' else 'failed'
            connection.execute(jobs.update().where(*self._mine(job_id)).values(
                {counted: jobs.c[counted] + 1, 'changed': time.time()}))
            queued |= self._complete(connection, job_id)
        return queued

    def _complete(self, connection, job_id: str) -> bool:
        """Complete the job if it is closed and nothing of it unfinished:
        its on_complete message becomes pending."""
        jobs = self._jobs
        finished = (*self._mine(job_id), jobs.c.state == 'closed',
                    jobs.c.done + jobs.c.failed >= jobs.c.total)
        message = connection.execute(sa.select(jobs.c.message).where(
            *finished)).first()
        if message is None or not connection.execute(jobs.update().where(
                *finished).values(state='complete', completed=time.time(),
                                  message=None)).rowcount:
            return False
        if message.message is None:
            return False
        self.queue.insert(connection, {self.queue: [bytes(message.message)]},
                          jobs=False)
        return True

    def status(self, connection, job_id: str) -> dict | None:
        jobs = self._jobs
        row = connection.execute(sa.select(jobs).where(
            *self._mine(job_id),
            jobs.c.changed >= time.time() - JOB_TTL)).first()
        return None if row is None else _status(self.queue.name, row)

    def list(self, connection, start: int = 0, count: int = 50) -> list:
        jobs = self._jobs
        rows = connection.execute(sa.select(jobs).where(
            jobs.c.queue == self.queue.name,
            jobs.c.changed >= time.time() - JOB_TTL).order_by(
            jobs.c.created.desc(), jobs.c.job_id).offset(start).limit(
            count)).all()
        return [_status(self.queue.name, row) for row in rows]

    def trim(self, connection) -> None:
        """Delete (a bounded batch of) jobs unchanged for JOB_TTL."""
        jobs, members = self._jobs, self._members
        old = connection.execute(sa.select(jobs.c.job_id).where(
            jobs.c.queue == self.queue.name,
            jobs.c.changed < time.time() - JOB_TTL).limit(
            TRIM_BATCH)).scalars().all()
        if old:
            connection.execute(members.delete().where(
                members.c.queue == self.queue.name,
                members.c.job_id.in_(old)))
            connection.execute(jobs.delete().where(
                jobs.c.queue == self.queue.name, jobs.c.job_id.in_(old)))


def _status(queue: str, row) -> dict:
    fields = dict(row._mapping)
    fields.pop('message', None)
    return status_of(queue, fields.pop('job_id'), fields)
