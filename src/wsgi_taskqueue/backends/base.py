"""What every queue backend shares: its name, limits and codec."""
from __future__ import annotations

from ..status import DEFAULT_STATUS_MAX, DEFAULT_STATUS_TTL
from ..task import Codec

#: Large enough for form posts and modest uploads; a body larger than this
#: is more likely a mistake than a task (Redis allows 512 MiB per value).
DEFAULT_MAX_PAYLOAD_SIZE = 8 * 1024 * 1024


def owner_of(slot: str) -> str:
    """The consumer a processing list belongs to: each thread of consumer
    ``w`` has its own, its slot ``w#1``, ``w#2``, ... so that a thread that
    lost a reply can tell what its list holds (all but what it finished)."""
    return slot.partition('#')[0]


#: What the enqueuing request's credentials become in a task.
CREDENTIALS = ('copy', 'user-id')


class QueueBase:
    """Attributes common to the backends (see IQueueBackend)."""

    shared = False

    def __init__(self, name: str = 'default', *,
                 max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
                 secrets=(), credentials: str = 'copy',
                 status_ttl: int = DEFAULT_STATUS_TTL,
                 status_max: int = DEFAULT_STATUS_MAX):
        if credentials not in CREDENTIALS:
            raise ValueError(f'credentials must be one of '
                             f'{", ".join(CREDENTIALS)}, not {credentials!r}')
        self.name = name
        self.max_payload_size = max_payload_size
        #: 'copy': the request's Cookie and Authorization travel with the
        #: task (collective.taskqueue's behaviour).  'user-id': only the
        #: signed REMOTE_USER does, so no secret rests in the queue; the
        #: app must then trust REMOTE_USER on task requests.
        self.credentials = credentials
        #: Seconds a task's status record is kept (0: no status log), and
        #: how many records a queue keeps at most.
        self.status_ttl = status_ttl
        self.status_max = status_max
        self.codec = Codec(secrets, max_payload_size)

    @property
    def group(self):
        """Queues of one group are staged, promoted and pushed together
        (see IQueueBackend); by default a queue is a group of its own."""
        return self

    def enqueue_in_transaction(self, txn, batch_id, batches):
        return False  # only a queue in the app's own database can

    def stage(self, batch_id, messages):
        self.stage_batches(batch_id, {self: messages})

    def promote(self, batch_id):
        self.promote_batches(batch_id, [self])

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.name!r}>'
