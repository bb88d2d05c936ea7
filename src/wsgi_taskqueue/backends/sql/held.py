"""Which rows the slots of this process hold, as their reserves took them.

An acknowledgement names a message; the row holding it is found by its id
when the reserve that took it ran in this process, so the common case (one
message, acknowledged by the slot that took it) is one ``DELETE`` whose
conditions still require that the slot holds the row.  When the row is not
there any more (the sweep requeued it) or the message was taken elsewhere
(another process of the same consumer name), the queue looks the slot's
rows up by message, as it must anyway for a retry or a burial.
"""
from __future__ import annotations

import sqlalchemy as sa

from ..base import owner_of

__all__ = ['HeldRows', 'Holding']


class HeldRows:
    """slot -> message -> the ids of the rows taken for it, oldest first.

    Each slot is one thread's; different slots touch different entries."""

    def __init__(self):
        self._ids: dict[str, dict[bytes, list[int]]] = {}

    def took(self, slot: str, rows) -> None:
        """``rows`` (id, message) were reserved into ``slot``."""
        held = self._ids.setdefault(slot, {})
        for row in rows:
            held.setdefault(bytes(row.message), []).append(row.id)

    def claim(self, slot: str, message: bytes) -> int | None:
        """The id of the oldest row taken for ``message`` in ``slot``, no
        longer remembered; None when there is none."""
        held = self._ids.get(slot)
        ids = held and held.get(message)
        if not ids:
            return None
        row_id = ids.pop(0)
        if not ids:
            del held[message]
        return row_id

    def forget(self, consumer: str) -> None:
        """Forget the rows of ``consumer`` (every slot of it, or the one
        slot it names): they went back to the queue."""
        for slot in list(self._ids):
            if slot == consumer or owner_of(slot) == consumer:
                self._ids.pop(slot, None)


class Holding:
    """Mixed into SqlQueue: the rows a slot holds, and their
    acknowledgement."""

    def _finish(self, connection, slot, done) -> bool:
        """Acknowledge ``done`` ((message, Report) pairs) in ``slot``;
        True when that made tasks pending (callbacks, dependents)."""
        if not done:
            return False
        if len(done) == 1:
            [(message, report)] = done
            row_id = self.held.claim(slot, message)
            finished = row_id is not None and self.store.dialect.finish_one(
                connection, row_id, self._holder(slot), report,
                recorded=report is not None and bool(self.status_ttl))
            if finished:
                held, waited_on = finished
                if held:
                    return self.settlements.settled(
                        connection, [report], 'done',
                        {report.task_id} if waited_on and report else set())
        held = self._held(connection, slot)
        finished, reports, waited_on = [], [], set()
        for message, report in done:
            self.held.claim(slot, message)
            if held.get(message):
                row_id, waited = held[message].pop(0)
                finished.append(row_id)
                reports.append(report)
                if waited and report is not None:
                    waited_on.add(report.task_id)
        if not finished:
            return False
        connection.execute(self._statement(
            'delete', lambda: self.tasks_table.delete().where(
                self.tasks_table.c.id.in_(
                    sa.bindparam('b_ids', expanding=True)))),
            {'b_ids': finished})
        self.log.outcome(connection, reports, 'done', 'done')
        return self.settlements.settled(connection, reports, 'done',
                                        waited_on)

    def _holding(self):
        """The conditions of a row held by the slot ``b_slot``."""
        tasks = self.tasks_table
        return (tasks.c.queue == sa.bindparam('b_queue'),
                tasks.c.consumer == sa.bindparam('b_consumer'),
                tasks.c.slot == sa.bindparam('b_slot'),
                tasks.c.state == 'processing')

    def _holder(self, slot) -> dict:
        return {'b_queue': self.name, 'b_consumer': owner_of(slot),
                'b_slot': slot}

    def _held(self, connection, slot) -> dict:
        """message -> (id, whether tasks wait for it) of the rows in
        ``slot``, oldest first."""
        tasks = self.tasks_table
        held: dict = {}
        for row in connection.execute(self._statement(
                'held', lambda: sa.select(
                    tasks.c.id, tasks.c.message, tasks.c.waited_on).where(
                    *self._holding()).order_by(tasks.c.id)),
                self._holder(slot)):
            held.setdefault(bytes(row.message), []).append(
                (row.id, row.waited_on))
        return held

    def _find(self, connection, slot, message):
        """The id of a row of ``slot`` holding ``message``, or None."""
        self.held.claim(slot, message)
        rows = self._held(connection, slot).get(message)
        return rows[0][0] if rows else None
