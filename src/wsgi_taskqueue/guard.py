"""Telling task requests from network requests, for views that must only
run as tasks (collective.taskqueue's ITaskQueueLayer)."""
from __future__ import annotations

from .dispatch import ENVIRON_KEY

__all__ = ['current_task', 'is_task', 'TaskPredicate', 'includeme']


def current_task(environ_or_request):
    """The running Task, or None when this request came from the network.

    Takes a WSGI environ or anything with an ``environ`` (a webob or
    Pyramid request).  Only the dispatcher sets the marker; the filter
    removes ``X-Task-*`` headers from network requests, and no header can
    become this environ key.
    """
    environ = getattr(environ_or_request, 'environ', environ_or_request)
    return environ.get(ENVIRON_KEY)


def is_task(environ_or_request) -> bool:
    return current_task(environ_or_request) is not None


class TaskPredicate:
    """Pyramid view predicate ``task=True``: the view matches only task
    requests (``task=False``: only network requests).

    Enable it with ``config.include('wsgi_taskqueue.guard')``.
    """

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self) -> str:
        return f'task = {self.value}'

    phash = text

    def __call__(self, context, request) -> bool:
        return is_task(request) == self.value


def includeme(config) -> None:
    config.add_view_predicate('task', TaskPredicate)
