"""Operations on jobs of many tasks (``jobs.py``), for operators: what the
``jobs`` and ``job`` commands, the management API and the dashboard share.

As ``admin`` is for tasks: plain functions over registered queues (by
name), returning the dicts ``job_status`` answers (JSON-able), never
printing nor speaking HTTP.
"""
from __future__ import annotations

import heapq
import itertools

from . import admin, jobs
from .registry import get_queue, queues_or_all

__all__ = ['list_jobs', 'find_job', 'close_job']


def list_jobs(queues: list[str] | None = None, offset: int = 0,
              limit: int = 50) -> list[dict]:
    """The jobs of ``queues`` (every queue if None), most recently created
    first: ``limit`` of them after the newest ``offset``."""
    names = queues_or_all(queues)
    if len(names) == 1:
        return get_queue(names[0]).job_list(offset, limit)
    # Each list is newest first already.
    lists = [get_queue(name).job_list(0, offset + limit) for name in names]
    merged = heapq.merge(*lists, key=lambda job: -(job['created'] or 0))
    return list(itertools.islice(merged, offset, offset + limit))


def find_job(job_id: str, queues: list[str] | None = None) -> dict | None:
    """The status of job ``job_id`` in the first of ``queues`` (every
    queue if None) that knows it; None when none does (never created
    there, or its record expired).  InvalidTask if ``job_id`` is not a
    job id."""
    for name in queues_or_all(queues):
        found = jobs.job_status(job_id, queue=name)
        if found is not None:
            return found
    return None


def close_job(job_id: str, queues: list[str] | None = None) -> dict | None:
    """Close job ``job_id`` (found as ``find_job`` finds it) in a
    transaction of its own, committed before this returns: no task may be
    added to it after that, and it completes once none of its tasks is
    unfinished.  Return {'closed': whether this call closed it (False: it
    was closed already), 'job': its status now}; None if it is unknown."""
    found = find_job(job_id, queues)
    if found is None:
        return None
    if found['state'] != 'open':
        return {'closed': False, 'job': found}
    with admin.own_transaction():
        jobs.close_job(found['id'], queue=found['queue'])
    now = get_queue(found['queue']).job_status(found['id'])
    return {'closed': True, 'job': now if now is not None else found}

