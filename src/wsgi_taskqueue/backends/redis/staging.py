"""Staged batches: where a transaction's tasks wait in Redis between its
vote (stage) and its promotion, invisible to consumers.

A queue keeps all of its staged batches in one hash, ``P:{Q}:staged``:
batch id -> the batch's messages, each after its length (``pack``).  So
the vote of a transaction that adds to one queue is one ``HSET``, not a
script: idempotent as it is (sent again after a lost reply, it writes the
same value), and the cheapest write Redis has.  A transaction over several
queues of one slot stages them with one script of an ``HSET`` each, and
so does every stage on a Cluster (``Stage``).  The promotion reads the
batch with ``HGET`` and drops it with ``HDEL``, and a discard is one
``HDEL``.

The stage writes no time.  A batch's age, which the sweep's grace period
is measured against, counts from the first sweep that found it: the sweep
notes when, by Redis's clock, in ``P:{Q}:staged:seen`` (batch id -> time)
and promotes the batches noted at least the grace period ago; it forgets
the notes of batches gone since (promoted or discarded), so neither the
promotion nor the discard spends a command on them.  An orphaned batch is
therefore promoted between one and two sweeps after its grace period.
"""
from __future__ import annotations

from .connection import Script

__all__ = ['Stage', 'SWEEP_STAGED', 'pack', 'unpack']


def pack(messages: list[bytes]) -> bytes:
    """A batch's messages as the value of its field: each after its
    length and a newline (messages hold newlines; lengths do not)."""
    return b''.join(b'%d\n%s' % (len(message), message)
                    for message in messages)


def unpack(value: bytes) -> list[bytes]:
    """The messages of a value written by ``pack``."""
    messages = []
    position = 0
    while position < len(value):
        newline = value.index(b'\n', position)
        start = newline + 1
        end = start + int(value[position:newline])
        messages.append(value[start:end])
        position = end
    return messages


#: ``unpack`` for the scripts that read a staged batch.
UNPACK_LUA = r"""
local function unpacked(value)
  local messages = {}
  if not value then return messages end
  local position = 1
  while position <= #value do
    local newline = string.find(value, '\n', position, true)
    local start = newline + 1
    local finish = start + tonumber(string.sub(value, position,
                                               newline - 1)) - 1
    messages[#messages + 1] = string.sub(value, start, finish)
    position = finish + 1
  end
  return messages
end
"""

#: Stage the batches of several queues of one slot.
#: KEYS: the staged hash of each queue.  ARGV: batch id, then each queue's
#: packed messages.
STAGE = r"""
for q = 1, #KEYS do
  redis.call('HSET', KEYS[q], ARGV[1], ARGV[q + 1])
end
"""


class Stage(Script):
    """The stage: a plain ``HSET`` for one queue, the STAGE script for
    several.  A Script to its runners (route.py, fanout.py), which follow
    the slot, send it again after a lost reply, and pipeline it.

    On a Cluster it is always the script, behind the migration guard
    (scripts.MIGRATION_GUARD): a stage refused while the queue's slot
    migrates waits for the move to end (route.py), where a plain ``HSET``
    of the hash still on the source would go through and leave its
    promotion to be refused (its keys split between two nodes) and
    retried in the background."""

    def __init__(self, runner, source: str, plain: bool):
        super().__init__(runner, source)
        self.plain = plain

    def command(self, line, keys, args) -> tuple:
        return self._hset(keys, args) or super().command(line, keys, args)

    def by_source(self, keys, args) -> tuple:
        return self._hset(keys, args) or super().by_source(keys, args)

    def _hset(self, keys, args) -> tuple | None:
        """The plain ``HSET`` of one queue's batch, or None."""
        if self.plain and len(keys) == 1:
            return ('HSET', keys[0], *args)
        return None


#: Note when the sweep first found each staged batch, forget the notes of
#: batches gone, and answer the batches found at least ARGV[1] seconds
#: ago.  KEYS: staged hash, its notes (``staged:seen``).
SWEEP_STAGED = r"""
local clock = redis.call('TIME')
local t = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local grace = tonumber(ARGV[1])
local seen = {}
local notes = redis.call('HGETALL', KEYS[2])
for i = 1, #notes, 2 do seen[notes[i]] = tonumber(notes[i + 1]) end
local due = {}
local batches = redis.call('HKEYS', KEYS[1])
for i = 1, #batches do
  local batch = batches[i]
  local first = seen[batch]
  if first then
    seen[batch] = nil
  else
    first = t
    redis.call('HSET', KEYS[2], batch, t)
  end
  if first <= t - grace then due[#due + 1] = batch end
end
for batch in pairs(seen) do redis.call('HDEL', KEYS[2], batch) end
return due
"""
