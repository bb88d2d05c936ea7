"""Priorities: which pending task a consumer takes first.

A task added with ``priority=N`` (0 lowest to 9 highest; 5 when not
given, and then not written in its header) is taken before every pending
task of a lower priority; within one priority tasks are taken in the
order they became pending (FIFO, and G4's order within a transaction).
Nothing ages a waiting task: under a steady stream of higher-priority
tasks, lower ones wait (docs/task-options.rst).

Backends read the priority from the message without decoding it: the
codec writes it as ``,"p":N`` after the fields every task has, one digit,
and no other header key can be ``"p"`` (environ keys are upper case, and
quotes inside JSON strings are escaped).  The Redis scripts do the same
(``redis/priority.py``); the SQL queue keeps it in a column.
"""
from __future__ import annotations

import collections

from ..validation import DEFAULT_PRIORITY

__all__ = ['priority_of', 'PendingLine']

_KEY = b',"p":'


def priority_of(message: bytes) -> int:
    """The priority a message's header carries, DEFAULT_PRIORITY for
    none (or a message that is not a task)."""
    if _KEY not in message:
        return DEFAULT_PRIORITY  # the common case, without a call
    at = message.find(_KEY)
    first = message.find(b'\n')
    if at > message.find(b'\n', first + 1) or not message[at + 5:at + 6
                                                          ].isdigit():
        return DEFAULT_PRIORITY  # in the payload, or not a priority
    return message[at + 5] - 0x30


class PendingLine:
    """The pending tasks of an in-process queue, highest priority first,
    FIFO within a priority: one deque per priority in use."""

    def __init__(self):
        self._levels: dict[int, collections.deque] = {}

    def append(self, message: bytes) -> None:
        """``message`` last among its priority."""
        level = priority_of(message)
        line = self._levels.get(level)
        if line is None:
            line = self._levels[level] = collections.deque()
        line.append(message)

    def put_first(self, messages) -> None:
        """``messages`` first among their priorities, in their order (a
        requeued slot, retries that fell due)."""
        for message in reversed(list(messages)):
            self._level(priority_of(message)).appendleft(message)

    def popleft(self) -> bytes:
        """The first task of the highest priority pending."""
        level = max(self._levels)
        line = self._levels[level]
        message = line.popleft()
        if not line:
            del self._levels[level]
        return message

    def remove(self, message: bytes) -> None:
        level = priority_of(message)
        line = self._levels[level]
        line.remove(message)
        if not line:
            del self._levels[level]

    def clear(self) -> None:
        self._levels.clear()

    def __len__(self) -> int:
        return sum(map(len, self._levels.values()))

    def __iter__(self):
        """In the order consumers would take them."""
        for level in sorted(self._levels, reverse=True):
            yield from self._levels[level]

    def _level(self, priority: int) -> collections.deque:
        line = self._levels.get(priority)
        if line is None:
            line = self._levels[priority] = collections.deque()
        return line
