"""The three measurements, written once for every system.

A system supplies how to enqueue jobs (``push(n)`` enqueues jobs
``0 .. n-1``; ``send(i, sent)`` enqueues job ``i`` carrying its enqueue
time) and how to start its worker (a :class:`Worker`); the procedures,
clocks and deadlines here are then the same for all of them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Callable

from systems import probe

#: Environment variable holding the URL of the harness's own redis-server.
#: Deliberately no default: a benchmark must never touch someone's 6379.
URL_ENV = 'BENCH_REDIS_URL'

#: Seconds a worker may take to start, or a drain may go without progress.
STALL_TIMEOUT = 60.0

BENCHMARKS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def redis_url() -> str:
    return os.environ[URL_ENV]


def one_by_one(send: Callable[[int, float], object]) -> Callable[[int], None]:
    """A ``push`` that calls the per-job enqueue API once per job."""
    def push(n: int) -> None:
        for i in range(n):
            send(i, 0.0)
    return push


class Worker:
    """How to start one worker process (one thread) of a system."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.argv = argv
        self.env = env or {}

    @contextmanager
    def running(self, probe_path: str):
        """Run the worker, recording into ``probe_path``; stop it on exit.

        The worker gets its own session so that stopping it reaches any
        children it forks (``dramatiq`` runs its worker in a child), and the
        ``benchmarks`` directory on ``PYTHONPATH`` so that it can import the
        job code of ``systems.<name>``.
        """
        env = dict(os.environ, **self.env)
        env[probe.ENV] = probe_path
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [BENCHMARKS_DIR, os.environ.get('PYTHONPATH')]))
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                self.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                yield _Running(process, log)
            finally:
                _stop(process)


class _Running:
    def __init__(self, process: subprocess.Popen, log):
        self.process = process
        self.log = log

    def wait(self, progress: Callable[[], int], goal: int,
             interval: float) -> None:
        """Poll ``progress()`` until it reaches ``goal``.

        Raises when the worker exits, or when progress stops for
        :data:`STALL_TIMEOUT` seconds (a lost job, a hung worker).
        """
        done = progress()
        deadline = time.monotonic() + STALL_TIMEOUT
        while done < goal:
            if self.process.poll() is not None:
                raise RuntimeError(self._report(
                    f'exited with status {self.process.returncode}'))
            if time.monotonic() > deadline:
                raise RuntimeError(self._report(
                    f'made no progress for {STALL_TIMEOUT:.0f}s '
                    f'({done} of {goal} jobs ran)'))
            time.sleep(interval)
            now_done = progress()
            if now_done > done:
                deadline = time.monotonic() + STALL_TIMEOUT
            done = now_done

    def _report(self, what: str) -> str:
        self.log.seek(0)
        tail = self.log.read().decode(errors='replace')[-2000:]
        return f'worker {" ".join(self.process.args)} {what}; output:\n{tail}'


def _stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM (each tool's graceful stop), SIGKILL if that takes too long."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def enqueue(push: Callable[[int], None], n: int) -> float:
    """Seconds to enqueue ``n`` jobs, after one untimed warm-up job."""
    push(1)
    start = time.perf_counter()
    push(n)
    return time.perf_counter() - start


def drain(worker: Worker, push: Callable[[int], None],
          n: int) -> tuple[float, int]:
    """Enqueue ``n`` jobs, then time one worker through them.

    Seconds from the first job's stamp to the last one's (worker start-up
    is not counted), and the total number of executions: as every job has
    run at least once when the wait ends, ``n`` means each ran exactly once.
    """
    with probe.Probe.create(n) as jobs:
        push(n)
        with worker.running(jobs.path) as running:
            running.wait(jobs.ran, n, interval=0.01)
        return max(jobs.stamps) - min(jobs.stamps), sum(jobs.runs)


def latency(worker: Worker, send: Callable[[int, float], object],
            m: int, idle: float) -> list[float]:
    """Milliseconds from enqueue to start of ``m`` jobs sent one at a time.

    Job 0 is a warm-up that also tells when the worker is up. Each job is
    sent ``idle`` seconds after the previous one has run: with no pause the
    worker has just finished a job (its code is hot, and a polling worker
    polls at its fastest); a long one lets it and the machine go idle.
    """
    with probe.Probe.create(m + 1) as jobs:
        with worker.running(jobs.path) as running:
            for i in range(m + 1):
                if i and idle:
                    time.sleep(idle)
                send(i, time.time())
                running.wait(lambda: jobs.runs[i], 1, interval=0.0005)
        return [stamp * 1000 for stamp in jobs.stamps[1:]]
