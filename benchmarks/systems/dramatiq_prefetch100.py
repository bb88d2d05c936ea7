"""Dramatiq as in :mod:`systems.dramatiq`, but prefetching 100 messages.

Shows how much of Dramatiq's drain rate is its default prefetch of two
(``dramatiq_queue_prefetch``); enqueueing is the same code path.
"""
from __future__ import annotations

from systems import dramatiq, measure

WORKER = dramatiq.worker(dramatiq_queue_prefetch='100')


def enqueue(n: int) -> float:
    return measure.enqueue(dramatiq.push, n)


def drain(n: int) -> tuple[float, int]:
    return measure.drain(WORKER, dramatiq.push, n)


def latency(m: int, idle: float) -> list[float]:
    return measure.latency(WORKER, dramatiq.noop.send, m, idle)
