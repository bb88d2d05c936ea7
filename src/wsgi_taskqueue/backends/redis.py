"""The Redis queue: durable, shared between processes, scales out.

Key layout of one queue (``P`` is the key prefix, ``Q`` the queue name; the
``{Q}`` hash tag keeps all of a queue's keys in one Redis Cluster slot, so
every script that works on one queue is legal there; the stage, promotion
and push of a transaction's tasks for several queues of one Redis take one
round trip for all of them, which a cluster would have to split by slot):

======================== ====== ==================================== ==========================
key                      type   written by                           emptied by
======================== ====== ==================================== ==========================
P:{Q}:staged:<batch>     list   the vote of a transaction (stage)    promote / discard
P:{Q}:staged             zset   stage: batch -> time staged          promote / discard
P:{Q}:pending            list   promote, push (LPUSH, order kept)    reserve (from the right)
P:{Q}:processing:<name>  list   reserve (LMOVE from pending)         ack (or reserve's done), retry,
                                                                     bury, requeue
P:{Q}:consumers          set    reserve, requeue_processing          sweep, once a gone consumer's list is empty
P:{Q}:leases             zset   acquire: consumer -> lease expiry    release, sweep
P:{Q}:owners             hash   acquire: consumer -> process token   release, sweep
P:{Q}:deliveries:<id>    string requeue of an unfinished task (INCR)  expires after a day
P:{Q}:delayed            zset   retry: message -> due time           reserve, when due
P:{Q}:dead               list   bury (newest at the left)            requeue_dead, purge_dead
======================== ====== ==================================== ==========================

A message is never in two places and never in none: every move between
these keys happens in one Lua script or MULTI, so a crash between two
commands cannot lose or duplicate it.

A consumer holds a lease (renewed by its heartbeat) on its name.  The
sweep, run by every live consumer, requeues the processing list of every
consumer whose lease is gone, counting how often each task was found
unfinished: one that keeps killing its consumer goes to the dead letters
instead of looping.  It also promotes staged batches older than a grace
period: their transaction voted, but the process died before it could
promote or discard them (at-least-once: see the README's Guarantees).
Lease times come from Redis's clock (TIME), so consumers on hosts whose
clocks disagree still agree on who is gone.

Waiting consumers block in BLMOVE on a connection of their own, which is
Redis's own wakeup (no PubSub round trip on the way); ``interrupt`` ends the
wait with CLIENT UNBLOCK.
"""
from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from zope.interface import implementer

from ..errors import BackendUnavailable
from ..interfaces import IQueueBackend
from .base import QueueBase

__all__ = ['RedisQueue']

#: Long enough for a loaded Redis to answer, short enough that a request
#: whose commit meets a dead Redis fails within seconds (G6).
DEFAULT_SOCKET_TIMEOUT = 5.0

# KEYS: (staged batch, pending, staged index) for each queue; ARGV: batch
_PROMOTE = """
for q = 1, #KEYS, 3 do
  local items = redis.call('LRANGE', KEYS[q], 0, -1)
  for i = 1, #items, 1000 do
    redis.call('LPUSH', KEYS[q + 1], unpack(items, i, math.min(i + 999, #items)))
  end
  redis.call('DEL', KEYS[q])
  redis.call('ZREM', KEYS[q + 2], ARGV[1])
end
"""

_RESERVE = """
for i = 4, #ARGV do redis.call('LREM', KEYS[2], 1, ARGV[i]) end
redis.call('SADD', KEYS[4], ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, 100)
for i = 1, #due do
  redis.call('RPUSH', KEYS[1], due[i])
  redis.call('ZREM', KEYS[3], due[i])
end
local taken = {}
for i = 1, tonumber(ARGV[1]) do
  local message = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not message then break end
  taken[i] = message
end
if #taken > 0 then return {taken, false} end
local next_retry = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {taken, next_retry[2] or false}
"""

_ACQUIRE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if expiry and tonumber(expiry) > now and owner and owner ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
"""

# KEYS: processing, pending, dead, leases, owners, consumers
# ARGV: consumer, max deliveries (0: no limit), delivery counter prefix,
#       queue name, '1' to requeue only if the consumer's lease is gone
_REQUEUE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
if ARGV[5] == '1' then
  local expiry = redis.call('ZSCORE', KEYS[4], ARGV[1])
  if expiry and tonumber(expiry) > now then return {0, 0} end
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
end
redis.call('SADD', KEYS[6], ARGV[1])
local limit = tonumber(ARGV[2])
local requeued, buried = 0, 0
while true do
  local message = redis.call('LPOP', KEYS[1])
  if not message then break end
  local header = nil
  local first = string.find(message, '\\n', 1, true)
  local second = first and string.find(message, '\\n', first + 1, true)
  if second then
    local ok, decoded = pcall(cjson.decode, string.sub(message, first + 1, second - 1))
    if ok and type(decoded) == 'table' then header = decoded end
  end
  local id = header and type(header.id) == 'string' and header.id or nil
  local counter = ARGV[3] .. (id or redis.sha1hex(message))
  local deliveries = redis.call('INCR', counter)
  redis.call('EXPIRE', counter, 86400)
  if limit > 0 and deliveries >= limit then
    local function field(name)
      local value = header and header[name]
      if type(value) == 'string' or type(value) == 'number' then return value end
      return cjson.null
    end
    local record = cjson.encode({
      id = id or cjson.null, q = ARGV[4], u = field('u'), m = field('m'),
      s = cjson.null, a = header and tonumber(header.a) or 0, t = now,
      e = 'delivered ' .. deliveries .. ' times without finishing: ' ..
          'its consumer stopped or died each time'})
    redis.call('LPUSH', KEYS[3], record .. '\\n' .. message)
    buried = buried + 1
  else
    redis.call('RPUSH', KEYS[2], message)
    requeued = requeued + 1
  end
end
if ARGV[5] == '1' then redis.call('SREM', KEYS[6], ARGV[1]) end
return {requeued, buried}
"""

_REQUEUE_DEAD = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"""


@contextlib.contextmanager
def _translated_errors(where: str):
    """Turn redis-py's transport errors into BackendUnavailable, naming
    the server but never its password."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f'Redis at {where} unavailable: {exc}') from exc


@implementer(IQueueBackend)
class RedisQueue(QueueBase):
    """See IQueueBackend; the key layout is in this module's docstring."""

    shared = True

    def __init__(self, name: str = 'default', *, url: str | None = None,
                 host: str = '127.0.0.1', port: int = 6379, db: int = 0,
                 username: str | None = None, password: str | None = None,
                 unix_socket_path: str | None = None,
                 socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
                 key_prefix: str = 'wsgi-taskqueue', **options):
        self.key_prefix = key_prefix
        super().__init__(name, **options)
        self.socket_timeout = socket_timeout
        common = dict(socket_timeout=socket_timeout,
                      socket_connect_timeout=socket_timeout,
                      socket_keepalive=True,
                      # One immediate retry replaces a pooled connection
                      # that a Redis restart closed; more would stretch
                      # the time a failing vote takes (G6).
                      retry=Retry(NoBackoff(), 1))
        if url:
            self.pool = _shared_pool(
                (url, socket_timeout),
                lambda: redis.ConnectionPool.from_url(url, **common))
            self.where = _describe_url(url)
        else:
            self.pool = _shared_pool(
                (host, port, db, username, password, unix_socket_path,
                 socket_timeout),
                lambda: redis.ConnectionPool(
                    connection_class=(redis.UnixDomainSocketConnection
                                      if unix_socket_path
                                      else redis.Connection),
                    **({'path': unix_socket_path} if unix_socket_path
                       else {'host': host, 'port': port}),
                    db=db, username=username, password=password, **common))
            self.where = (unix_socket_path or f'{host}:{port}') + f'/{db}'
        self.client = redis.Redis(connection_pool=self.pool)
        self._promote = self.client.register_script(_PROMOTE)
        self._reserve = self.client.register_script(_RESERVE)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)
        self._requeue = self.client.register_script(_REQUEUE)
        self._requeue_dead = self.client.register_script(_REQUEUE_DEAD)
        self._waiters = threading.local()
        self._waiting: dict[str, set] = {}
        self._waiting_lock = threading.Lock()
        self._interruptions: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        # The keys follow the name the queue is registered under.
        self._name = value
        base = f'{self.key_prefix}:{{{value}}}:'
        self.pending_key = base + 'pending'
        self.staged_key = base + 'staged'
        self.delayed_key = base + 'delayed'
        self.dead_key = base + 'dead'
        self.consumers_key = base + 'consumers'
        self.leases_key = base + 'leases'
        self.owners_key = base + 'owners'
        self.deliveries_prefix = base + 'deliveries:'
        self._base = base

    def staged_batch_key(self, batch_id: str) -> str:
        return f'{self._base}staged:{batch_id}'

    def processing_key(self, consumer: str) -> str:
        return f'{self._base}processing:{consumer}'

    # -- the transaction's side ------------------------------------------

    @property
    def group(self):
        # Queues on one Redis share a pool; what the data manager does for
        # all of them takes one round trip.
        return self.pool

    def stage_batches(self, batch_id, batches):
        now = time.time()
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            for queue, messages in batches.items():
                pipe.rpush(queue.staged_batch_key(batch_id), *messages)
                pipe.zadd(queue.staged_key, {batch_id: now})
            pipe.execute()

    def promote_batches(self, batch_id, queues):
        keys = []
        for queue in queues:
            keys += [queue.staged_batch_key(batch_id), queue.pending_key,
                     queue.staged_key]
        with _translated_errors(self.where):
            self._promote(keys=keys, args=[batch_id])

    def push_batches(self, batches):
        with _translated_errors(self.where):
            if len(batches) == 1:  # one LPUSH is atomic by itself
                [(queue, messages)] = batches.items()
                self.client.lpush(queue.pending_key, *messages)
                return
            pipe = self.client.pipeline(transaction=True)
            for queue, messages in batches.items():
                pipe.lpush(queue.pending_key, *messages)
            pipe.execute()

    def discard(self, batch_id):
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.staged_batch_key(batch_id))
            pipe.zrem(self.staged_key, batch_id)
            pipe.execute()

    # -- the consumer's side ---------------------------------------------

    def reserve(self, consumer, limit, timeout, done=()):
        processing = self.processing_key(consumer)
        deadline = time.monotonic() + timeout
        interruptions = self._interruptions.get(consumer, 0)
        with _translated_errors(self.where):
            while True:
                taken, next_retry = self._reserve(
                    keys=[self.pending_key, processing, self.delayed_key,
                          self.consumers_key],
                    args=[limit, time.time(), consumer, *done])
                done = ()
                if taken:
                    return taken
                wait = deadline - time.monotonic()
                if wait <= 0 or interruptions != self._interruptions.get(
                        consumer, 0):
                    return []
                if next_retry is not None:
                    # BLMOVE does not wake for a retry falling due.
                    wait = min(wait, max(0.001, float(next_retry) - time.time()))
                message = self._waiter(consumer, timeout).blmove(
                    self.pending_key, processing, wait, 'RIGHT', 'LEFT')
                if message is not None:
                    return [message]

    def interrupt(self, consumer):
        with self._waiting_lock:
            self._interruptions[consumer] = (
                self._interruptions.get(consumer, 0) + 1)
            waiters = list(self._waiting.get(consumer, ()))
        with _translated_errors(self.where):
            for waiter in waiters:
                if waiter.client_id is not None:
                    self.client.client_unblock(waiter.client_id)

    def ack(self, consumer, messages):
        processing = self.processing_key(consumer)
        with _translated_errors(self.where):
            if len(messages) == 1:
                self.client.lrem(processing, 1, messages[0])
                return
            pipe = self.client.pipeline(transaction=False)
            for message in messages:
                pipe.lrem(processing, 1, message)
            pipe.execute()

    def retry(self, consumer, message, new_message, due):
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.lrem(self.processing_key(consumer), 1, message)
            pipe.zadd(self.delayed_key, {new_message: due})
            pipe.execute()

    def bury(self, consumer, message, record):
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.lrem(self.processing_key(consumer), 1, message)
            pipe.lpush(self.dead_key, record)
            pipe.execute()

    def requeue_processing(self, consumer, max_deliveries=0):
        with _translated_errors(self.where):
            return tuple(self._requeue_list(consumer, max_deliveries, False))

    def acquire(self, consumer, token, ttl):
        with _translated_errors(self.where):
            return bool(self._acquire(keys=[self.leases_key, self.owners_key],
                                      args=[consumer, token, ttl]))

    def release(self, consumer, token):
        with _translated_errors(self.where):
            self._release(keys=[self.leases_key, self.owners_key],
                          args=[consumer, token])

    def sweep(self, grace, max_deliveries=0):
        report = {'consumers': [], 'requeued': 0, 'dead': 0, 'batches': []}
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=False)
            pipe.smembers(self.consumers_key)
            pipe.time()
            names, (seconds, micros) = pipe.execute()
            now = seconds + micros / 1e6
            live = {name for name in self.client.zrangebyscore(
                self.leases_key, now, '+inf')}
            for name in sorted(names - live):
                name = name.decode()
                requeued, dead = self._requeue_list(name, max_deliveries, True)
                if requeued or dead:
                    report['consumers'].append(name)
                    report['requeued'] += requeued
                    report['dead'] += dead
            for batch in self.client.zrangebyscore(
                    self.staged_key, '-inf', time.time() - grace):
                batch = batch.decode()
                self.promote(batch)
                report['batches'].append(batch)
        return report

    def _requeue_list(self, consumer, max_deliveries, only_if_gone):
        return self._requeue(
            keys=[self.processing_key(consumer), self.pending_key,
                  self.dead_key, self.leases_key, self.owners_key,
                  self.consumers_key],
            args=[consumer, max_deliveries, self.deliveries_prefix,
                  self.name, '1' if only_if_gone else '0'])

    # -- operations ------------------------------------------------------

    def counts(self):
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(self.pending_key)
            pipe.zcard(self.delayed_key)
            pipe.llen(self.dead_key)
            pipe.zcard(self.staged_key)
            pipe.smembers(self.consumers_key)
            pending, delayed, dead, staged, consumers = pipe.execute()
            names = sorted(name.decode() for name in consumers)
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.llen(self.processing_key(name))
            processing = dict(zip(names, pipe.execute()))
        return {'pending': pending, 'delayed': delayed, 'dead': dead,
                'staged': staged,
                'processing': {name: count for name, count
                               in processing.items() if count}}

    def dead_letters(self, start=0, stop=-1):
        with _translated_errors(self.where):
            return self.client.lrange(self.dead_key, start, stop)

    def requeue_dead(self, record, message):
        with _translated_errors(self.where):
            return bool(self._requeue_dead(
                keys=[self.dead_key, self.pending_key],
                args=[record, message]))

    def purge_dead(self):
        with _translated_errors(self.where):
            pipe = self.client.pipeline(transaction=True)
            pipe.llen(self.dead_key)
            pipe.delete(self.dead_key)
            return pipe.execute()[0]

    def close(self):
        for consumer in list(self._waiting):
            with contextlib.suppress(BackendUnavailable):
                self.interrupt(consumer)
        self.pool.disconnect()

    # -- blocking waits --------------------------------------------------

    def _waiter(self, consumer: str, timeout: float) -> '_Waiter':
        """This thread's blocking connection for ``consumer``."""
        mine = self._waiters.__dict__.setdefault('by_consumer', {})
        waiter = mine.get(consumer)
        if waiter is None:
            waiter = mine[consumer] = _Waiter(
                self.pool, self.socket_timeout + timeout)
            waiter.connection.connect()
            with self._waiting_lock:
                self._waiting.setdefault(consumer, set()).add(waiter)
        return waiter


class _Waiter:
    """A connection of its own for BLMOVE, which knows its CLIENT ID so
    that another thread can end the wait."""

    def __init__(self, pool: redis.ConnectionPool, socket_timeout: float):
        kwargs = dict(pool.connection_kwargs, socket_timeout=socket_timeout)
        self.connection = pool.connection_class(**kwargs)
        self.connection.register_connect_callback(self._learn_id)
        self.client_id: int | None = None

    def _learn_id(self, connection) -> None:
        connection.send_command('CLIENT', 'ID')
        self.client_id = connection.read_response()

    def blmove(self, source, destination, timeout, src, dest):
        connection = self.connection
        try:
            connection.send_command('BLMOVE', source, destination, src, dest,
                                    timeout)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            self.client_id = None
            raise


_pools: dict = {}
_pools_lock = threading.Lock()


def _shared_pool(key: tuple, make) -> redis.ConnectionPool:
    """One connection pool per Redis (and settings) in a process."""
    with _pools_lock:
        if key not in _pools:
            _pools[key] = make()
        return _pools[key]


def _describe_url(url: str) -> str:
    """host:port/db of a redis URL, without credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or parts.path or 'localhost'
    port = f':{parts.port}' if parts.port else ''
    return f'{parts.scheme}://{host}{port}{parts.path if parts.hostname else ""}'
