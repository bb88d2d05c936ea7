"""A Sentinel group: a primary, its replicas, and the Sentinels that watch
them (topology.py decides when it is one).

Every connection made from the pool of redis-py's ``Sentinel.master_for``
(the pool's, the thread connections', the blocking waiters') asks the
Sentinels for the primary when it connects, and a ``READONLY`` reply (the
server it talks to was demoted) disconnects it.  Each process also follows
the Sentinels' events, so that its connections move as soon as a failover
is under way, not on their first error.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time

import redis
import redis.sentinel

from .bounds import BoundedSentinelPool
from .connection import thread_connections
from .topology import REFRESH_INTERVAL, SingleTopology

__all__ = ['SentinelTopology', 'announced_primary']

#: The Sentinel events that name a new primary: chosen (the moment before
#: its promotion), promoted, and the configuration switched (each Sentinel
#: publishes that one when it learns of the failover, often a second after
#: the promotion).
PRIMARY_EVENTS = ('+selected-slave', '+promoted-slave', '+switch-master')
#: How long the primary a Sentinel announced is taken without asking:
#: long enough for the Sentinels to agree on it (they do within seconds).
PROMOTED_FOR = 10.0


class SentinelTopology(SingleTopology):
    """A primary and its replicas, watched by Sentinels."""

    kind = 'sentinel'

    def __init__(self, addresses, service_name, db, username, password,
                 sentinel_password, common, bounds):
        # The Sentinels speak TLS when the primary does (rediss+sentinel).
        sentinel_kwargs = {k: v for k, v in common.items()
                           if k.startswith(('socket_', 'ssl'))}
        if sentinel_password:
            sentinel_kwargs['password'] = sentinel_password
        self.sentinel = _NewestSentinel(list(addresses),
                                 sentinel_kwargs=sentinel_kwargs)
        pool = self.sentinel.master_for(
            service_name, connection_pool_class=BoundedSentinelPool,
            db=db, username=username, password=password, **common,
            **bounds).connection_pool
        self.addresses = addresses
        self.service_name = service_name
        self.watch_kwargs = dict(
            socket_connect_timeout=common['socket_connect_timeout'],
            socket_keepalive=True, decode_responses=True,
            password=sentinel_password, **{
                k: v for k, v in common.items() if k.startswith('ssl')})
        self._watchers: list[threading.Thread] = []
        self._watch_lock = threading.Lock()
        self._asked = 0.0
        # A forked child (a pre-forking server) has none of the parent's
        # threads: it follows the Sentinels with threads of its own.
        os.register_at_fork(after_in_child=self._forked)
        hosts = ','.join(f'{h}:{p}' for h, p in addresses)
        super().__init__(pool, f'redis+sentinel://{hosts}/{service_name}/{db}')

    def lost(self) -> None:
        """The primary did not answer or lost its replicas: if the
        Sentinels name another one now, every connection moves there.
        Asked at most once per REFRESH_INTERVAL: every failing command of
        every thread reports it."""
        with self._watch_lock:
            if time.monotonic() - self._asked < REFRESH_INTERVAL:
                return
            self._asked = time.monotonic()
        address = self.pool.master_address
        try:
            if self.pool.get_master_address() != address:
                self.switched()
        except redis.RedisError:
            pass  # no Sentinel answers: the next command says so

    def switched(self) -> None:
        """Connections made before a failover connect again before their
        next command (the pool's idle ones are closed by redis-py)."""
        thread_connections(self.pool).renew()
        with contextlib.suppress(redis.RedisError):
            self.pool.get_master_address()

    def watch(self) -> None:
        """Follow every Sentinel in a daemon thread each (PRIMARY_EVENTS):
        on a failover every connection moves at once, not on its first
        error.  A demoted primary that still runs takes writes until the
        Sentinels reconfigure it, seconds later, and its demotion drops
        them; so the connections move as soon as the Sentinel making the
        failover has chosen the replica (``+selected-slave``), the moment
        before it promotes it: a command sent in that moment meets a
        replica, fails (READONLY) and is not lost.  A failover that aborts
        sends them back to asking the Sentinels."""
        with self._watch_lock:
            if self._watchers:
                return
            for address in self.addresses:
                watcher = threading.Thread(
                    target=self._watch, args=address, daemon=True,
                    name=f'wsgi-taskqueue sentinel watch {address}')
                watcher.start()
                self._watchers.append(watcher)

    def _forked(self) -> None:
        self._watch_lock = threading.Lock()
        if self._watchers:
            self._watchers = []
            self.watch()

    def _watch(self, host: str, port: int) -> None:
        pause = 0.1
        while True:
            client = redis.Redis(host, port, **self.watch_kwargs)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*PRIMARY_EVENTS)
                pubsub.psubscribe('-failover-abort-*')
                pause = 0.1
                for message in pubsub.listen():
                    if message['type'] == 'pmessage':  # back to asking
                        if self.service_name in message['data'].split():
                            self.sentinel.promoted(None)
                            self.switched()
                        continue
                    address = announced_primary(message, self.service_name)
                    if address is not None:
                        self.sentinel.promoted(address)
                        self.switched()
            except (redis.RedisError, OSError, IndexError):
                pass
            finally:
                client.close()
            time.sleep(pause)  # this Sentinel is away: back off
            pause = min(pause * 2, 5.0)

    def disconnect(self) -> None:
        super().disconnect()
        for client in self.sentinel.sentinels:
            client.close()


def announced_primary(message: dict, service_name: str):
    """The new primary's (host, port) that a Sentinel event announces for
    ``service_name``, or None.

    ``+switch-master``: ``<name> <old ip> <old port> <new ip> <new port>``;
    the others: ``slave <ip>:<port> <ip> <port> @ <name> ...``."""
    fields = message['data'].split()
    if message['channel'] == '+switch-master' and len(fields) == 5:
        name, host, port = fields[0], fields[3], fields[4]
    elif len(fields) >= 6 and fields[4] == '@':
        name, host, port = fields[5], fields[2], fields[3]
    else:
        return None
    if name != service_name or not port.isdigit():
        return None
    return host, int(port)


class _NewestSentinel(redis.sentinel.Sentinel):
    """Sentinels asked for the primary: the newest word wins.

    redis-py takes the first Sentinel's answer; during a failover the
    Sentinels disagree for a while (the one that made the failover is the
    last to say so), and the first may name the old primary, which still
    takes writes that its demotion will drop.  Every Sentinel is asked,
    and the answer of the highest configuration epoch is taken, one that
    is not still in the middle of a failover first (a connection asks only
    when it connects).  Before they agree, the primary a Sentinel event
    announced (``promoted``) is taken for PROMOTED_FOR seconds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._promoted = None

    def promoted(self, address: tuple[str, int] | None) -> None:
        """Take ``address`` as the primary for a while (None: ask)."""
        self._promoted = address and (address, time.monotonic()
                                      + PROMOTED_FOR)

    def discover_master(self, service_name):
        promoted = self._promoted
        if promoted is not None and time.monotonic() < promoted[1]:
            return promoted[0]
        newest, rank = None, None
        for sentinel in self.sentinels:
            try:
                state = sentinel.sentinel_masters().get(service_name)
            except (redis.ConnectionError, redis.TimeoutError):
                continue
            if not state or not self.check_master_state(state, service_name):
                continue
            settled = 'failover_in_progress' not in state.get('flags', '')
            if rank is None or (state['config-epoch'], settled) > rank:
                newest, rank = state, (state['config-epoch'], settled)
        if newest is None:
            return super().discover_master(service_name)  # raises
        return newest['ip'], newest['port']
