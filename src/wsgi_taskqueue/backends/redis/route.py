"""The way of one queue's commands to the server that holds its keys.

On one server or a Sentinel group that is always the same pool.  On a
Cluster it is the primary of the queue's slot (the ``{Q}`` hash tag), and
it changes: a ``MOVED`` reply (the slot moved: resharding, failover)
points the route at the new primary, an ``ASK`` reply (the slot is
migrating) sends the command to the target with ``ASKING``, and a
``TRYAGAIN`` reply (the queue's keys are split between the two nodes for a
moment) is retried after a short pause.  All three mean the command was
not run, so sending it again is safe for every command.
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
        primary, following MOVED, ASK and TRYAGAIN."""
        try:
            return self.connections.run_script(script, keys, args)
        except (redis.exceptions.AskError,
                redis.exceptions.TryAgainError) as error:
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
        for _ in range(MAX_REDIRECTIONS * 4):
            try:
                if isinstance(error, redis.exceptions.MovedError):
                    self.moved(error)
                    return_value = self.connections.run_script(
                        script, keys, args)
                elif isinstance(error, redis.exceptions.AskError):
                    target = self.topology.pool_at(error.host, error.port)
                    return_value = thread_connections(target).run_asking(
                        script, keys, args)
                else:  # TRYAGAIN: the slot's keys are moving
                    if time.monotonic() > deadline:
                        raise error
                    time.sleep(pause)
                    pause = min(pause * 2, 0.1)
                    return_value = self.connections.run_script(
                        script, keys, args)
                return return_value
            except (redis.exceptions.AskError,
                    redis.exceptions.TryAgainError) as again:
                error = again
        raise error
