"""The filter (``egg:wsgi-taskqueue#taskqueue``) in front of the app.

It binds the request being served for ``taskqueue.add``, keeps the
``X-Task-*`` headers trustworthy by removing them from requests that come
from the network, warns when a request leaves tasks in a transaction that
never committed, and can manage the transaction itself for apps that have
no transaction manager of their own.
"""
from __future__ import annotations

import logging

import transaction
import webob

from . import context
from .dispatch import ENVIRON_KEY
from .validation import TASK_HEADER_PREFIX

__all__ = ['TaskQueueMiddleware', 'filter_factory', 'bind', 'unbind',
           'strip_task_headers', 'APP_ENVIRON_KEY']

#: The environ key holding the app tasks dispatch into, set by the
#: outermost filter (or the Pyramid tween) a request passes: how the
#: management app mounted behind it finds the app its drains run tasks in.
APP_ENVIRON_KEY = 'wsgi_taskqueue.app'

log = logging.getLogger(__name__)


class TaskQueueMiddleware:
    """See the module docstring.

    ``manage_transaction``: begin a transaction for each request, commit it
    when the app answers 2xx or 3xx, abort it otherwise (pyramid_tm's
    rule).  Leave it off under pyramid_tm or Zope, which manage their own:
    a second manager would commit or abort at the wrong time.
    """

    def __init__(self, app, manage_transaction: bool = False):
        self.app = app
        self.manage_transaction = manage_transaction

    def __call__(self, environ, start_response):
        environ.setdefault(APP_ENVIRON_KEY, self)
        request, token = bind(environ)
        try:
            if self.manage_transaction:
                return self._call_in_transaction(environ, start_response)
            return self.app(environ, start_response)
        finally:
            unbind(request, token)

    def _call_in_transaction(self, environ, start_response):
        manager = transaction.manager
        manager.begin()
        response = []
        chunks = []
        try:
            def capture(status, headers, exc_info=None):
                response[:] = [status, headers, exc_info]
                return chunks.append

            app_iter = self.app(environ, capture)
            try:
                chunks.extend(app_iter)
            finally:
                close = getattr(app_iter, 'close', None)
                if close is not None:
                    close()
        except BaseException:
            manager.abort()
            raise
        status, headers, exc_info = response
        if status[:1] in ('2', '3') and not manager.isDoomed():
            manager.commit()
        else:
            manager.abort()
        start_response(status, headers, exc_info)
        return chunks


def bind(environ):
    """Prepare a request's ``environ`` and bind it for ``taskqueue.add``
    (the filter does it, and the Pyramid tween): strip the ``X-Task-*``
    headers of a request that is not a task, make the body re-readable.
    Return what ``unbind`` takes."""
    strip_task_headers(environ)
    if _has_body(environ):
        # The app may read wsgi.input before it calls add(), which
        # copies the body by default.
        webob.Request(environ).make_body_seekable()
    return context.bind(environ)


def unbind(request: context.RequestContext, token) -> None:
    """The request is over: warn of tasks it left uncommitted."""
    context.unbind(token)
    _warn_uncommitted(request)


def strip_task_headers(environ) -> None:
    """Remove ``X-Task-*`` headers from a request that came from the
    network (one without the dispatcher's environ marker), so that the app
    may trust them on task requests."""
    if ENVIRON_KEY not in environ:
        for key in [k for k in environ if k.startswith(TASK_HEADER_PREFIX)]:
            del environ[key]


def _has_body(environ) -> bool:
    return (environ.get('CONTENT_LENGTH', '') not in ('', '0')
            or 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower())


def _warn_uncommitted(request: context.RequestContext) -> None:
    for manager in request.data_managers:
        if manager.state == 'open' and manager.tasks:
            log.warning(
                'request %s %s ended with %d task(s) in a transaction that '
                'was not committed; they will not run unless it commits. '
                'Use pyramid_tm or the filter\'s manage_transaction = true.',
                request.environ.get('REQUEST_METHOD'),
                request.environ.get('PATH_INFO'), len(manager.tasks))


def filter_factory(global_conf, **settings):
    """``paste.filter_factory``: also registers the ini's queues."""
    from .config import configure
    from .settings import filter_settings

    filename = global_conf.get('__file__')
    options = filter_settings(settings, filename)
    if filename:
        # global_conf: the file's [DEFAULT] and the command's NAME=VALUE.
        configure(filename, global_conf)

    def filter(app):
        wrapped = TaskQueueMiddleware(app, **options)
        _serve_sync_queues(wrapped)
        return wrapped
    return filter


def _serve_sync_queues(app) -> None:
    """Sync queues dispatch into the app this filter wraps (through the
    filter, as a consumer's tasks do)."""
    from .backends import SyncQueue
    from .registry import get_queue, queue_names
    for name in queue_names():
        queue = get_queue(name)
        if isinstance(queue, SyncQueue) and queue.app is None:
            queue.app = app
