"""RQ: ``Queue.enqueue`` and ``rq worker --worker-class SimpleWorker``.

``SimpleWorker`` runs jobs in the worker process itself (the default
``Worker`` forks per job). Defaults otherwise, results kept as RQ keeps them.
"""
from __future__ import annotations

import sys

import redis
from rq import Queue

from systems import measure, probe

queue = Queue('bench', connection=redis.Redis.from_url(measure.redis_url()))


def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


def send(i: int, sent: float) -> None:
    queue.enqueue(noop, i, sent)


WORKER = measure.Worker([
    sys.executable, '-m', 'rq.cli', 'worker', '--quiet',
    '--worker-class', 'rq.worker.SimpleWorker',
    '--url', measure.redis_url(), 'bench'])
push = measure.one_by_one(send)


def enqueue(n: int) -> float:
    return measure.enqueue(push, n)


def drain(n: int) -> tuple[float, int]:
    return measure.drain(WORKER, push, n)


def latency(m: int, idle: float) -> list[float]:
    return measure.latency(WORKER, send, m, idle)
