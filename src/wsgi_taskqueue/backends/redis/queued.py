"""Status records of the tasks that wait on Redis without one.

A task that simply becomes pending gets no status record of its own
(``P:{Q}:task:<id>``): PROMOTE writes only its entry in the ``tasks``
index (id -> time queued), and the record is first written when the task
starts running, or leaves the queue otherwise (cancel, purge).  That
halves what a queued task holds in Redis and spares the promotion two
commands per task.  What operators read of such a task is made here: its
state (``queued``) and times from the index entry, its header (path,
method, user, options) from its message, found by a scan of the pending
lists bounded by ``SCAN_BOUND``.

An index entry without a record is a waiting task only while it is
fresh: one older than ``status_ttl`` belongs to a record that expired
(the sweep drops such entries), so it is no task at all; nor is one whose
message a scan that read every pending list to its end did not find.
"""
from __future__ import annotations

import contextlib

from ...errors import DecodeError
from ...status import header_of, record

__all__ = ['SCAN_BOUND', 'PendingMessages', 'waits_unrecorded',
           'queued_records']

#: How many messages of each pending list one look for the messages of
#: queued tasks reads at most, newest first: a task just queued is found
#: in the first chunk, one deep in a backlog may not be (its record then
#: lacks its header's fields: path, method, user, options).
SCAN_BOUND = 10_000
#: How many messages of each pending list one round trip reads.
SCAN_CHUNK = 500
#: How the header of a message begins (after its signature line), up to
#: the task id: the encoder writes the version, then the id.
_ID_MARK = b'{"v":1,"id":"'


def waits_unrecorded(queue, queued_at, now: float) -> bool:
    """Whether a task with no status record, indexed at ``queued_at``
    (None: not indexed), waits in ``queue``; ``now`` is Redis's time."""
    return queued_at is not None and queued_at > now - queue.status_ttl


def queued_records(queue, entries: dict, pending: PendingMessages) -> dict:
    """The records of those of the tasks ``entries`` (id -> time queued),
    which have none, that wait, by id: state ``queued``, ``created`` and
    ``updated`` from the time queued, and the fields of their headers for
    those whose messages ``pending`` finds.  One whose message it did not
    find although it read every pending list to its end waits no more
    (it was taken since, or its record was deleted by hand): it has
    none."""
    found = pending.find(set(entries))
    records = {}
    for task_id, queued_at in entries.items():
        if task_id not in found and pending.read_all:
            continue
        fields = {'id': task_id, 'state': 'queued', 'updated': str(queued_at)}
        if task_id in found:
            with contextlib.suppress(DecodeError):
                fields['header'] = header_of(
                    queue.codec.decode_unverified(found[task_id]))
        shown = record(fields, queue.name)
        if shown['created'] is None:
            shown['created'] = float(queued_at)
        records[task_id] = shown
    return records


class PendingMessages:
    """The messages of a queue's pending lists (every priority's), read
    newest first, a chunk of each list per round trip, as far as the
    tasks looked for need and at most ``SCAN_BOUND`` of each list (a
    list shorter than that is read to its end); what
    was read is kept for the next look (a listing looks for the tasks of
    one index chunk after another, in about the order they wait in)."""

    def __init__(self, queue):
        self.queue = queue
        self._lines: list | None = None
        self._start = 0
        #: id -> message without its payload, of those read so far
        self._read: dict = {}

    @property
    def read_all(self) -> bool:
        """Whether every pending list was read to its end."""
        return self._lines == []

    def find(self, wanted: set) -> dict:
        """The messages (without their payloads: enough to decode their
        headers) of those of the tasks ``wanted`` found, by id."""
        missing = wanted - self._read.keys()
        client = self.queue.client
        if self._lines is None:
            pending = self.queue.pending_key
            self._lines = [pending] + [
                f'{pending}:{level.decode()}'
                for level in client.smembers(pending + ':levels')]
        while missing and self._lines and self._start < SCAN_BOUND:
            pipe = client.pipeline(transaction=False)
            for line in self._lines:
                pipe.lrange(line, self._start, self._start + SCAN_CHUNK - 1)
            chunks = pipe.execute()
            for message in (message for chunk in chunks for message in chunk):
                task_id = _id_of(message)
                if task_id is not None:
                    self._read[task_id] = _without_payload(message)
                    missing.discard(task_id)
            self._lines = [line for line, chunk
                           in zip(self._lines, chunks, strict=True)
                           if len(chunk) == SCAN_CHUNK]
            self._start += SCAN_CHUNK
        return {task_id: self._read[task_id] for task_id in wanted
                if task_id in self._read}


def _id_of(message: bytes) -> str | None:
    """The task id a message claims, read without decoding its header."""
    begins = message.find(b'\n') + 1
    if not begins or not message.startswith(_ID_MARK, begins):
        return None
    begins += len(_ID_MARK)
    ends = message.find(b'"', begins, begins + 64)
    return message[begins:ends].decode('ascii', 'replace') if ends > 0 \
        else None


def _without_payload(message: bytes) -> bytes:
    """A message's signature and header lines, all a record needs."""
    header_ends = message.find(b'\n', message.find(b'\n') + 1)
    return message if header_ends < 0 else message[:header_ends]
