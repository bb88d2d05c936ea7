"""Dramatiq: ``RedisBroker`` and ``dramatiq --processes 1 --threads 1``.

Defaults otherwise, so the worker prefetches two messages (twice its
threads) and, when the queue is empty, polls Redis with an exponential
back-off of up to one second (``dramatiq_worker_timeout``).
"""
from __future__ import annotations

import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from systems import measure, probe

dramatiq.set_broker(RedisBroker(url=measure.redis_url(), namespace='bench'))


@dramatiq.actor(queue_name='bench')
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


def worker(**env: str) -> measure.Worker:
    """The worker command; ``env`` sets its ``dramatiq_*`` tunables."""
    return measure.Worker([
        sys.executable, '-m', 'dramatiq', '--processes', '1', '--threads', '1',
        'systems.dramatiq'], env)


WORKER = worker()
push = measure.one_by_one(noop.send)


def enqueue(n: int) -> float:
    return measure.enqueue(push, n)


def drain(n: int) -> tuple[float, int]:
    return measure.drain(WORKER, push, n)


def latency(m: int, idle: float) -> list[float]:
    return measure.latency(WORKER, noop.send, m, idle)
