"""Draining a queue for a while, in the caller's thread: the management
API's ``POST /queues/{queue}/drain``, which a cron job calls on hosts where
no long-running worker may run.

A drain is an ordinary ``Consumer`` under a name of its own, started for
the drain and stopped after it: it takes a lease like any consumer, so
what it holds in flight when its process dies is requeued by a sweep, and
drains of one queue that run at once (or beside workers) share its tasks
as any consumers do, each task going to one of them.  It stops at the
first of: ``runtime`` seconds are over, ``max_tasks`` tasks were taken,
the queue has nothing pending and the drain nothing in flight (tasks
waiting for a retry or their due time are left for a later drain).  Then
it waits for its tasks in flight, up to the consumer's ``stop_timeout``.
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
import time

from .consumer import Consumer, default_consumer_name
from .outcome import Outcome
from .prefetch import TaskBudget
from .serve import drained

__all__ = ['drain_queue', 'DrainReport']

log = logging.getLogger(__name__)

#: How a report names each outcome.
_REPORTED = {Outcome.DONE: 'done', Outcome.REDIRECTED: 'redirected',
             Outcome.RETRY: 'retried', Outcome.DEAD: 'dead'}
#: How often a drain looks whether it is done: a backend round trip.
_CHECK_INTERVAL = 0.1


@dataclasses.dataclass
class DrainReport:
    """What one drain did."""

    queue: str
    #: Messages settled, by outcome: done, redirected (3xx, done too),
    #: retried (delayed for a later attempt), dead (dead-lettered).
    outcomes: dict
    #: Seconds the drain took, waiting for its last tasks included.
    runtime: float
    #: Why it stopped: ``empty``, ``runtime`` or ``max_tasks``.
    stopped_because: str

    @property
    def tasks(self) -> int:
        return sum(self.outcomes.values())

    def as_json(self) -> dict:
        return {'queue': self.queue, 'tasks': self.tasks,
                'outcomes': self.outcomes, 'runtime': round(self.runtime, 3),
                'stopped_because': self.stopped_because}


def drain_queue(app, queue: str, runtime: float,
                max_tasks: int | None = None) -> DrainReport:
    """Run the tasks of the registered ``queue`` into ``app`` (the app
    tasks dispatch into, as a worker loads it) for at most ``runtime``
    seconds and ``max_tasks`` tasks (None: no limit), or until the queue
    is empty; see the module docstring.  The consumer has the defaults of
    a ``[taskqueue-server]`` section."""
    consumer = Consumer(
        app, queue=queue,
        name=default_consumer_name(f'drain-{secrets.token_hex(4)}'))
    budget = consumer.budget = TaskBudget(max_tasks) if max_tasks else None
    started = time.monotonic()
    consumer.start()
    try:
        while True:
            if budget is not None and not consumer.running:
                reason = 'max_tasks'  # its threads took the budget, left
                break
            if drained([consumer]):
                reason = 'empty'
                break
            left = runtime - (time.monotonic() - started)
            if left <= 0:
                reason = 'runtime'
                break
            time.sleep(min(_CHECK_INTERVAL, left))
    finally:
        consumer.stop(consumer.stop_timeout)
    outcomes = {_REPORTED[outcome]: consumer.outcomes[outcome.value]
                for outcome in Outcome}
    report = DrainReport(consumer.queue, outcomes,
                         time.monotonic() - started, reason)
    log.info('drain of queue %r by %s: %d task(s) %s in %.1fs, stopped: %s',
             report.queue, consumer.name, report.tasks, outcomes,
             report.runtime, reason)
    return report
