"""The way of one queue's commands to the server that holds its keys.

On one server or a Sentinel group that is always the same pool.  On a
Cluster it is the primary of the queue's slot (the ``{Q}`` hash tag), and
it changes: a ``MOVED`` reply (the slot moved: resharding, failover)
points the route at the new primary.  While the slot migrates, scripts
wait: Redis answers ``ASK`` or ``TRYAGAIN`` when their declared keys are
not all on the source, and the migration guard (scripts.MIGRATION_GUARD)
refuses those it would have let run, before they write anything (a script
that met a key already migrated in its middle would stop half done).  All
of these mean the script did not run, so sending it again is safe for
every script; the slot's migration ends in a ``MOVED``, which is followed.
Scripts are never run on the importing node (``ASKING``): there a key
that a script empties would make its next command fail half way.
"""
from __future__ import annotations

import time

import redis
from redis.crc import key_slot

from .connection import Script, ThreadConnections, thread_connections

__all__ = ['Route']

#: How long a command keeps following TRYAGAIN replies (a slot whose keys
#: are being migrated) before the caller hears of it.
TRYAGAIN_LIMIT = 5.0
#: Redirections one command follows at most (a slot moves once per
#: resharding step; more means the cluster is reconfiguring).
MAX_REDIRECTIONS = 16


class Route:
    """Where the commands of one queue go: the pool, thread connections and
    client of the server holding the keys of hash tag ``tag``; on a
    Cluster, followed as the slot moves (module docstring)."""

    def __init__(self, topology, tag: str):
        self.topology = topology
        self.point_at(tag)

    def point_at(self, tag: str) -> None:
        """Follow the keys of hash tag ``tag`` (a queue renamed when it is
        registered moves to its new name's slot)."""
        self.slot = key_slot(tag.encode())
        self.group = self.topology.group_for(tag)
        self._forget()

    def _forget(self) -> None:
        """Look the server up again on next use."""
        self._pool = self._connections = None

    @property
    def pool(self) -> redis.ConnectionPool:
        pool = self._pool
        if pool is None:
            pool = self._pool = self.topology.pool_for(self.slot)
        return pool

    @property
    def connections(self) -> ThreadConnections:
        connections = self._connections
        if connections is None:
            connections = self._connections = thread_connections(self.pool)
        return connections

    @property
    def client(self) -> redis.Redis:
        return self.topology.client_for(self.pool)

    def script(self, source: str) -> Script:
        return Script(self, source)

    def run_script(self, script, keys, args):
        """Run ``script`` on this thread's connection to the slot's
        primary, following the slot when it moved (MOVED) and waiting
        while it moves (ASK, TRYAGAIN, MIGRATING: module docstring)."""
        try:
            return self.connections.run_script(script, keys, args)
        except redis.ResponseError as error:
            if not redirection(error):
                raise
            return self._redirected(error, script, keys, args)

    def send_script(self, script, keys, args, failed) -> None:
        self.connections.send_script(script, keys, args, failed)

    def moved(self, error) -> None:
        """``error`` (MOVED) says where the slot is now."""
        self.topology.moved(error)
        self._forget()

    def lost(self) -> None:
        """The primary did not answer or lost its replicas: it may have
        failed over."""
        self.topology.lost()
        if self.topology.kind == 'cluster':
            self._forget()

    def _redirected(self, error, script, keys, args):
        deadline = time.monotonic() + TRYAGAIN_LIMIT
        pause = 0.005
        for _ in range(MAX_REDIRECTIONS):
            if isinstance(error, redis.exceptions.MovedError):
                self.moved(error)
            else:  # the slot is moving: wait until it has moved
                if time.monotonic() > deadline:
                    raise error
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
            try:
                return self.connections.run_script(script, keys, args)
            except redis.ResponseError as again:
                if not redirection(again):
                    raise
                error = again
        raise error


def redirection(error: redis.ResponseError) -> bool:
    """Whether ``error`` means the slot moved or is moving, so that the
    script did not run (a Cluster's MOVED, ASK, TRYAGAIN, or the
    migration guard's refusal, scripts.MIGRATION_GUARD)."""
    return isinstance(error, (redis.exceptions.AskError,
                              redis.exceptions.TryAgainError)) or (
        'non local key' in str(error))
