"""The SQL queue: PostgreSQL, MariaDB/MySQL, or a SQLite file.

Tables (``P`` is ``table_prefix``, ``taskqueue_`` unless set; every row
but the version's carries the queue's name in ``queue``):

============= ================================== =============================
table         written by                         emptied by
============= ================================== =============================
P tasks       stage (state ``staged``, its       ack (deleted), bury (moved to
              batch id); promote (``ready``,     P dead), purge, reset;
              due = the promotion's time);       discard (staged rows)
              reserve (``processing``, slot and
              consumer); retry (``ready``,
              ``delayed``, due = when); requeue
              (``ready`` again, ``deliveries``
              + 1)
P dead        bury, a requeue that found a task  requeue_dead, purge_dead,
              unfinished ``max_deliveries``      reset
              times (the dead-letter record)
P status      stage (one row per task), every    the sweep, past status_ttl or
              move of the task (its state)       beyond status_max
P attempts    ack, retry, bury: each attempt's   with its status row
              status line, time, duration
P minutes     ack, retry, bury: outcomes per     the sweep, after an hour
              minute (done, retried, dead)
P leases      acquire: consumer -> token,        release, the sweep once
              expiry, info (host, pid, ...)      expired
P version     ``wsgi-taskqueue init``            never
============= ================================== =============================

A task is never in two rows and never in none: each move is one database
transaction (with its status row and minute count).  Consumers take ready
rows in (due, id) order: a batch is due when it was promoted (the
database's clock), a retry when it falls due, and a requeued task keeps
its place at the head of the line.  PostgreSQL and MariaDB/MySQL take
rows with ``FOR UPDATE SKIP LOCKED``, so consumers never wait for each
other; SQLite serializes writers (``BEGIN IMMEDIATE``, WAL).  Leases and
staging times use the database's clock, so hosts whose clocks disagree
still agree on who is gone.
"""
from .queue import SqlQueue

__all__ = ['SqlQueue']
