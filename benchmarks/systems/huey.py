"""huey 3: ``RedisHuey`` and ``huey_consumer --workers 1 --worker-type thread``.

Defaults otherwise: the consumer blocks on ``BRPOP`` (``blocking=True``).
Results are off, like the other peers' (the no-op returns nothing anyway).
"""
from __future__ import annotations

import sys

from huey import RedisHuey

from systems import measure, probe, server
from systems.workers import Worker

huey = RedisHuey('bench', url=server.url(), results=False)


@huey.task()
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


send = noop
push = measure.one_by_one(send)
WORKER = Worker([
    sys.executable, '-m', 'huey.bin.huey_consumer', 'systems.huey.huey',
    '--workers', '1', '--worker-type', 'thread', '--quiet'])
