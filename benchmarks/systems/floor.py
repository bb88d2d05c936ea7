"""Floor (a): the least a reliable Redis list queue can do per job.

Enqueue is one ``LPUSH``; the consumer takes a job with one ``LMOVE`` onto
a processing list (where a crash would leave it for recovery), calls the
no-op and removes it with one ``LREM``: three round trips per job, no
serialization beyond ``"<i> <sent>"``. An idle consumer parks on
``BLMOVE``, which makes its latency the floor for a woken consumer.

Run as ``python -m systems.floor [BATCH]``: the worker process.
"""
from __future__ import annotations

import sys

import redis

from systems import measure, probe, server
from systems.workers import Worker

QUEUE = 'floor:queue'
PROCESSING = 'floor:processing'

client = redis.Redis.from_url(server.url())


def encode(i: int, sent: float) -> bytes:
    return b'%d %r' % (i, sent)


def send(i: int, sent: float) -> None:
    client.lpush(QUEUE, encode(i, sent))


def burst(n: int) -> None:
    """All ``n`` jobs in one ``LPUSH``."""
    client.lpush(QUEUE, *(encode(i, 0.0) for i in range(n)))


def run(message: bytes) -> None:
    i, sent = message.split()
    probe.record(int(i), float(sent))


def consume(batch: int) -> None:
    """Forever: take up to ``batch`` jobs per round trip, run, remove them.

    With ``batch`` above one the takes and the removals are pipelined.
    When a take finds the queue empty the consumer parks on ``BLMOVE``.
    """
    take = client.pipeline(transaction=False)
    remove = client.pipeline(transaction=False)
    while True:
        for _ in range(batch):
            take.lmove(QUEUE, PROCESSING, 'RIGHT', 'LEFT')
        messages = [m for m in take.execute() if m is not None]
        if not messages:
            messages = [client.blmove(QUEUE, PROCESSING, 0, 'RIGHT', 'LEFT')]
        for message in messages:
            run(message)
            remove.lrem(PROCESSING, 1, message)
        remove.execute()


push = measure.one_by_one(send)
WORKER = Worker([sys.executable, '-m', 'systems.floor', '1'])


if __name__ == '__main__':
    consume(int(sys.argv[1]))
