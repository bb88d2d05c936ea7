"""Celery 5: Redis broker, no result backend, ``worker --pool solo``.

Defaults otherwise (prefetch multiplier 4, ack on receipt); gossip, mingle
and heartbeat are off, as commonly advised with Redis: they only exchange
worker events and slow the start.
"""
from __future__ import annotations

import sys

from celery import Celery

from systems import measure, probe, server
from systems.workers import Worker

app = Celery('bench', broker=server.url(), set_as_current=False)
app.conf.update(task_default_queue='bench', task_ignore_result=True,
                broker_connection_retry_on_startup=True)


@app.task
def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


send = noop.delay
push = measure.one_by_one(send)
WORKER = Worker([
    sys.executable, '-m', 'celery', '--app', 'systems.celery', 'worker',
    '--pool', 'solo', '--concurrency', '1', '--loglevel', 'WARNING',
    '--without-gossip', '--without-mingle', '--without-heartbeat'])
