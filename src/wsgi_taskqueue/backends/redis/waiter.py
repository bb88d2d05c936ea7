"""A consumer thread's blocking wait for work: BLMOVE on a connection of
its own, with the script that marks the task running sent behind it, so
that waking up and starting a task is one round trip."""
from __future__ import annotations

import contextlib

import redis

from .connection import CLIENT_NAMES

__all__ = ['Waiter']


class Waiter:
    """A connection of its own for BLMOVE, which knows its CLIENT ID so
    that another thread can end the wait (CLIENT UNBLOCK)."""

    def __init__(self, pool: redis.ConnectionPool, socket_timeout: float,
                 generation: int = 0):
        kwargs = dict(pool.connection_kwargs, socket_timeout=socket_timeout,
                      client_name=CLIENT_NAMES['wait'])
        self.pool = pool
        #: The thread connections' generation it was made in.
        self.generation = generation
        self.connection = pool.connection_class(**kwargs)
        self.connection.register_connect_callback(self._learn_id)
        self.client_id: int | None = None
        #: Scripts the server has run since this connection connected.
        self.scripts: set = set()
        self.connection.connect()

    def _learn_id(self, connection) -> None:
        self.scripts = set()
        connection.send_command('CLIENT', 'ID')
        self.client_id = connection.read_response()

    def blmove(self, source: str, destination: str, timeout: float,
               then: tuple = ()):
        """BLMOVE from the right of ``source`` to the left of
        ``destination``; ``then`` is (script, keys, args), run as soon as
        the wait ends (one round trip for both).  Return the moved message
        (None on timeout or CLIENT UNBLOCK) and the script's reply (None
        if the server could not run it)."""
        connection = self.connection
        commands = [('BLMOVE', source, destination, 'RIGHT', 'LEFT', timeout)]
        if then:
            script, keys, args = then
            if script.sha in self.scripts:
                commands.append(('EVALSHA', script.sha, len(keys), *keys,
                                 *args))
            else:
                self.scripts.add(script.sha)
                commands.append(script.by_source(keys, args))
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            try:
                message = connection.read_response()
            except redis.ResponseError:
                # Cluster: the slot moved or is moving (MOVED, ASK,
                # TRYAGAIN); the script's reply is read all the same.
                if then:
                    with contextlib.suppress(redis.ResponseError):
                        connection.read_response()
                raise
            reply = None
            if then:
                try:
                    reply = connection.read_response()
                except redis.exceptions.NoScriptError:
                    self.scripts.discard(then[0].sha)
                except redis.ResponseError:
                    pass
            return message, reply
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            self.client_id = None
            raise
