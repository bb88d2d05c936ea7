"""Task names: at most one task of a name per queue within ``name_ttl``.

``add(..., name='invoice-42-reminder')`` does no I/O, so a name is
claimed when the transaction stages its tasks (the vote; a queue in the
app's database: when it writes them): a backend's stage calls
``claimed`` with its messages, which asks the backend's name book to
claim the names they carry and leaves out, with a log line, the tasks
whose name another task holds.  The claim and the stage are one
database transaction on SQL; on Redis the claim comes just after the
stage (``backends/redis/names.py`` says why), in process just before it,
and an abort releases the claims of its batch.
A name stays held ``name_ttl`` seconds after its claim, whatever becomes
of its task (App Engine's tombstones): a name is used once a day, by
default, not once at a time.

Within one transaction the data manager already knows the names added so
far, so ``add`` of a name added earlier in the same transaction returns
the earlier task's id and adds nothing (``taskqueue.add``).
"""
from __future__ import annotations

import logging
import threading
import time

from ..task import decode_header

__all__ = ['DEFAULT_NAME_TTL', 'claimed', 'NameBook']

log = logging.getLogger(__name__)

#: A day, as App Engine keeps the names of its tasks.
DEFAULT_NAME_TTL = 86400

#: How the codec writes a name into a header (after the fields of every
#: task, only when set): the messages without it are not decoded.
_KEY = b',"n":'


def claimed(queue, batch_id, messages: list, book) -> list:
    """``messages`` without those whose name ``book`` finds held by
    another task of ``queue``; ``book.claim(batch_id, claims)`` takes
    [(name, task id)] and answers {task id: id of the holder} for the
    names it could not claim."""
    for message in messages:
        if _KEY in message:
            break
    else:
        return messages  # no name: nothing to claim, nothing decoded
    named = [(index, *identity) for index, message in enumerate(messages)
             if _KEY in message
             and (identity := _name_of(message)) is not None]
    if not named:
        return messages
    refused = book.claim(batch_id, [(name, task_id)
                                    for _, name, task_id in named])
    if not refused:
        return messages
    dropped = set()
    for index, name, task_id in named:
        if task_id in refused:
            dropped.add(index)
            log.info('task %s of queue %r dropped: its name %r is held by '
                     'task %s', task_id, queue.name, name, refused[task_id])
    return [message for index, message in enumerate(messages)
            if index not in dropped]


def _name_of(message: bytes) -> tuple[str, str] | None:
    """(name, task id) of a message whose header carries a name."""
    parts = message.split(b'\n', 2)
    try:
        fields = decode_header(parts[1]) if len(parts) == 3 else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict):
        return None
    name, task_id = fields.get('n'), fields.get('id')
    if isinstance(name, str) and isinstance(task_id, str):
        return name, task_id
    return None


class NameBook:
    """The names held in one process: the in-process queues' book."""

    def __init__(self, queue):
        self.queue = queue
        self._lock = threading.Lock()
        #: name -> (task id, epoch time it is held until)
        self._held: dict[str, tuple[str, float]] = {}
        #: batch id -> [(name, task id)] claimed by its stage
        self._batches: dict[str, list] = {}

    def claim(self, batch_id, claims) -> dict:
        refused = {}
        now = time.time()
        with self._lock:
            for name, task_id in claims:
                holder, until = self._held.get(name, (None, 0.0))
                if holder is None or holder == task_id or until <= now:
                    self._held[name] = (task_id, now + self.queue.name_ttl)
                    self._batches.setdefault(batch_id, []).append(
                        (name, task_id))
                else:
                    refused[task_id] = holder
            self._forget_expired(now)
        return refused

    def settle(self, batch_id) -> None:
        """The batch was promoted: its claims stand."""
        if self._batches:
            self._batches.pop(batch_id, None)

    def release(self, batch_id) -> None:
        """The batch was discarded: the names it claimed are free."""
        with self._lock:
            for name, task_id in self._batches.pop(batch_id, ()):
                if self._held.get(name, (None,))[0] == task_id:
                    del self._held[name]

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self._batches.clear()

    def _forget_expired(self, now: float) -> None:
        if len(self._held) > 2 * self.queue.status_max:
            for name in [name for name, (_, until) in self._held.items()
                         if until <= now]:
                del self._held[name]
