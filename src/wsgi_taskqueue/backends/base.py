"""What every queue backend shares: its name, limits and codec."""
from __future__ import annotations

import contextlib

from ..completion import finished
from ..deadletter import DeadLetter
from ..errors import DecodeError
from ..results import DEFAULT_RESULT_MAX_SIZE, DEFAULT_RESULT_TTL
from ..status import DEFAULT_STATUS_MAX, DEFAULT_STATUS_TTL, Report
from ..task import Codec, identity_of
from .names import DEFAULT_NAME_TTL

#: URL, headers and body of one task together: large enough for form posts
#: and modest uploads; more is more likely a mistake than a task.
DEFAULT_MAX_TASK_SIZE = 8 * 1024 * 1024
#: Dead letters are kept a week, and a queue keeps at most this many: a
#: flood of failing tasks must not fill Redis.
DEFAULT_DEAD_TTL = 7 * 86400
DEFAULT_DEAD_MAX = 10_000


def owner_of(slot: str) -> str:
    """The consumer a processing list belongs to: each thread of consumer
    ``w`` has its own, its slot ``w#1``, ``w#2``, ... so that a thread that
    lost a reply can tell what its list holds (all but what it finished)."""
    return slot.partition('#')[0]


#: Why a replay of a finished attempt is buried.
REPLAYED = 'replayed: this attempt of the task has finished already'


def unfinished_reason(deliveries: int) -> str:
    """Why a task that keeps killing its consumer is buried."""
    return (f'delivered {deliveries} times without finishing: its consumer '
            f'stopped or died each time')


#: What the enqueuing request's credentials become in a task.
CREDENTIALS = ('copy', 'user-id')

#: The request headers that travel with ``credentials = user-id``: an
#: allow-list, so a credential under a name of the app's own (X-Api-Key,
#: X-Auth-Token, X-Forwarded-User...) stays out of the queue.  What they
#: have in common: they say how the original request reached the app
#: (host, proxies), what its user reads, and how to trace it.
USER_ID_HEADERS = frozenset([
    'HTTP_HOST', 'HTTP_ACCEPT', 'HTTP_ACCEPT_LANGUAGE', 'HTTP_ACCEPT_CHARSET',
    'HTTP_FORWARDED', 'HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_HOST',
    'HTTP_X_FORWARDED_PORT', 'HTTP_X_FORWARDED_PROTO',
    'HTTP_X_FORWARDED_PREFIX', 'HTTP_X_REQUEST_ID', 'HTTP_TRACEPARENT',
    'HTTP_TRACESTATE',
])


class QueueBase:
    """Attributes common to the backends (see IQueueBackend)."""

    shared = False

    def __init__(self, name: str = 'default', *,
                 max_task_size: int = DEFAULT_MAX_TASK_SIZE,
                 secrets=(), credentials: str = 'copy', copy_headers=(),
                 http_host: str | None = None, max_age: float = 0,
                 status_ttl: int = DEFAULT_STATUS_TTL,
                 status_max: int = DEFAULT_STATUS_MAX,
                 dead_ttl: int = DEFAULT_DEAD_TTL,
                 dead_max: int = DEFAULT_DEAD_MAX,
                 dead_credentials: bool = False,
                 name_ttl: int = DEFAULT_NAME_TTL, keep_result: bool = False,
                 result_ttl: int = DEFAULT_RESULT_TTL,
                 result_max_size: int = DEFAULT_RESULT_MAX_SIZE):
        if credentials not in CREDENTIALS:
            raise ValueError(f'credentials must be one of '
                             f'{", ".join(CREDENTIALS)}, not {credentials!r}')
        self.name = name
        self.max_task_size = max_task_size
        #: 'copy': every request header travels with the task, Cookie and
        #: Authorization included (collective.taskqueue's behaviour).
        #: 'user-id': only USER_ID_HEADERS and ``copy_headers`` do, beside
        #: the signed REMOTE_USER, so no secret rests in the queue; the app
        #: must then trust REMOTE_USER on task requests.
        self.credentials = credentials
        #: The environ keys ``add`` copies; None for all.
        self.copied_headers = None if credentials == 'copy' else (
            USER_ID_HEADERS | {'HTTP_' + name.upper().replace('-', '_')
                               for name in copy_headers})
        #: The Host of every task request, rather than the enqueuing one's.
        self.http_host = http_host
        #: Seconds after which a task not yet run is dead-lettered instead
        #: (0: no limit).
        self.max_age = max_age
        #: Seconds a task's status record is kept (0: no status log), and
        #: how many records a queue keeps at most.
        self.status_ttl = status_ttl
        self.status_max = status_max
        #: Seconds a dead letter is kept, how many a queue keeps at most,
        #: and whether they keep the Cookie and Authorization they came with.
        self.dead_ttl = dead_ttl
        self.dead_max = dead_max
        self.dead_credentials = dead_credentials
        #: Seconds a task's name is held after it was queued (names.py).
        self.name_ttl = name_ttl
        #: Whether every task keeps its result (else those that ask), for
        #: how many seconds, and how much of the body (``results.py``).
        self.keep_result = keep_result
        self.result_ttl = result_ttl
        self.result_max_size = result_max_size
        self.codec = Codec(secrets, max_task_size)

    @property
    def group(self):
        """Queues of one group are staged, promoted and pushed together
        (see IQueueBackend); by default a queue is a group of its own."""
        return self

    def enqueue_in_transaction(self, txn, batch_id, batches):
        return False  # only a queue in the app's own database can

    def enqueue_in_session(self, session, batches):
        return False  # likewise

    def dead_letter(self, message: bytes, task, status: str | None,
                    error: str, attempt: int) -> bytes:
        """The dead-letter record of ``message``: ``task`` is what it
        decoded to (None if it did not).  Its Cookie and Authorization are
        dropped unless ``dead_credentials`` (the message signed anew)."""
        if not self.dead_credentials:
            message = self.codec.without_credentials(message, task)
        return DeadLetter.of(self.name, message, task, status, error,
                             attempt).encode()

    def bury_unusable(self, slot: str, message: bytes, reason: str,
                      task=None, recorded: bool = True) -> None:
        """Bury a message of ``slot`` that will not run, ``reason`` saying
        why; ``task`` is what it decoded to, if it did.  Its status record
        says so unless not ``recorded`` (a replay must not overwrite what
        its finished attempt left there)."""
        if task is None:
            with contextlib.suppress(DecodeError):
                task = self.codec.decode(message)
        task_id, attempt = ((task.id, task.attempt) if task is not None
                            else identity_of(message))
        report = (Report(task_id, attempt, reason, 0.0)
                  if recorded and task_id is not None else None)
        if report is not None and task is not None and \
                task.queue == self.name:
            # A genuine task of this queue that will not run is dead: its
            # on_failure callback is queued with its burial.
            report = finished(self, task, report, None, 'dead')
        self.bury(slot, message, self.dead_letter(
            message, task, None, reason, attempt), report)

    def stage(self, batch_id, messages):
        self.stage_batches(batch_id, {self: messages})

    def promote(self, batch_id):
        self.promote_batches(batch_id, [self])

    def __len__(self) -> int:
        """The number of pending tasks (collective.taskqueue's
        ``len(queue)``)."""
        return self.counts()['pending']

    def __bool__(self) -> bool:
        # A queue is a queue even when it is empty (``__len__`` alone would
        # make an empty one false, and every truth test a round trip).
        return True

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.name!r}>'


def peek(message: bytes):
    """The task a message claims to be, unverified (for status records
    and listings, never to run it); None if it is not a task."""
    try:
        return _PEEK.decode_unverified(message)
    except DecodeError:
        return None


_PEEK = Codec()
