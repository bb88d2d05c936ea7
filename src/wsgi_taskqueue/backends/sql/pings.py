"""Pinging pooled connections that may have gone stale, and only those.

A connection that a database restart closed must be replaced before a
transaction uses it, not failed with, so that the first commit after the
restart succeeds.  SQLAlchemy's ``pool_pre_ping`` asks the database
before every use: one more round trip per transaction, about a tenth of a
consumer's time per task.  A connection back in the pool for less than
``IDLE`` seconds is not asked: a restart takes longer than that, and a
transaction that meets the restart anyway fails with a disconnect, upon
which SQLAlchemy discards every connection the pool had.
"""
from __future__ import annotations

import time

import sqlalchemy as sa

__all__ = ['ping_idle_connections', 'IDLE']

#: Seconds in the pool after which a connection is pinged before use.
IDLE = 1.0


def ping_idle_connections(engine) -> None:
    """Have ``engine`` ping a connection before its use when it rested in
    the pool for more than ``IDLE`` seconds (and replace it when the ping
    fails)."""

    @sa.event.listens_for(engine, 'checkin')
    def rested(_dbapi_connection, record):
        record.info['returned'] = time.monotonic()

    @sa.event.listens_for(engine, 'checkout')
    def taken(dbapi_connection, record, _proxy):
        returned = record.info.pop('returned', None)
        if returned is None or time.monotonic() - returned <= IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool connects anew
            raise sa.exc.DisconnectionError(str(exc)) from exc
