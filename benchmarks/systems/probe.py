"""Where the no-op jobs record that they ran.

A memory-mapped file shared by the harness and the worker process: job ``i``
adds one to ``runs[i]`` and stores ``stamps[i] = time.time() - sent``.
Drain jobs are sent with ``sent=0`` (the stamp is the wall-clock time of the
run); latency jobs carry their enqueue time (the stamp is the delay).

Why shared memory: recording must cost every system the same and far less
than any queue's own per-job work. An increment and a store into a mapped
page cost well under a microsecond, with no system call and no Redis round
trip (a Redis INCR would add a sizeable share of the floor's own cost). The
per-job slots also prove exactly-once execution, not just a matching total.
"""
from __future__ import annotations

import mmap
import os
import tempfile
import time

#: Environment variable naming the probe file inside a worker process.
ENV = 'BENCH_PROBE'

_SLOT = 8 + 4  # one float64 stamp plus one uint32 run count per job


class Probe:
    """A view onto a probe file of ``n`` job slots."""

    def __init__(self, path: str):
        self.path = path
        with open(path, 'r+b') as f:
            self._map = mmap.mmap(f.fileno(), 0)
        self.size = len(self._map) // _SLOT
        view = memoryview(self._map)
        # Stamps first: the float64 array then starts 8-byte aligned.
        self.stamps = view[:8 * self.size].cast('d')
        self.runs = view[8 * self.size:].cast('I')

    @classmethod
    def create(cls, n: int) -> Probe:
        """A new zeroed probe file for jobs ``0 .. n-1``."""
        fd, path = tempfile.mkstemp(prefix='bench-probe-')
        os.ftruncate(fd, n * _SLOT)
        os.close(fd)
        return cls(path)

    def record(self, i: int, sent: float) -> None:
        self.runs[i] += 1
        self.stamps[i] = time.time() - sent

    def ran(self) -> int:
        """How many distinct jobs have run at least once."""
        return self.size - self.runs.tolist().count(0)

    def check_once(self) -> None:
        """Raise unless every job ran exactly once."""
        wrong = [(i, runs) for i, runs in enumerate(self.runs) if runs != 1]
        if wrong:
            i, runs = wrong[0]
            raise RuntimeError(f'{len(wrong)} of {self.size} jobs did not run '
                               f'exactly once (job {i} ran {runs} times)')

    def close(self) -> None:
        self.stamps.release()
        self.runs.release()
        self._map.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
        os.unlink(self.path)


_worker_probe: Probe | None = None


def record(i: int, sent: float) -> None:
    """The body of every no-op job: note that job ``i`` ran, and when."""
    global _worker_probe
    if _worker_probe is None:
        _worker_probe = Probe(os.environ[ENV])
    _worker_probe.record(i, sent)
