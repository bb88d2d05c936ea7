"""Floor (b): floor (a) with every command pipelined in batches of 100.

What a queue could reach by batching round trips on both sides; the
latency of a single job is floor (a)'s, so this row has none.
"""
from __future__ import annotations

import sys

from systems import floor
from systems.workers import Worker

BATCH = 100

WORKER = Worker([sys.executable, '-m', 'systems.floor', str(BATCH)])


def push(n: int) -> None:
    pipe = floor.client.pipeline(transaction=False)
    for start in range(0, n, BATCH):
        for i in range(start, min(start + BATCH, n)):
            pipe.lpush(floor.QUEUE, floor.encode(i, 0.0))
        pipe.execute()
