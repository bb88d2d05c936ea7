"""Dramatiq: ``RedisBroker`` and ``dramatiq --processes 1 --threads 1``.

Defaults otherwise, so the worker prefetches two messages (twice its
threads) and, when the queue is empty, polls Redis with an exponential
back-off of up to one second (``dramatiq_worker_timeout``).
"""
from __future__ import annotations

import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from systems import measure, probe, server
from systems.workers import Worker

dramatiq.set_broker(RedisBroker(url=server.url(), namespace='bench'))


@dramatiq.actor(queue_name='bench')
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


def worker(**env: str) -> Worker:
    """The worker command; ``env`` sets its ``dramatiq_*`` tunables."""
    return Worker([
        sys.executable, '-m', 'dramatiq', '--processes', '1', '--threads', '1',
        'systems.dramatiq'], env)


send = noop.send
push = measure.one_by_one(send)
WORKER = worker()
