"""Task names on Redis: ``P:{Q}:name:<name>`` holds the id of the task
that claimed it, expiring ``name_ttl`` seconds after the claim.

A claim is one script, run at the vote just after the stage (one more
round trip, only for a transaction that adds named tasks): SET NX for
each name, so of transactions claiming one name at the same time exactly
one gets it.  Claiming again what a task holds already succeeds, so a
claim resent after a lost reply changes nothing.  The tasks whose name
another task holds are then staged no more (the batch is staged again
without them: one more round trip, only then).  The claims of a batch
are remembered in the process until it is promoted, or released (DEL of
the names still held by their task) when it is discarded.  Claiming
after the stage means that no name is ever held by a task that was not
staged: a process that stops between stage and claim leaves a batch
that the sweep promotes with its names unclaimed (a task of such a name
added later is not refused), rather than names held until they expire
by tasks that never came, which refused every task of those names.  A
sharded queue keeps its names on its first shard, so that they are one
per queue.
"""
from __future__ import annotations

__all__ = ['RedisNames']

#: KEYS: the name keys.  ARGV: name_ttl, then the task id of each.
#: Returns {task id, holder id, ...} for the names held by other tasks.
CLAIM = r"""
local refused = {}
for i = 1, #KEYS do
  local id = ARGV[i + 1]
  local holder = redis.call('GET', KEYS[i])
  if not holder then
    redis.call('SET', KEYS[i], id, 'EX', tonumber(ARGV[1]))
  elseif holder ~= id then
    refused[#refused + 1] = id
    refused[#refused + 1] = holder
  end
end
return refused
"""

#: KEYS: the name keys.  ARGV: the task id of each.
RELEASE = r"""
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then redis.call('DEL', KEYS[i]) end
end
"""


class RedisNames:
    """The name book of one Redis queue (see ``backends.names``); its
    calls run within the queue's ``Talking``, ``twice`` sends a script
    once more after a failed connection."""

    def __init__(self, queue, register, twice):
        self.queue = queue
        self._claim = register(CLAIM)
        self._release = register(RELEASE)
        self._twice = twice
        #: batch id -> [(name, task id)] claimed by its stage
        self._batches: dict[str, list] = {}

    def claim(self, batch_id, claims) -> dict:
        self._batches[batch_id] = claims
        keys = [self.queue.base + 'name:' + name for name, _ in claims]
        reply = self._twice(self._claim, keys=keys, args=[
            self.queue.name_ttl, *(task_id for _, task_id in claims)])
        replies = [item.decode() if isinstance(item, bytes) else item
                   for item in reply]
        return dict(zip(replies[::2], replies[1::2], strict=True))

    def settle(self, batch_id) -> None:
        if self._batches:
            self._batches.pop(batch_id, None)

    def release(self, batch_id) -> None:
        claims = self._batches.pop(batch_id, None)
        if not claims:
            return
        self._twice(self._release, keys=[
            self.queue.base + 'name:' + name for name, _ in claims],
            args=[task_id for _, task_id in claims])
