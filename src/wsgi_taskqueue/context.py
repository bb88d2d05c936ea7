"""The request being served, as the filter bound it, for ``taskqueue.add``.

A context variable rather than a thread-local, so it follows the request
into whatever the app runs it in.
"""
from __future__ import annotations

import contextvars


class RequestContext:
    """What ``add`` needs of the request being served."""

    __slots__ = ('environ', 'data_managers', 'authenticated_user')

    def __init__(self, environ: dict, authenticated_user=None):
        #: The environ the filter saw: under Zope the app's own environ
        #: lacks ``Authorization``, which must travel with the task.
        self.environ = environ
        #: The task data managers created during this request, so the
        #: filter can tell when tasks were never committed.
        self.data_managers: list = []
        #: A host whose user is not in ``REMOTE_USER`` while the app runs
        #: (Zope sets it only after publishing) gives a callable that
        #: returns the authenticated user id, or None; ``add`` calls it.
        self.authenticated_user = authenticated_user


_current: contextvars.ContextVar[RequestContext | None] = \
    contextvars.ContextVar('wsgi_taskqueue_request', default=None)


def bind(environ: dict, authenticated_user=None
         ) -> tuple[RequestContext, contextvars.Token]:
    context = RequestContext(environ, authenticated_user)
    return context, _current.set(context)


def unbind(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> RequestContext | None:
    return _current.get()
