"""What every queue backend shares: its name, limits and codec."""
from __future__ import annotations

from ..task import Codec

#: Large enough for form posts and modest uploads; a body larger than this
#: is more likely a mistake than a task (Redis allows 512 MiB per value).
DEFAULT_MAX_PAYLOAD_SIZE = 8 * 1024 * 1024


class QueueBase:
    """Attributes common to the backends (see IQueueBackend)."""

    shared = False

    def __init__(self, name: str = 'default', *,
                 max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE,
                 secrets=()):
        self.name = name
        self.max_payload_size = max_payload_size
        self.codec = Codec(secrets, max_payload_size)

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.name!r}>'
