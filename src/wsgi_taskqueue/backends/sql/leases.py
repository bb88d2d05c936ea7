"""Consumer leases on a SQL queue: who consumes, and who is gone.

A lease's expiry is on the database's clock, so consumers on hosts whose
clocks disagree still agree on who is gone (the sweep, in ``queue.py``,
requeues what the gone ones held, once ``still_gone`` has confirmed under
lock that they are).
"""
from __future__ import annotations

import json

import sqlalchemy as sa

__all__ = ['Leases']


class Leases:
    """Mixed into SqlQueue; see IQueueBackend."""

    def acquire(self, consumer, token, ttl, info=None, gone_pid=None):
        leases = self.store.tables.leases
        mine = (leases.c.queue == self.name, leases.c.consumer == consumer)
        try:
            with self.store.transaction() as connection:
                now = self.store.now(connection)
                held = connection.execute(sa.select(leases).where(
                    *mine).with_for_update()).first()
                if held is not None and held.token != token \
                        and held.expires > now:
                    known = json.loads(held.info)
                    gone = (gone_pid is not None
                            and known.get('pid') == gone_pid
                            and known.get('host') == (info or {}).get('host'))
                    if not gone:
                        return False
                values = {'token': token, 'expires': now + ttl, 'lease': ttl,
                          'info': json.dumps(info or {})}
                if held is None:
                    connection.execute(leases.insert().values(
                        queue=self.name, consumer=consumer, **values))
                else:
                    connection.execute(leases.update().where(*mine).values(
                        **values))
                return True
        except sa.exc.IntegrityError:
            return False  # another token inserted it first

    def release(self, consumer, token):
        leases = self.store.tables.leases
        with self.store.transaction() as connection:
            connection.execute(leases.delete().where(
                leases.c.queue == self.name, leases.c.consumer == consumer,
                leases.c.token == token))

    def still_gone(self, connection, consumers) -> list:
        """Those of ``consumers`` (their leases read expired, or absent)
        whose leases are still expired once locked: a renewal committed
        since the read is seen, one under way waited for, and the tasks of
        a consumer that renewed in time stay its own.  (On SQLite, BEGIN
        IMMEDIATE keeps every other writer out since before the read.)"""
        if not consumers:
            return []
        leases = self.store.tables.leases
        rows = connection.execute(sa.select(
            leases.c.consumer, leases.c.expires).where(
            leases.c.queue == self.name,
            leases.c.consumer.in_(sorted(consumers))).order_by(
            leases.c.consumer).with_for_update()).all()
        now = self.store.now(connection)
        renewed = {row.consumer for row in rows if row.expires > now}
        return sorted(set(consumers) - renewed)

    def consumers(self):
        leases = self.store.tables.leases
        with self.store.transaction() as connection:
            now = self.store.now(connection)
            rows = connection.execute(sa.select(leases).where(
                leases.c.queue == self.name).order_by(
                leases.c.consumer)).all()
        in_flight = self.counts()['processing']
        return [dict(json.loads(row.info), name=row.consumer,
                     alive=row.expires > now,
                     in_flight=in_flight.get(row.consumer, 0),
                     heartbeat_age=max(0.0, now - (row.expires - row.lease)))
                for row in rows]
