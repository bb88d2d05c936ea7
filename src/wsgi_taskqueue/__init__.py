"""wsgi-taskqueue: run a view later, after the transaction commits.

``taskqueue.add('/view')`` joins the current transaction; once it commits
the task is queued, and a consumer replays it as a request to the same WSGI
app with the enqueuing request's headers.
"""
__version__ = '0.1.0.dev0'

from . import taskqueue  # noqa: E402
from .backends import LocalQueue, RedisQueue, SqlQueue  # noqa: E402
from .config import configure  # noqa: E402
from .consumer import Consumer  # noqa: E402
from .deadletter import DeadLetter, dead_letters, purge_dead, requeue_dead  # noqa: E402
from .dispatch import ENVIRON_KEY  # noqa: E402
from .errors import (  # noqa: E402
                         BackendUnavailable,
                         ClosedJob,
                         ConfigurationError,
                         ConsumerNameInUse,
                         DecodeError,
                         InvalidTask,
                         TaskQueueError,
                         UnknownJob,
                         UnknownQueue,
)
from .guard import current_task, is_task  # noqa: E402
from .jobs import Job  # noqa: E402
from .registry import get_queue, register_queue, unregister_queue  # noqa: E402
from .task import Task  # noqa: E402

__all__ = [
    'taskqueue', 'configure', 'register_queue', 'unregister_queue',
    'get_queue', 'LocalQueue', 'RedisQueue', 'SqlQueue', 'Consumer', 'Task',
    'current_task', 'is_task', 'ENVIRON_KEY', 'Job',
    'DeadLetter', 'dead_letters', 'requeue_dead', 'purge_dead',
    'TaskQueueError', 'InvalidTask', 'UnknownQueue', 'ConfigurationError',
    'BackendUnavailable', 'DecodeError', 'ConsumerNameInUse', 'UnknownJob',
    'ClosedJob',
]


def includeme(config):
    """``config.include('wsgi_taskqueue')``: see ``wsgi_taskqueue.pyramid``
    (imported only here: Pyramid is not a dependency)."""
    from .pyramid import includeme
    includeme(config)
