"""Zope's own hooks do what the filter and the server runner do elsewhere,
so that a stock ``runwsgi etc/zope.ini`` needs nothing but zope.conf.

- Database opened (``IDatabaseOpenedWithRoot``, also in scripts): the
  ``<taskqueue>`` sections of zope.conf become the registered queues.
- Process starting (``IProcessStarting``, WSGI servers only): the
  ``<taskqueue-server>`` consumers start, dispatching into Zope's
  publisher; they stop when the process exits (SIGTERM included).
- Publication start (``IPubStart``): ``X-Task-*`` headers are removed from
  network requests, task requests get ``ITaskQueueLayer``, and the request
  is bound for ``taskqueue.add`` with Zope's raw environ (which still has
  ``Authorization``) and the security manager's user.
- Publication end (``IPubEnd``: success or failure): unbound.
"""
from __future__ import annotations

import atexit
import functools
import logging
import threading

from AccessControl.SecurityManagement import getSecurityManager
from App.config import getConfiguration
from zope.interface import alsoProvides

from .. import config, context
from ..guard import current_task
from ..middleware import strip_task_headers
from ..serve import exit_on_sigterm
from . import ITaskQueueLayer, zconfig

log = logging.getLogger(__name__)

_lock = threading.Lock()
#: The configuration of this process's zope.conf, once registered.
_configuration: config.Configuration | None = None
_consumers: list = []


def configure_queues(event=None) -> config.Configuration:
    """Register the queues of zope.conf (once per process)."""
    global _configuration
    with _lock:
        if _configuration is None:
            zope_config = getConfiguration()
            product_config = getattr(zope_config, 'product_config',
                                     None) or {}
            # Zope keeps no path of its zope.conf; its instance home
            # tells which one it is.
            home = getattr(zope_config, 'instancehome', None)
            _configuration = zconfig.configuration(
                product_config,
                f'zope.conf of {home}' if home else 'zope.conf')
            config.register(_configuration)
        return _configuration


def start_consumers(event=None) -> list:
    """Start the consumers of zope.conf in this process (once)."""
    configuration = configure_queues()
    with _lock:
        if _consumers or not configuration.consumers:
            return _consumers
        from .zeo import warn_without_server_sync

        warn_without_server_sync()
        for consumer in configuration.build_consumers(task_app):
            consumer.start()
            _consumers.append(consumer)
        log.info('started %d task queue consumer(s): %s', len(_consumers),
                 ', '.join(c.name for c in _consumers))
        atexit.register(stop_consumers)
        exit_on_sigterm()  # runwsgi and zdaemon stop Zope with SIGTERM
        return _consumers


@functools.cache
def _publisher():
    from ZPublisher.httpexceptions import HTTPExceptionHandler
    from ZPublisher.WSGIPublisher import publish_module

    from .zeo import synced

    # The app of a stock zope.ini: the publisher behind the filter that
    # turns HTTP exceptions into responses (an Unauthorized is a 401); on
    # ZEO, synced with the server first (see zeo.py).
    return synced(HTTPExceptionHandler(publish_module))


def task_app(environ, start_response):
    """The WSGI app tasks run in: Zope's publisher, as the consumers call
    it.  Also what a management app in a Zope process drains into (its
    ``app = wsgi_taskqueue.zope.events.task_app``)."""
    return _publisher()(environ, start_response)


def stop_consumers() -> None:
    """Stop the consumers, each waiting up to its ``stop_timeout`` for the
    tasks in flight."""
    with _lock:
        while _consumers:
            consumer = _consumers.pop()
            consumer.stop(consumer.stop_timeout)


def bind_request(event) -> None:
    request = event.request
    # The environ as the WSGI server gave it (HTTPRequest keeps it).
    environ = getattr(request, '_orig_env', request.environ)
    task = current_task(environ)
    if task is None:
        strip_task_headers(environ)
        strip_task_headers(request.environ)
    else:
        alsoProvides(request, ITaskQueueLayer)
    body = environ.get('wsgi.input')
    if callable(getattr(body, 'seek', None)) and \
            getattr(body, 'seekable', lambda: True)():
        # Zope reads the body and seeks back for its retries; add() copies
        # it from the start the same way.
        environ['webob.is_body_seekable'] = True
    _, token = context.bind(environ, _authenticated_user)
    request._wsgi_taskqueue_token = token


def unbind_request(event) -> None:
    token = getattr(event.request, '_wsgi_taskqueue_token', None)
    if token is not None:
        del event.request._wsgi_taskqueue_token
        context.unbind(token)


def _authenticated_user() -> str | None:
    """The id of the user Zope authenticated (None for Anonymous)."""
    user = getSecurityManager().getUser()
    return user.getId() if user is not None else None
