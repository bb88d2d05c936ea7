"""Ours, completing jobs of many tasks (``taskqueue.job``): each job's
tasks are committed 100 per transaction while the worker runs, the last
of them with the job's close, or the close comes once they all ran; the
rows time the last task's start, or the close's commit, to the
on_complete task's start (see ``measure.job_completion``).  Compare with
``ours``'s latency: one task's enqueue to its start.
"""
from __future__ import annotations

import transaction

from wsgi_taskqueue import taskqueue

from systems import ours
from systems.ours_app import add

#: Tasks per transaction.
CHUNK = 100


def job(first: int, n: int, closed: bool) -> taskqueue.Job:
    """A job of the ``n`` tasks of jobs ``first .. first + n - 1``, whose
    on_complete is job ``first + n``; ``closed`` with its last chunk."""
    with transaction.manager:
        created = taskqueue.job(on_complete=f'/job?i={first + n}&sent=0')
    end = first + n
    for start in range(first, end, CHUNK):
        with transaction.manager:
            for i in range(start, min(start + CHUNK, end)):
                add(i, 0.0, job=created)
            if closed and start + CHUNK >= end:
                created.close()
    return created


def close(created: taskqueue.Job) -> None:
    with transaction.manager:
        created.close()


WORKER = ours.worker()
MEASURES = ('job',)
