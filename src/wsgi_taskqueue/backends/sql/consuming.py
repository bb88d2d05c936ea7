"""What a consumer does to a SQL queue: reserve (with the dialect's
``take``), acknowledge, retry, bury, requeue what a consumer held, and the
sweep that takes back the tasks of consumers whose lease expired.  Each
move is one database transaction with its status record."""
from __future__ import annotations

import time

import sqlalchemy as sa

from ...deadletter import DeadLetter
from ..base import REPLAYED, owner_of, peek, unfinished_reason
from .names import SqlNames

__all__ = ['Consuming']


class Consuming:
    """Mixed into SqlQueue; see IQueueBackend."""

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        owner = owner_of(slot)
        deadline = time.monotonic() + timeout
        interruptions = self._interruptions[owner]
        wakeups = self.store.wakeups
        while True:
            generation = wakeups.generation
            next_due, replays = None, []
            with self.store.transaction() as connection:
                self._finish(connection, slot, done)
                if recover:
                    self._requeue(connection, slot, count=False)
                done, recover = (), False
                if limit == 0:
                    return []
                taken, marked = self.store.dialect.take(
                    connection, self.name, slot, owner, limit,
                    records=bool(self.status_ttl))
                replays = self.log.running(connection, taken, slot, marked)
                taken = [row for row in taken if row not in replays]
                self.held.took(slot, taken)
                if not taken and not replays:
                    next_due = self._next_due(connection)
            for row in replays:
                self.bury_unusable(slot, row.message, REPLAYED,
                                   recorded=False)
            if taken:
                return [row.message for row in taken]
            if replays:
                continue
            wait = deadline - time.monotonic()
            if wait <= 0 or self._interruptions[owner] != interruptions \
                    or self._closed:
                return []
            if next_due is not None:
                wait = min(wait, max(0.001, next_due))
            self.store.listen()
            wakeups.wait(generation, wait)
            if self._interruptions[owner] != interruptions:
                return []  # before taking more: the consumer may pause

    def interrupt(self, consumer):
        self._interruptions[consumer] += 1
        self.store.wakeups.notify()

    def ack(self, slot, done):
        with self.store.transaction() as connection:
            released = self._finish(connection, slot, done)
        if released:
            self.store.wakeups.notify()

    def retry(self, slot, message, new_message, due, report):
        with self.store.transaction() as connection:
            row_id = self._find(connection, slot, message)
            if row_id is None:
                return
            task = peek(new_message)
            connection.execute(self.tasks_table.update().where(
                self.tasks_table.c.id == row_id).values(
                message=new_message, state='ready', delayed=True, due=due,
                slot=None, consumer=None,
                attempt=task.attempt if task else None))
            self.log.outcome(connection, [report], 'retrying', 'retried',
                             next=due)
        self.store.wakeups.notify()

    def bury(self, slot, message, record, report=None):
        with self.store.transaction() as connection:
            row_id = self._find(connection, slot, message)
            if row_id is None:
                return
            self._bury(connection, row_id, record)
            self.log.outcome(connection, [report], 'dead', 'dead')
            released = self.settlements.settled(connection, [report],
                                                'dead')
        if released:
            self.store.wakeups.notify()

    def requeue_processing(self, consumer, max_deliveries=0):
        with self.store.transaction() as connection:
            requeued, condemned = self._requeue(
                connection, consumer, max_deliveries=max_deliveries)
        return requeued, self._condemn(condemned)

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        tasks, leases = self.tasks_table, self.store.tables.leases
        with self.store.transaction() as connection:
            now = self.store.now(connection)
            live = set(connection.execute(sa.select(leases.c.consumer).where(
                leases.c.queue == self.name,
                leases.c.expires > now)).scalars())
            owners = connection.execute(sa.select(tasks.c.consumer).where(
                tasks.c.queue == self.name,
                tasks.c.state == 'processing').distinct()).scalars().all()
            condemned = []
            for consumer in self.still_gone(connection, set(owners) - live):
                requeued, doomed = self._requeue(
                    connection, consumer, max_deliveries=max_deliveries)
                report['consumers'].append(consumer)
                report['requeued'] += requeued
                condemned += doomed
            connection.execute(leases.delete().where(
                leases.c.queue == self.name, leases.c.expires <= now))
            dead = self.store.tables.dead
            connection.execute(dead.delete().where(
                dead.c.queue == self.name,
                dead.c.dead_at < time.time() - self.dead_ttl))
            report['batches'] = connection.execute(
                sa.select(tasks.c.batch).where(
                    tasks.c.queue == self.name, tasks.c.state == 'staged',
                    tasks.c.staged_at < now - grace).distinct()
            ).scalars().all()
            self.log.trim(connection)
            self.settlements.trim(connection)
            self.jobs.trim(connection)
            SqlNames.forget_expired(connection, self)
        report['dead'] = self._condemn(condemned)
        for batch in report['batches']:
            self.promote(batch)
        return report

    def _bury(self, connection, row_id, record) -> None:
        """Replace a row by its dead letter; the oldest beyond dead_max
        go."""
        dead = self.store.tables.dead
        connection.execute(self.tasks_table.delete().where(
            self.tasks_table.c.id == row_id))
        connection.execute(dead.insert().values(
            queue=self.name, record=record, dead_at=_dead_at(record)))
        oldest_kept = connection.execute(
            sa.select(dead.c.id).where(dead.c.queue == self.name).order_by(
                dead.c.id.desc()).offset(self.dead_max - 1).limit(1)
        ).scalar()
        if oldest_kept is not None:
            connection.execute(dead.delete().where(
                dead.c.queue == self.name, dead.c.id < oldest_kept))

    def _requeue(self, connection, consumer, count=True, max_deliveries=0):
        """Put the messages in flight of ``consumer`` (or of the one slot
        it names, ``w#1``) back at the head of the line, counting an
        unfinished delivery for each (with ``count``).  Return the number
        requeued and the messages found unfinished ``max_deliveries``
        times, left in flight for ``_condemn``: (slot, message,
        deliveries)."""
        tasks = self.tasks_table
        held = [tasks.c.queue == self.name,
                tasks.c.consumer == owner_of(consumer),
                tasks.c.state == 'processing']
        if '#' in consumer:
            held.append(tasks.c.slot == consumer)
        self.held.forget(consumer)
        if count:
            connection.execute(tasks.update().where(*held).values(
                deliveries=tasks.c.deliveries + 1))
        rows = connection.execute(sa.select(
            tasks.c.id, tasks.c.slot, tasks.c.message, tasks.c.task_id,
            tasks.c.deliveries).where(*held)).all()
        condemned = [(row.slot, row.message, row.deliveries) for row in rows
                     if max_deliveries and row.deliveries >= max_deliveries]
        back = [row for row in rows
                if not max_deliveries or row.deliveries < max_deliveries]
        if back:
            connection.execute(tasks.update().where(
                tasks.c.id.in_([row.id for row in back])).values(
                state='ready', slot=None, consumer=None))
            self.log.update(connection, [row.task_id for row in back],
                            state='queued', consumer='')
            self.store.wakeups.notify()
        return len(back), condemned

    def _condemn(self, condemned) -> int:
        """Bury the messages ``_requeue`` found unfinished too often (each
        in a transaction of its own); return how many."""
        for slot, message, deliveries in condemned:
            self.bury_unusable(slot, message, unfinished_reason(deliveries))
        return len(condemned)

    def _next_due(self, connection) -> float | None:
        """Seconds until the next retry falls due, if one is waiting."""
        tasks = self.tasks_table
        now = self.store.dialect.now()
        due = connection.execute(self._statement(
            'next due', lambda: sa.select(sa.func.min(tasks.c.due) - now)
            .where(tasks.c.queue == sa.bindparam('b_queue'),
                   tasks.c.state == 'ready', tasks.c.due > now)),
            {'b_queue': self.name}).scalar()
        return None if due is None else float(due)


def _dead_at(record: bytes) -> float:
    """When a dead letter died, by its record; 0 (the sweep forgets it)
    when the record does not say."""
    try:
        return float(DeadLetter.decode(record).dead_at)
    except (ValueError, TypeError, KeyError):
        return 0.0
