"""Celery 5: Redis broker, no result backend, ``worker --pool solo``.

Defaults otherwise (prefetch multiplier 4, ack on receipt); gossip, mingle
and heartbeat are off, as commonly advised with Redis: they only exchange
worker events and slow the start.
"""
from __future__ import annotations

import sys

from celery import Celery

from systems import measure, probe

app = Celery('bench', broker=measure.redis_url(), set_as_current=False)
app.conf.update(task_default_queue='bench', task_ignore_result=True,
                broker_connection_retry_on_startup=True)


@app.task
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


WORKER = measure.Worker([
    sys.executable, '-m', 'celery', '--app', 'systems.celery', 'worker',
    '--pool', 'solo', '--concurrency', '1', '--loglevel', 'WARNING',
    '--without-gossip', '--without-mingle', '--without-heartbeat'])
push = measure.one_by_one(noop.delay)


def enqueue(n: int) -> float:
    return measure.enqueue(push, n)


def drain(n: int) -> tuple[float, int]:
    return measure.drain(WORKER, push, n)


def latency(m: int, idle: float) -> list[float]:
    return measure.latency(WORKER, noop.delay, m, idle)
