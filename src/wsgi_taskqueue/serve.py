"""Serving: waitress and the consumers in one process, or consumers alone.

``[server:main] use = egg:wsgi-taskqueue#waitress`` runs the app under
waitress with the ini's ``[taskqueue-server]`` consumers as threads of the
same process; ``wsgi-taskqueue worker`` runs only the consumers, calling
the app in-process, for a separate worker process.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading

from .config import configure
from .errors import ConfigurationError

__all__ = ['server_runner', 'running_consumers', 'run_worker']

log = logging.getLogger(__name__)

#: How long a stopping process waits for tasks in flight; the rest are
#: requeued when the consumer starts again.
STOP_TIMEOUT = 30.0


@contextlib.contextmanager
def running_consumers(app, filename: str, require_shared: bool = False):
    """Start the consumers an ini file configures; stop them on exit."""
    configuration = configure(filename)
    consumers = configuration.build_consumers(app)
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
        yield consumers
    finally:
        for consumer in started:
            consumer.stop(STOP_TIMEOUT)


def server_runner(wsgi_app, global_conf, **settings):
    """``paste.server_runner``: waitress plus the ini's consumers."""
    import waitress

    _exit_on_sigterm()
    with running_consumers(wsgi_app, global_conf['__file__']):
        waitress.serve(wsgi_app, **settings)


def run_worker(app, filename: str) -> None:
    """Run the consumers of ``filename`` until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with running_consumers(app, filename, require_shared=True) as consumers:
        if not consumers:
            raise ConfigurationError(
                'no [taskqueue-server] section: nothing to consume', filename)
        log.info('worker running %d consumer(s)', len(consumers))
        stop.wait()
    log.info('worker stopped')


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so consumers stop cleanly."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum, frame):
    raise SystemExit(0)
