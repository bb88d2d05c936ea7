"""huey 3: ``RedisHuey`` and ``huey_consumer --workers 1 --worker-type thread``.

Defaults otherwise: the consumer blocks on ``BRPOP`` (``blocking=True``).
Results are off, like the other peers' (the no-op returns nothing anyway).
"""
from __future__ import annotations

import sys

from huey import RedisHuey

from systems import measure, probe

huey = RedisHuey('bench', url=measure.redis_url(), results=False)


@huey.task()
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


WORKER = measure.Worker([
    sys.executable, '-m', 'huey.bin.huey_consumer', 'systems.huey.huey',
    '--workers', '1', '--worker-type', 'thread', '--quiet'])
push = measure.one_by_one(noop)


def enqueue(n: int) -> float:
    return measure.enqueue(push, n)


def drain(n: int) -> tuple[float, int]:
    return measure.drain(WORKER, push, n)


def latency(m: int, idle: float) -> list[float]:
    return measure.latency(WORKER, noop, m, idle)
