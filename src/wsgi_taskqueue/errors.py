"""The exceptions of wsgi-taskqueue: one base class, a shallow tree."""
from __future__ import annotations

import transaction.interfaces


class TaskQueueError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidTask(TaskQueueError, ValueError):
    """``taskqueue.add`` was given something that cannot become a task.

    Raised at ``add`` time, so a broken message never reaches a queue.
    """


class TaskTooLarge(InvalidTask):
    """URL, headers and body of a task together exceed its queue's
    ``max_task_size``."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(
            f'task of {size} bytes (URL, headers and body) is larger than '
            f'the queue\'s max_task_size of {limit} bytes')


class UnknownDependency(InvalidTask):
    """A task was added ``after`` a task its queue does not know (never
    queued there, or its status record expired): raised when the
    transaction stages its tasks, so the transaction aborts."""


class UnknownJob(InvalidTask):
    """A task was added to (or a close was asked of) a job its queue does
    not know (never created there, or its record expired): raised when the
    transaction stages its tasks, so the transaction aborts."""


class ClosedJob(InvalidTask):
    """A task was added to a job that is closed already: raised when the
    transaction stages its tasks, so the transaction aborts."""


class UnknownQueue(TaskQueueError, LookupError):
    """No queue of that name is registered."""

    def __init__(self, name: str | None, known: list[str]):
        self.name = name
        self.known = known
        if name is None:
            message = ('no task queue is configured: add a [taskqueue] '
                       'section to the ini file or call '
                       'wsgi_taskqueue.register_queue()')
        else:
            message = (f'unknown task queue {name!r}; configured queues: '
                       f'{", ".join(known) or "none"}')
        super().__init__(message)


class ConfigurationError(TaskQueueError):
    """A configuration file or value is wrong; the message says where."""

    def __init__(self, message: str, filename: str | None = None,
                 section: str | None = None, key: str | None = None):
        self.filename = filename
        self.section = section
        self.key = key
        where = ', '.join(part for part in (
            filename and f'file {filename}',
            # An ini section is [name]; zope.conf's come as <type name>.
            section and ('section ' + (section if section.startswith('<')
                                       else f'[{section}]')),
            key and f'key {key!r}') if part)
        super().__init__(f'{where}: {message}' if where else message)


class BackendUnavailable(TaskQueueError, transaction.interfaces.TransientError):
    """The queue backend did not answer in time.

    A ``TransientError``, so transaction managers that retry (pyramid_tm,
    Zope's publisher) may try the whole request again.  ``unsent`` is true
    when the operation surely never reached the backend (no connection
    could be made): then there is nothing to undo.
    """

    def __init__(self, message: str, unsent: bool = False):
        super().__init__(message)
        self.unsent = unsent


class DecodeError(TaskQueueError):
    """A message taken from a queue is not a task this package can run."""

    def __init__(self, reason: str, message: bytes = b''):
        self.reason = reason
        self.message = message
        super().__init__(reason)


class ConsumerNameInUse(TaskQueueError):
    """Another live process consumes under this name already."""


class SchemaError(TaskQueueError):
    """A SQL queue's tables are missing or of another version; the message
    names the command that creates or upgrades them."""
