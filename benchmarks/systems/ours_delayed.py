"""Ours, draining tasks that were scheduled for later (``countdown``) and
fall due together: every task of the drain is added with one ``eta``, far
enough ahead that all of them wait among the delayed tasks, and the
worker moves them to pending as they fall due (100 per reservation) and
runs them.  The drain is timed from the first task's run to the last, so
the wait for the due time is not counted; compare with ``ours``'s drain.
"""
from __future__ import annotations

import datetime
import time

import transaction

from systems import ours
from systems.ours_app import add

#: Enqueueing commits 100 tasks per transaction; the due time leaves this
#: much time per task and a second more, so that none is due on arrival.
SECONDS_PER_TASK = 0.001


def push(n: int) -> None:
    due = time.time() + 1 + n * SECONDS_PER_TASK
    eta = datetime.datetime.fromtimestamp(due, datetime.timezone.utc)
    for start in range(0, n, 100):
        with transaction.manager:
            for i in range(start, min(start + 100, n)):
                add(i, 0.0, eta=eta)
    if time.time() >= due:
        raise RuntimeError('enqueueing took longer than the due time left '
                           'for it: some tasks were pending on arrival')
    if ours.queue.counts()['delayed'] != n:
        raise RuntimeError('not every task was scheduled')


WORKER = ours.worker(prefetch=1)
MEASURES = ('drain',)
