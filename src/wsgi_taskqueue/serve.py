"""Serving: waitress and the consumers in one process, or consumers alone.

``[server:main] use = egg:wsgi-taskqueue#waitress`` runs the app under
waitress with the ini's ``[taskqueue-server]`` consumers as threads of the
same process; ``wsgi-taskqueue worker`` runs only the consumers, calling
the app in-process, for a separate worker process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time

from .config import configuration_of
from .errors import ConfigurationError
from .prefetch import TaskBudget

__all__ = ['server_runner', 'running_consumers', 'run_worker', 'WorkerLimits',
           'exit_on_sigterm', 'serve_logged', 'report_dropped',
           'hosting_consumers', 'hand_over', 'drained']

log = logging.getLogger(__name__)

#: How often a worker checks its limits; short enough for a prompt exit,
#: long enough to cost nothing.
_CHECK_INTERVAL = 0.2

#: While ``wsgi-taskqueue worker`` loads its app: the configurations whose
#: consumers hosts (the Pyramid include, the Flask extension) handed over
#: to it, instead of starting them.
_handed_over: list | None = None


@contextlib.contextmanager
def hosting_consumers():
    """Within: the consumers an app configures for itself are handed over
    (``hand_over``) to the command loading it, which runs them as its own
    (with its signals and limits), rather than started by the app."""
    global _handed_over
    _handed_over = []
    try:
        yield _handed_over
    finally:
        _handed_over = None


def hand_over(configuration) -> bool:
    """Give ``configuration``'s consumers to the command loading the app;
    False when no command takes them (the host starts them itself)."""
    if _handed_over is None:
        return False
    _handed_over.append(configuration)
    return True


@contextlib.contextmanager
def running_consumers(app, filename, require_shared: bool = False,
                      budget: TaskBudget | None = None):
    """Start the consumers an ini file (or a Configuration) configures;
    stop them on exit, each waiting up to its ``stop_timeout`` for the
    tasks in flight."""
    configuration = configuration_of(filename)
    filename = configuration.filename
    consumers = configuration.build_consumers(app)
    for consumer in consumers:
        consumer.budget = budget
    if require_shared:
        for consumer in consumers:
            if not consumer.backend.shared:
                raise ConfigurationError(
                    f'queue {consumer.queue!r} is in-process (type local); '
                    f'only the process that adds its tasks can consume it: '
                    f'use `wsgi-taskqueue serve`, or a redis queue',
                    filename)
    started = []
    try:
        for consumer in consumers:
            consumer.start()
            started.append(consumer)
        if consumers:
            log.info('consumers running: %s', ', '.join(
                f'{c.name} (queue {c.queue!r})' for c in consumers))
        yield consumers
    finally:
        for consumer in started:
            consumer.stop(consumer.stop_timeout)
        report_dropped(configuration.queues.values())


def report_dropped(queues) -> int:
    """Log how many tasks the in-process (``local``) ``queues`` still
    hold, which are lost as this process stops; return the count."""
    dropped = 0
    for queue in queues:
        if queue.shared:
            continue
        counts = queue.counts()
        left = (counts['pending'] + counts['delayed']
                + sum(counts['processing'].values()))
        if left:
            log.warning('queue %r is in-process (type local): %d task(s) '
                        'that did not run are dropped as this process '
                        'stops', queue.name, left)
        dropped += left
    return dropped


@contextlib.contextmanager
def serve_logged(filename: str):
    """Log when ``serve`` starts and stops serving ``filename``; SIGTERM
    stops it as Ctrl-C does, whatever the server, so that consumers stop
    cleanly and exit hooks run."""
    exit_on_sigterm()
    log.info('serving %s (process %d)', filename, os.getpid())
    try:
        yield
    finally:
        log.info('stopped serving %s', filename)


def server_runner(wsgi_app, global_conf, **settings):
    """``paste.server_runner``: waitress plus the ini's consumers."""
    import waitress

    exit_on_sigterm()
    with running_consumers(wsgi_app, global_conf['__file__']):
        waitress.serve(wsgi_app, **settings)


@dataclasses.dataclass
class WorkerLimits:
    """When a worker stops by itself (cron-style deployments)."""

    #: Seconds to run.
    runtime: float | None = None
    #: Tasks to dispatch, over all consumers.
    max_tasks: int | None = None
    #: Resident memory, in bytes, above which the worker stops (a process
    #: manager starts a fresh one).
    memory_limit: int | None = None
    #: Stop once the queues have nothing pending and nothing in flight.
    once: bool = False


def run_worker(app, filename, limits: WorkerLimits | None = None) -> str:
    """Run the consumers of ``filename`` (an ini file or a Configuration)
    until a signal or a limit says stop; return why it stopped.

    SIGTERM, SIGINT and SIGQUIT stop taking tasks and let those in flight
    finish (up to each consumer's ``stop_timeout``); SIGUSR2 pauses taking
    tasks and SIGCONT resumes.
    """
    limits = limits or WorkerLimits()
    stop = threading.Event()
    reason = []

    def stop_on_signal(signum, frame):
        reason.append(signal.Signals(signum).name)
        stop.set()

    budget = TaskBudget(limits.max_tasks) if limits.max_tasks else None
    with running_consumers(app, filename, require_shared=True,
                           budget=budget) as consumers:
        if not consumers:
            raise ConfigurationError(
                'no [taskqueue-server] section: nothing to consume',
                configuration_of(filename).filename)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, stop_on_signal)
        signal.signal(signal.SIGUSR2, lambda *_: _each(consumers, 'pause'))
        signal.signal(signal.SIGCONT, lambda *_: _each(consumers, 'resume'))
        log.info('worker running %d consumer(s)', len(consumers))
        started = time.monotonic()
        while not stop.wait(_CHECK_INTERVAL):
            why = _limit_reached(limits, consumers, started)
            if why:
                reason.append(why)
                break
    why = reason[0] if reason else 'stopped'
    log.info('worker stopped: %s', why)
    return why


def _each(consumers, method: str) -> None:
    for consumer in consumers:
        getattr(consumer, method)()
    log.info('worker: consumers %s', 'paused' if method == 'pause'
             else 'resumed')


def _limit_reached(limits: WorkerLimits, consumers, started: float):
    if limits.runtime is not None and \
            time.monotonic() - started >= limits.runtime:
        return f'ran {limits.runtime:g}s (--runtime)'
    if limits.max_tasks and not any(c.running for c in consumers):
        return f'dispatched {limits.max_tasks} task(s) (--max-tasks)'
    if limits.memory_limit and _resident_memory() > limits.memory_limit:
        return f'resident memory above {limits.memory_limit} bytes ' \
               f'(--memory-limit)'
    if limits.once and drained(consumers):
        return 'queues drained (--once)'
    return None


def drained(consumers) -> bool:
    """Whether the queues of ``consumers`` have nothing pending and the
    consumers nothing in flight."""
    for consumer in consumers:
        counts = consumer.backend.counts()
        if counts['pending'] or counts['processing'].get(consumer.name):
            return False
    return True


def _resident_memory() -> int:
    """Resident set size of this process, in bytes."""
    with open('/proc/self/statm') as statm:
        return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so consumers stop cleanly (a process
    killed by the signal's default action runs no cleanup), unless the
    process already handles SIGTERM its own way."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum, frame):
    raise SystemExit(0)
