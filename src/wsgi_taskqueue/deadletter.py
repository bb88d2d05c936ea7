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

#: The header's keys: the field each fills, what it must be, whether a
#: letter always has it.
_FIELDS = {
    'id': ('task_id', str, False), 'q': ('queue', str, True),
    'u': ('url', str, False), 'm': ('method', str, False),
    's': ('status', str, False), 'e': ('error', str, True),
    'a': ('attempt', int, True), 't': ('dead_at', float, True),
}
_FIELD_NAMES = [name for name, _, _ in _FIELDS.values()]
#: How a problem names a field.
_LABELS = {'task_id': 'task id', 'dead_at': 'time'}
_KIND_NAMES = {str: 'a string', int: 'a whole number', float: 'a time'}


@dataclasses.dataclass
class DeadLetter:
    task_id: str | None
    queue: str | None
    url: str | None
    method: str | None
    #: The last status line, None if the app raised or the message was
    #: not a task at all.
    status: str | None
    error: str | None
    attempt: int | None
    dead_at: float | None
    #: The message as it was queued; None when the record holds none, or
    #: cannot say where it starts (see ``problem``).
    message: bytes | None
    #: The encoded record, as stored (set when read back).
    record: bytes = b''
    #: What is wrong with the stored record, None if nothing: a field that
    #: is missing or mistyped reads as None and is named here.
    problem: str | None = None

    def encode(self) -> bytes:
        header = json.dumps({
            'id': self.task_id, 'q': self.queue, 'u': self.url,
            'm': self.method, 's': self.status, 'e': self.error,
            'a': self.attempt, 't': self.dead_at,
        }, separators=(',', ':')).encode()
        return header + b'\n' + self.message

    @classmethod
    def decode(cls, record: bytes) -> DeadLetter:
        """The letter a stored record holds.  Never raises: a record that
        is not one, or whose fields are missing or mistyped, reads as a
        letter whose ``problem`` says so, for every reader to show."""
        header, newline, message = record.partition(b'\n')
        try:
            fields = json.loads(header)
        except (ValueError, RecursionError):
            fields = None
        if not newline or not isinstance(fields, dict):
            return cls(None, None, None, None, None, None, None, None,
                       message=None, record=record,
                       problem='not a dead-letter record: its first line '
                               'is not a JSON object')
        values, problems = {}, []
        for key, (name, kind, required) in _FIELDS.items():
            value = fields.get(key)
            label = _LABELS.get(name, name)
            if value is None:
                if required:
                    problems.append(f'{label} is missing')
            elif _sound(value, kind):
                values[name] = kind(value)
            else:
                problems.append(f'{label} is not {_KIND_NAMES[kind]}')
        if not message:
            problems.append('it holds no message')
        return cls(**{name: values.get(name) for name in _FIELD_NAMES},
                   message=message or None, record=record,
                   problem='; '.join(problems) or None)

    @classmethod
    def of(cls, queue: str, message: bytes, task, status, error,
           attempt: int) -> DeadLetter:
        return cls(task_id=task and task.id, queue=queue,
                   url=task and task.url, method=task and task.method,
                   status=status, error=error, attempt=attempt,
                   dead_at=time.time(), message=message)


def _sound(value, kind) -> bool:
    """Is a header's value of its field's kind (and in range: a count, an
    epoch time)?"""
    if kind is str:
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind is int:
        return isinstance(value, int) and 0 <= value < 2 ** 31
    return 0 <= value < 1e11  # also refuses NaN


def dead_letters(queue: str | None = None, start: int = 0,
                 stop: int = -1) -> list[DeadLetter]:
    """The dead letters of ``queue``, newest first."""
    return [DeadLetter.decode(record)
            for record in get_queue(queue).dead_letters(start, stop)]


def requeue_dead(letter: DeadLetter, queue: str | None = None) -> bool:
    """Make a dead task pending again, counting its attempts from 1.

    Return False when the letter was requeued or purged meanwhile, or
    when its record holds no message to requeue (see ``problem``).
    """
    if letter.message is None:
        return False
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
