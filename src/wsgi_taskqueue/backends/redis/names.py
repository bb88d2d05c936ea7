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
staged (such names, held until they expired, refused every task of
theirs).  A process that stops between stage and claim leaves a batch
that a sweep promotes; the promotion checks the names of what it
promotes (NAME_KEPT), so a task of that batch claims its name then, or
is dropped if a task claimed it meanwhile (the transaction run again).
A sharded queue keeps its names on its first shard, so that they are one
per queue (on a Cluster its promotions cannot reach them: there the
batch of a process that stopped between stage and claim is promoted
whole).
"""
from __future__ import annotations

__all__ = ['RedisNames', 'NAME_KEPT']

#: For PROMOTE (after the PRELUDE): whether a message being promoted is
#: kept, false when its name is held by another task.  Its own claim at
#: the vote made it the holder; a batch that a sweep promotes may have
#: claimed nothing (its process died between stage and claim), so its
#: task claims its name now, or is dropped for the task that claimed it
#: first (a second run of the transaction that staged it).  ``names``:
#: the base of the keys holding the queue's names, '' where the script
#: cannot reach them (a sharded queue on a Cluster: then nothing is
#: checked, and the window stays open).
NAME_KEPT = r"""
local function name_kept(names, name_ttl, message)
  if names == '' then return true end
  local at = string.find(message, ',"n":"', 1, true)
  if not at then return true end
  local first = string.find(message, '\n', 1, true)
  local second = first and string.find(message, '\n', first + 1, true)
  local name = string.match(message, '^([^"]+)"', at + 6)
  local id = id_of(message)
  if not second or at > second or not name or not id then return true end
  local key = names .. 'name:' .. name
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, id, 'EX', name_ttl)
    return true
  end
  return holder == id
end
"""

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

    def base_for(self, queue) -> str:
        """Where the promotion of ``queue``'s batches finds these names
        (scripts.PROMOTE): '' when its script cannot reach them, the
        names being on another shard's slot of a Cluster."""
        if queue is self.queue or queue.topology.kind != 'cluster':
            return self.queue.base
        return ''

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
