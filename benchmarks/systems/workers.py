"""Worker processes: started as real subprocesses, watched, stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager

from systems import probe

#: Seconds a worker may take to start, or a drain may go without progress.
STALL_TIMEOUT = 60.0

BENCHMARKS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Worker:
    """How to start one worker process (one thread) of a system."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.argv = argv
        self.env = env or {}

    @contextmanager
    def running(self, probe_path: str | None = None, processes: int = 1):
        """Run ``processes`` copies of the worker, recording into
        ``probe_path``; stop them on exit.

        Each gets its own session so that stopping it reaches any children
        it forks (``dramatiq`` runs its worker in a child), and the
        ``benchmarks`` directory on ``PYTHONPATH`` so that it can import the
        job code of ``systems.<name>``.
        """
        env = dict(os.environ, **self.env)
        if probe_path is not None:
            env[probe.ENV] = probe_path
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [BENCHMARKS_DIR, os.environ.get('PYTHONPATH')]))
        with ExitStack() as stack:
            logs = [stack.enter_context(tempfile.TemporaryFile())
                    for _ in range(processes)]
            started: list[subprocess.Popen] = []
            stack.callback(_stop, started)
            for log in logs:
                started.append(subprocess.Popen(
                    self.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True))
            yield _Running(list(zip(started, logs, strict=True)))


class _Running:
    def __init__(self, processes: list[tuple[subprocess.Popen, object]]):
        self.processes = processes

    def wait(self, progress: Callable[[], int], goal: int,
             interval: float) -> None:
        """Poll ``progress()`` until it reaches ``goal``.

        Raises when a worker exits, or when progress stops for
        :data:`STALL_TIMEOUT` seconds (a lost job, a hung worker).
        """
        done = progress()
        deadline = time.monotonic() + STALL_TIMEOUT
        while done < goal:
            for process, log in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(_report(
                        process, log,
                        f'exited with status {process.returncode}'))
            if time.monotonic() > deadline:
                process, log = self.processes[0]
                raise RuntimeError(_report(
                    process, log, f'made no progress for {STALL_TIMEOUT:.0f}s '
                                  f'({done} of {goal})'))
            time.sleep(interval)
            now_done = progress()
            if now_done > done:
                deadline = time.monotonic() + STALL_TIMEOUT
            done = now_done


def _report(process: subprocess.Popen, log, what: str) -> str:
    log.seek(0)
    tail = log.read().decode(errors='replace')[-2000:]
    return f'worker {" ".join(process.args)} {what}; output:\n{tail}'


def _stop(processes: list[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM (each tool's graceful stop) to all at once, SIGKILL to those
    that take too long."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        processes = [process for process in processes
                     if not _exited(process, deadline)]


def _exited(process: subprocess.Popen, deadline: float) -> bool:
    try:
        process.wait(max(0.0, deadline - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False
