"""Dead letters: tasks that will not run again unless someone says so.

A record keeps the original message untouched after a JSON header that
says why it died, so a requeued task is the same task (same id, signed as
it was).
"""
from __future__ import annotations

import dataclasses
import json
import time

from .errors import DecodeError
from .registry import get_queue

__all__ = ['DeadLetter', 'dead_letters', 'requeue_dead', 'purge_dead']


@dataclasses.dataclass
class DeadLetter:
    task_id: str | None
    queue: str
    url: str | None
    method: str | None
    #: The last status line, None if the app raised or the message was
    #: not a task at all.
    status: str | None
    error: str
    attempt: int
    dead_at: float
    message: bytes
    #: The encoded record, as stored (set when read back).
    record: bytes = b''

    def encode(self) -> bytes:
        header = json.dumps({
            'id': self.task_id, 'q': self.queue, 'u': self.url,
            'm': self.method, 's': self.status, 'e': self.error,
            'a': self.attempt, 't': self.dead_at,
        }, separators=(',', ':')).encode()
        return header + b'\n' + self.message

    @classmethod
    def decode(cls, record: bytes) -> DeadLetter:
        header, _, message = record.partition(b'\n')
        fields = json.loads(header)
        return cls(task_id=fields['id'], queue=fields['q'], url=fields['u'],
                   method=fields['m'], status=fields['s'], error=fields['e'],
                   attempt=fields['a'], dead_at=fields['t'], message=message,
                   record=record)

    @classmethod
    def of(cls, queue: str, message: bytes, task, status, error,
           attempt: int) -> DeadLetter:
        return cls(task_id=task and task.id, queue=queue,
                   url=task and task.url, method=task and task.method,
                   status=status, error=error, attempt=attempt,
                   dead_at=time.time(), message=message)


def dead_letters(queue: str | None = None, start: int = 0,
                 stop: int = -1) -> list[DeadLetter]:
    """The dead letters of ``queue``, newest first."""
    return [DeadLetter.decode(record)
            for record in get_queue(queue).dead_letters(start, stop)]


def requeue_dead(letter: DeadLetter, queue: str | None = None) -> bool:
    """Make a dead task pending again, counting its attempts from 1.

    Return False when the letter was requeued or purged meanwhile.
    """
    backend = get_queue(queue or letter.queue)
    message = letter.message
    try:
        message = backend.codec.encode(
            backend.codec.decode(message).first_attempt())
    except DecodeError:
        pass  # Not a task we can read: it goes back as it came.
    return backend.requeue_dead(letter.record, message)


def purge_dead(queue: str | None = None) -> int:
    """Delete the dead letters of ``queue``; return how many."""
    return get_queue(queue).purge_dead()
