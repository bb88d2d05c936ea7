"""Consumers: threads that take tasks from a queue and dispatch them.

Each of the ``concurrent_limit`` threads runs the same small loop: reserve
(the message moves into the thread's own processing list, its slot),
dispatch, then settle — ack, retry later, or bury among the dead letters —
in one place.  A message leaves the processing list only when it is
settled, so a thread, process or Redis that dies in between loses nothing:
what a gone consumer held is requeued by a live one's sweep (``lease.py``)
or when it starts again.  A thread starts a reserved task only while the
lease it was reserved under still holds: once it may have lapsed, the
sweep may have handed the task to another consumer.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

from . import metrics
from .completion import finished, kept_result
from .dispatch import Dispatcher
from .errors import BackendUnavailable, DecodeError
from .lease import Lease, default_consumer_name
from .outage import Outage
from .outcome import Outcome, RetryPolicy, classify
from .prefetch import AUTO, Prefetch, TaskBudget, prefetch_setting
from .registry import get_queue
from .status import Report
from .validation import refused, shortened

__all__ = ['Consumer', 'default_consumer_name']

log = logging.getLogger(__name__)
access_log = logging.getLogger('wsgi_taskqueue.access')


class Consumer:
    """Dispatches the tasks of one queue into ``app``.

    ``concurrent_limit`` tasks run at once, each in its own thread;
    ``prefetch`` is how many one thread reserves per round trip: a number,
    or ``auto`` to adapt it to how long the tasks take (``prefetch.py``).
    """

    _INTERRUPT_INTERVAL = 0.05

    def __init__(self, app, queue: str | None = None, name: str | None = None,
                 concurrent_limit: int = 1, retry_max_count: int = 10,
                 retry_delay: float = 1.0, retry_delay_max: float = 300.0,
                 poll_interval: float = 1.0, prefetch: int | str = AUTO,
                 lease_timeout: float = 15.0, max_deliveries: int = 5,
                 staged_grace: float = 60.0, stop_timeout: float = 30.0):
        if name is not None and '#' in name:
            raise ValueError(f'a consumer name cannot contain "#": {name!r}')
        if concurrent_limit < 1:
            raise ValueError('concurrent_limit must be at least 1')
        try:
            prefetch = prefetch_setting(prefetch)
        except ValueError as exc:
            raise ValueError(f'prefetch {exc}') from None
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
        #: A consumer not heard of for this long is gone: its tasks in
        #: flight are requeued.  Its heartbeat renews it three times as
        #: often, so a live consumer keeps it through a slow moment.
        self.lease_timeout = lease_timeout
        #: A task found unfinished this many times (its consumer kept
        #: dying) is dead-lettered instead of looping.
        self.max_deliveries = max_deliveries
        #: Staged batches older than this lost the process that staged
        #: them between vote and promotion; the sweep promotes them.
        #: Longer than any commit may take.
        self.staged_grace = staged_grace
        #: How long a stopping process waits for the tasks in flight.
        self.stop_timeout = stop_timeout
        #: Shared by the consumers of a worker with ``--max-tasks``.
        self.budget: TaskBudget | None = None
        #: Tasks dispatched since start.
        self.processed = 0
        #: Messages settled since this consumer was made, by outcome
        #: (``Outcome`` values; one that is no task, or may not run here,
        #: is dead-lettered: ``dead``).  What a drain reports.
        self.outcomes: collections.Counter = collections.Counter()
        self._count_lock = threading.Lock()
        self.dispatch = Dispatcher(app)
        self._threads: list[threading.Thread] = []
        self._resumed = threading.Event()
        self._resumed.set()
        #: Guards the check of ``_resumed`` together with the count of
        #: threads in a reserve, so that ``pause`` knows when none is left
        #: that could take a task.
        self._taking = threading.Condition()
        self._reserving = 0
        self._heartbeat: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lease: Lease | None = None

    def __repr__(self) -> str:
        return f'<Consumer {self.name!r} of queue {self.queue!r}>'

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f'{self!r} is already running')
        self._stopping.clear()
        self._lease = Lease(self)
        self._lease.acquire()
        if self.backend.shared and not self.backend.codec.keys:
            log.warning('%r: queue %r has no secret: its tasks are unsigned, '
                        'so whoever can write to it can run requests as any '
                        'user; set `secret` in its [taskqueue] section',
                        self, self.queue)
        self._heartbeat = self._lease.keep_in_background(self._stopping)
        self._threads = [
            threading.Thread(target=self._run, args=(f'{self.name}#{number}',),
                             daemon=True,
                             name=f'wsgi-taskqueue {self.name}#{number}')
            for number in range(1, self.concurrent_limit + 1)]
        for thread in self._threads:
            thread.start()
        log.info('%r started with %d thread(s)', self, self.concurrent_limit)

    def pause(self) -> None:
        """Finish the tasks in flight, take no new ones until resumed.

        Returns once no thread is in a reserve: one waiting for work is
        interrupted, again and again, since a thread may enter its wait
        just after an interruption was sent.
        """
        with self._taking:
            self._resumed.clear()
            busy = self._reserving
        while busy:
            self._interrupt()
            with self._taking:
                self._taking.wait_for(lambda: not self._reserving,
                                      self._INTERRUPT_INTERVAL)
                busy = self._reserving

    def resume(self) -> None:
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking tasks and wait up to ``timeout`` seconds for those
        in flight.  Return True when all finished; the others stay in the
        processing list and are requeued at the next start."""
        self._stopping.set()
        self._resumed.set()
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
        if self._heartbeat is not None:
            self._heartbeat.join()
        if finished:
            self._lease.release()
        else:
            # The lease lapses: the tasks still in flight are requeued
            # by a sweep, or when this consumer starts again.
            log.warning('%r stopped with tasks still in flight; they will '
                        'be requeued', self)
        return finished

    def _reserved(self) -> None:
        """A thread's reserve is over (``pause`` waits for that)."""
        with self._taking:
            self._reserving -= 1
            self._taking.notify_all()

    def _interrupt(self) -> None:
        try:
            self.backend.interrupt(self.name)
        except BackendUnavailable:
            pass  # Waiting threads will notice at their next poll.

    def _run(self, slot: str) -> None:
        """One thread: reserve into its own processing list (``slot``),
        dispatch, settle."""
        outage = Outage(self, self._stopping)
        # (message, Report) of finished messages, acknowledged by the next
        # reserve in the same round trip.
        done: list[tuple[bytes, Report]] = []
        # After a failed reserve the slot may hold messages whose reply was
        # lost: the next reserve hands them back; so it does with the rest
        # of a batch that ran too long (``prefetch.py``).
        recover = False
        prefetch = Prefetch(self.prefetch)
        try:
            while not self._stopping.is_set():
                lapsed = not self._lease.held()
                with self._taking:
                    paused = not self._resumed.is_set()
                    if not paused and not lapsed:
                        self._reserving += 1
                if paused or lapsed:
                    # Settle, and take nothing while paused, nor while the
                    # lease may have lapsed (a sweep may take it at once).
                    done = self._acknowledge(slot, done, recover)
                    recover = False
                    if paused:
                        self._resumed.wait()
                    else:
                        self._lease.wait_held(self.poll_interval)
                    continue
                limit = self.budget.take(prefetch.limit) if self.budget \
                    else prefetch.limit
                if not limit:
                    self._reserved()
                    return
                messages = []
                reserved_at = time.monotonic()
                try:
                    messages = self.backend.reserve(
                        slot, limit, self.poll_interval, done, recover)
                except BackendUnavailable as exc:
                    recover = True
                    outage.wait(exc)
                    continue
                except Exception as exc:
                    log.exception('%r: reserve failed', self)
                    if self._hand_back(slot, done):
                        done, recover = [], False
                    else:
                        recover = True
                    outage.wait(exc)
                    continue
                finally:
                    self._reserved()
                    if self.budget:
                        self.budget.give_back(limit - len(messages))
                done, recover = [], False
                outage.over()
                prefetch.reserved()
                overran = failed = False
                for index, message in enumerate(messages):
                    if overran and not failed \
                            or not self._lease.held_since(reserved_at):
                        # Hand back what was not started, for any thread
                        # (under a lapsed lease, a sweep may have already).
                        recover = True
                        if self.budget:
                            self.budget.give_back(len(messages) - index)
                        break
                    started = time.perf_counter()
                    try:
                        report = self.process(message, slot)
                        if report is not None:
                            done.append((message, report))
                    except Exception:
                        # The message stays in flight and is requeued when
                        # this consumer is gone; the thread lives on.
                        log.exception('%r: could not process a message',
                                      self)
                        failed = True
                    overran = prefetch.overran(started)
                prefetch.finished(overran)
        finally:
            self._acknowledge(slot, done, recover)

    def _hand_back(self, slot: str, done: list) -> bool:
        """After a reserve that failed for a reason other than the
        backend's absence (a message it cannot handle, say), acknowledge
        ``done`` and put the rest of what the slot holds back in line,
        counting a delivery for each: a message that keeps failing
        reserves is dead-lettered after ``max_deliveries`` tries instead of
        looping.  False if that failed too."""
        try:
            if done:
                self.backend.ack(slot, done)
            self.backend.requeue_processing(slot, self.max_deliveries)
        except Exception:
            log.exception('%r: could not hand back what %s holds', self, slot)
            return False
        return True

    def _acknowledge(self, slot: str, done: list, hand_back: bool = False
                     ) -> list:
        """Acknowledge ``done``; with ``hand_back``, put the rest of what
        the slot holds back at the head of the queue (a reserve of none
        that recovers)."""
        if hand_back:
            self._settle(self._hand_back_rest, slot, done)
        elif done:
            self._settle(self.backend.ack, slot, done)
        return []

    def _hand_back_rest(self, slot: str, done: list) -> None:
        self.backend.reserve(slot, 0, 0, done, recover=True)

    def process(self, message: bytes, slot: str | None = None
                ) -> Report | None:
        """Dispatch one message reserved into ``slot`` (default: the
        consumer's name) and settle it, except that a finished one is
        left for the caller to acknowledge: return its Report."""
        slot = slot or self.name
        try:
            task = self.backend.codec.decode(message)
        except DecodeError as exc:
            log.error('%r: burying a message that is not a task: %s',
                      self, exc.reason)
            self._count(Outcome.DEAD)
            self._settle(self.backend.bury_unusable, slot, message,
                         exc.reason)
            return None
        refusal = refused(task, self.queue, self.backend.max_age)
        if refusal is not None:
            log.error('%r: burying task %s: %s', self, task.id, refusal)
            self._count(Outcome.DEAD)
            self._settle(self.backend.bury_unusable, slot, message, refusal,
                         task)
            return None
        started = time.perf_counter()
        result = self.dispatch(task, kept_result(self.backend, task))
        elapsed = time.perf_counter() - started
        with self._count_lock:
            self.processed += 1
        outcome = classify(result.status_code)
        if outcome is Outcome.RETRY and not self.policy.allows(task.attempt):
            outcome = Outcome.DEAD
        self._count(outcome)
        report = Report(task.id, task.attempt, result.status or 'exception',
                        elapsed)
        if outcome is not Outcome.RETRY:
            report = finished(self.backend, task, report, result,
                              'dead' if outcome is Outcome.DEAD else 'done')
        path = shortened(task.path)  # a log line, not a copy of the request
        metrics.recorder.dispatched(
            task.queue, outcome.value,
            time.time() - task.created_at - elapsed if task.attempt == 1
            else None, elapsed)
        access_log.info('%s %s %s %s -> %s in %.1fms (attempt %d)',
                        task.queue, task.id, task.method, path,
                        result.status or 'error', elapsed * 1000,
                        task.attempt)
        if outcome is Outcome.DONE:
            return report
        if outcome is Outcome.REDIRECTED:
            log.warning('task %s %s answered %s; redirects are not followed',
                        task.id, path, result.status)
            return report
        if outcome is Outcome.RETRY:
            delay = self.policy.delay_after(task.attempt,
                                            result.header('Retry-After'))
            log.warning('task %s %s failed (%s); retry %d in %.1fs',
                        task.id, path, result.status or 'exception',
                        task.attempt, delay)
            self._settle(self.backend.retry, slot, message,
                         self.backend.codec.encode(task.next_attempt()),
                         time.time() + delay, report)
        else:
            log.error('task %s %s failed (%s) on attempt %d; dead-lettered',
                      task.id, path, result.status or 'exception',
                      task.attempt)
            self._settle(self.backend.bury, slot, message,
                         self.backend.dead_letter(
                             message, task, result.status, result.error or '',
                             task.attempt), report)
        return None

    def _count(self, outcome: Outcome) -> None:
        with self._count_lock:
            self.outcomes[outcome.value] += 1

    def _settle(self, operation, slot: str, *args) -> None:
        """Run ``operation`` (idempotent) until the backend takes it, or we
        stop (the message then stays in flight and is redelivered: at least
        once)."""
        outage = Outage(self, self._stopping)
        while True:
            try:
                operation(slot, *args)
                return
            except BackendUnavailable as exc:
                if self._stopping.is_set():
                    log.error('%r: stopping; task left in flight: %s',
                              self, exc)
                    return
                outage.wait(exc)

