"""Consumers: threads that take tasks from a queue and dispatch them.

Each of the ``concurrent_limit`` threads runs the same small loop: reserve
(the message moves into this consumer's processing list), dispatch, then
settle — ack, retry later, or bury among the dead letters — in one place.
A message leaves the processing list only when it is settled, so a thread,
process or Redis that dies in between loses nothing: the leftovers are
requeued when the consumer starts again.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from .deadletter import DeadLetter
from .dispatch import Dispatcher
from .errors import BackendUnavailable, DecodeError
from .outcome import Outcome, RetryPolicy, classify
from .registry import get_queue

__all__ = ['Consumer', 'default_consumer_name']

log = logging.getLogger(__name__)
access_log = logging.getLogger('wsgi_taskqueue.access')


def default_consumer_name(queue: str) -> str:
    """Stable across restarts of the same service on the same host, so a
    restarted consumer finds and requeues its own leftovers."""
    return f'{socket.gethostname()}-{queue}'


class Consumer:
    """Dispatches the tasks of one queue into ``app``.

    ``concurrent_limit`` tasks run at once, each in its own thread;
    ``prefetch`` is how many one thread reserves per round trip.
    """

    _INTERRUPT_INTERVAL = 0.05

    def __init__(self, app, queue: str | None = None, name: str | None = None,
                 concurrent_limit: int = 1, retry_max_count: int = 10,
                 retry_delay: float = 1.0, retry_delay_max: float = 300.0,
                 poll_interval: float = 1.0, prefetch: int = 1):
        if concurrent_limit < 1:
            raise ValueError('concurrent_limit must be at least 1')
        if prefetch < 1:
            raise ValueError('prefetch must be at least 1')
        self.backend = get_queue(queue)
        self.queue = self.backend.name
        self.name = name or default_consumer_name(self.queue)
        self.concurrent_limit = concurrent_limit
        self.prefetch = prefetch
        #: Longest wait in one reserve call: how late a due retry may be
        #: picked up, and how often a waiting thread checks in.
        self.poll_interval = poll_interval
        self.policy = RetryPolicy(retry_max_count, retry_delay,
                                  retry_delay_max)
        self.dispatch = Dispatcher(app)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return f'<Consumer {self.name!r} of queue {self.queue!r}>'

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f'{self!r} is already running')
        self._stopping.clear()
        leftovers = self.backend.requeue_processing(self.name)
        if leftovers:
            log.warning('%r: requeued %d task(s) left in flight by its '
                        'previous run', self, leftovers)
        self._threads = [
            threading.Thread(target=self._run, daemon=True,
                             name=f'wsgi-taskqueue {self.name} {number}')
            for number in range(1, self.concurrent_limit + 1)]
        for thread in self._threads:
            thread.start()
        log.info('%r started with %d thread(s)', self, self.concurrent_limit)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking tasks and wait up to ``timeout`` seconds for those
        in flight.  Return True when all finished; the others stay in the
        processing list and are requeued at the next start."""
        self._stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            while thread.is_alive():
                # Interrupt again and again: a thread may enter its wait
                # just after an interruption was sent.
                self._interrupt()
                remaining = (self._INTERRUPT_INTERVAL if deadline is None
                             else min(self._INTERRUPT_INTERVAL,
                                      deadline - time.monotonic()))
                if remaining <= 0:
                    break
                thread.join(remaining)
        finished = not self.running
        if not finished:
            log.warning('%r stopped with tasks still in flight; they will '
                        'be requeued when it starts again', self)
        return finished

    def _interrupt(self) -> None:
        try:
            self.backend.interrupt(self.name)
        except BackendUnavailable:
            pass  # Waiting threads will notice at their next poll.

    def _run(self) -> None:
        outage = _Outage(self, self._stopping)
        while not self._stopping.is_set():
            try:
                messages = self.backend.reserve(
                    self.name, self.prefetch, self.poll_interval)
            except BackendUnavailable as exc:
                outage.wait(exc)
                continue
            except Exception:
                log.exception('%r: reserve failed', self)
                outage.wait(None)
                continue
            outage.over()
            for message in messages:
                try:
                    self.process(message)
                except Exception:
                    # The message stays in flight and is requeued at the
                    # next start; the thread lives on.
                    log.exception('%r: could not process a message', self)

    def process(self, message: bytes) -> None:
        """Dispatch one reserved message and settle it."""
        try:
            task = self.backend.codec.decode(message)
        except DecodeError as exc:
            log.error('%r: burying a message that is not a task: %s',
                      self, exc.reason)
            self._settle(self.backend.bury, message, DeadLetter.of(
                self.queue, message, None, None, exc.reason, 0).encode())
            return
        started = time.perf_counter()
        result = self.dispatch(task)
        elapsed = time.perf_counter() - started
        outcome = classify(result.status_code)
        access_log.info('%s %s %s %s -> %s in %.1fms (attempt %d)',
                        task.queue, task.id, task.method, task.path,
                        result.status or 'error', elapsed * 1000,
                        task.attempt)
        if outcome is Outcome.DONE:
            self._settle(self.backend.ack, [message])
        elif outcome is Outcome.REDIRECTED:
            log.warning('task %s %s answered %s; redirects are not followed',
                        task.id, task.path, result.status)
            self._settle(self.backend.ack, [message])
        elif outcome is Outcome.RETRY and self.policy.allows(task.attempt):
            delay = self.policy.delay_after(task.attempt,
                                            result.header('Retry-After'))
            log.warning('task %s %s failed (%s); retry %d in %.1fs',
                        task.id, task.path, result.status or 'exception',
                        task.attempt, delay)
            self._settle(self.backend.retry, message,
                         self.backend.codec.encode(task.next_attempt()),
                         time.time() + delay)
        else:
            log.error('task %s %s failed (%s) on attempt %d; dead-lettered',
                      task.id, task.path, result.status or 'exception',
                      task.attempt)
            self._settle(self.backend.bury, message, DeadLetter.of(
                self.queue, message, task, result.status,
                result.error or '', task.attempt).encode())

    def _settle(self, operation, *args) -> None:
        """Run ``operation`` until the backend takes it, or we stop (the
        message then stays in flight and is redelivered: at least once)."""
        outage = _Outage(self, self._stopping)
        while True:
            try:
                operation(self.name, *args)
                return
            except BackendUnavailable as exc:
                if self._stopping.is_set():
                    log.error('%r: stopping; task left in flight: %s',
                              self, exc)
                    return
                outage.wait(exc)


class _Outage:
    """Backs off while the backend is away: log once, wait longer and
    longer (capped), never spin."""

    FIRST_DELAY = 0.1
    MAX_DELAY = 5.0

    def __init__(self, consumer: Consumer, stopping: threading.Event):
        self.consumer = consumer
        self.stopping = stopping
        self.delay = 0.0

    def wait(self, error) -> None:
        if not self.delay:
            log.error('%r: queue backend unavailable, retrying: %s',
                      self.consumer, error)
        self.delay = min(self.MAX_DELAY, (self.delay * 2) or self.FIRST_DELAY)
        self.stopping.wait(self.delay)

    def over(self) -> None:
        if self.delay:
            log.warning('%r: queue backend is back', self.consumer)
            self.delay = 0.0
