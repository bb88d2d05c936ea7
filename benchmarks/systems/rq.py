"""RQ: ``Queue.enqueue`` and ``rq worker --worker-class SimpleWorker``.

``SimpleWorker`` runs jobs in the worker process itself (the default
``Worker`` forks per job). Defaults otherwise, results kept as RQ keeps them.
"""
from __future__ import annotations

import sys

import redis
from rq import Queue

from systems import measure, probe, server
from systems.workers import Worker

queue = Queue('bench', connection=redis.Redis.from_url(server.url()))


def noop(i: int, sent: float) -> None:
    probe.record(i, sent)


def send(i: int, sent: float) -> None:
    queue.enqueue(noop, i, sent)


push = measure.one_by_one(send)
WORKER = Worker([
    sys.executable, '-m', 'rq.cli', 'worker', '--quiet',
    '--worker-class', 'rq.worker.SimpleWorker',
    '--url', server.url(), 'bench'])
