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


def enqueue(push: Callable[[int], None], n: int) -> tuple[float, float]:
    """Seconds to enqueue ``n`` jobs, after one untimed warm-up job, and
    the bytes of Redis memory each of them takes while it waits."""
    server.flush()
    push(1)
    memory = server.used_memory()
    start = time.perf_counter()
    push(n)
    seconds = time.perf_counter() - start
    return seconds, (server.used_memory() - memory) / n


def drain(worker: Worker, push: Callable[[int], None],
          n: int) -> tuple[float, server.Usage]:
    """Enqueue ``n`` jobs, then time one worker through them.

    Seconds from the first job's stamp to the last one's (worker start-up
    is not counted), and what enqueueing and draining cost the server,
    counted until the last job ran (not the worker's stop).
    """
    server.flush()
    with probe.Probe.create(n) as jobs:
        counter = server.UsageCounter()
        push(n)
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
