"""The measurements, written once for every system.

A system supplies how to enqueue jobs and how to start its worker (see
:mod:`systems`); the procedures, clocks and deadlines here are then the
same for all of them. Each starts from an empty server and raises unless
every job it ran ran exactly once.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from systems import probe, server
from systems.workers import Worker


def one_by_one(send: Callable[[int, float], object]) -> Callable[[int], None]:
    """A ``push`` that calls the per-job enqueue API once per job."""
    def push(n: int) -> None:
        for i in range(n):
            send(i, 0.0)
    return push


def enqueue(push: Callable[[int], None], n: int
            ) -> tuple[float, float, server.Usage]:
    """Seconds to enqueue ``n`` jobs, after one untimed warm-up job, the
    bytes of Redis memory each of them takes while it waits, and what
    enqueueing one cost the server."""
    server.flush()
    push(1)
    memory = server.data_memory()
    counter = server.UsageCounter()
    start = time.perf_counter()
    push(n)
    seconds = time.perf_counter() - start
    usage = counter.per_job(n)
    return seconds, (server.data_memory() - memory) / n, usage


def drain(worker: Worker, push: Callable[[int], None],
          n: int) -> tuple[float, server.Usage]:
    """Enqueue ``n`` jobs, then time one worker through them.

    Seconds from the first job's stamp to the last one's (worker start-up
    is not counted), and what draining cost the server, counted from the
    worker's start until the last job ran (not the worker's stop).
    """
    server.flush()
    with probe.Probe.create(n) as jobs:
        push(n)
        counter = server.UsageCounter()
        with worker.running(jobs.path) as running:
            running.wait(jobs.ran, n, interval=0.01)
            usage = counter.per_job(n)
        jobs.check_once()
        return max(jobs.stamps) - min(jobs.stamps), usage


def burst_drain(worker: Worker, burst: Callable[[int], None], n: int,
                processes: int) -> float:
    """Seconds ``processes`` workers take through ``n`` jobs.

    The workers start first, on an empty queue; once all of them wait for
    work, ``burst`` makes the jobs pending at once, so that every worker
    takes part from the first job on.
    """
    server.flush()
    with probe.Probe.create(n) as jobs:
        with worker.running(jobs.path, processes) as running:
            running.wait(server.blocked_clients, processes, interval=0.01)
            burst(n)
            running.wait(jobs.ran, n, interval=0.01)
        jobs.check_once()
        return max(jobs.stamps) - min(jobs.stamps)


def latency(worker: Worker, send: Callable[[int, float], object],
            m: int, idle: float) -> list[float]:
    """Milliseconds from enqueue to start of ``m`` jobs sent one at a time.

    Job 0 is a warm-up that also tells when the worker is up. Each job is
    sent ``idle`` seconds after the previous one has run: with no pause the
    worker has just finished a job (its code is hot, and a polling worker
    polls at its fastest); a long one lets it and the machine go idle.
    """
    server.flush()
    with probe.Probe.create(m + 1) as jobs:
        with worker.running(jobs.path) as running:
            for i in range(m + 1):
                if i and idle:
                    time.sleep(idle)
                send(i, time.time())
                running.wait(lambda i=i: jobs.runs[i], 1, interval=0.0005)
        jobs.check_once()
        return [stamp * 1000 for stamp in jobs.stamps[1:]]


def job_completion(worker: Worker, job: Callable[[int, int, bool], object],
                   close: Callable[[object], None], n: int,
                   m: int) -> tuple[list[float], list[float]]:
    """Milliseconds from what completes a job of ``n`` tasks to the start
    of its on_complete task, for ``m`` jobs of each kind in turn: (from
    the start of its last task, from the commit of its close).

    Job ``k`` is jobs ``k * (n + 1)`` onwards of one probe: its ``n``
    tasks, then its on_complete.  ``job(first, n, closed)`` commits the
    job and its tasks while the worker runs, and returns it.  Even jobs
    are ``closed`` with their last tasks, so they complete in the step
    that settles the last one: timed are that task's end, its
    acknowledgement (which queues the on_complete task), and the
    on_complete's way to the worker.  Odd ones are closed by ``close(job)``
    once all their tasks ran: timed from just before that commit.  The
    next job is sent once the previous one's on_complete has run.
    """
    server.flush()
    size = n + 1
    by_task, by_close = [], []
    with probe.Probe.create(2 * m * size) as jobs:
        with worker.running(jobs.path) as running:
            for k in range(2 * m):
                first, last = k * size, k * size + n
                created = job(first, n, k % 2 == 0)
                if k % 2:
                    running.wait(lambda first=first: min(
                        jobs.runs[first:first + n]), 1, interval=0.0005)
                    closing = time.time()
                    close(created)
                running.wait(lambda last=last: jobs.runs[last], 1,
                             interval=0.0005)
                if k % 2:
                    by_close.append((jobs.stamps[last] - closing) * 1000)
                else:
                    by_task.append((jobs.stamps[last]
                                    - max(jobs.stamps[first:last])) * 1000)
        jobs.check_once()
        return by_task, by_close
