"""The named queues of this process.

``taskqueue.add`` and the consumers look queues up here by name; the ini
loader and ``register_queue`` fill it.
"""
from __future__ import annotations

import threading

from .errors import UnknownQueue

_queues: dict = {}
_lock = threading.Lock()


def register_queue(name: str, queue) -> None:
    """Make ``queue`` (an ``IQueueBackend``) known under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'a queue name must be a non-empty string, not {name!r}')
    with _lock:
        queue.name = name
        _queues[name] = queue


def unregister_queue(name: str):
    """Forget the queue ``name`` and return it (None if there was none)."""
    with _lock:
        return _queues.pop(name, None)


def get_queue(name: str | None = None):
    """Return the queue ``name``; None means the default queue, the
    alphabetically first one (collective.taskqueue's rule)."""
    queues = _queues
    if name is None:
        if not queues:
            raise UnknownQueue(None, [])
        name = min(queues)
    try:
        return queues[name]
    except KeyError:
        raise UnknownQueue(name, sorted(queues)) from None


def queue_names() -> list[str]:
    return sorted(_queues)


def first_answer(queue: str | None, ask):
    """``ask(backend)`` of the queue named ``queue``, or of each queue in
    turn when None, until one answers something other than None (a task
    or job is found in the queue that holds it); None if none does."""
    for name in [queue] if queue is not None else queue_names():
        answer = ask(get_queue(name))
        if answer is not None:
            return answer
    return None

def queues_or_all(queues) -> list[str]:
    """``queues``, or every queue registered when None (the operations'
    default)."""
    return list(queues) if queues is not None else queue_names()
