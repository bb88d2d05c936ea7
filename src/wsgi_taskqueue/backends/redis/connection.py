"""Connections to Redis: shared pools, blocking waits, error translation."""
from __future__ import annotations

import contextlib
import threading
import urllib.parse

import redis

from ...errors import BackendUnavailable

_pools: dict = {}
_pools_lock = threading.Lock()


def shared_pool(key: tuple, make) -> redis.ConnectionPool:
    """One connection pool per Redis (and settings) in a process, so the
    queues of one Redis can be written in one round trip."""
    with _pools_lock:
        if key not in _pools:
            _pools[key] = make()
        return _pools[key]


def describe_url(url: str) -> str:
    """scheme://host:port/db of a redis URL, without credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or parts.path or 'localhost'
    port = f':{parts.port}' if parts.port else ''
    return f'{parts.scheme}://{host}{port}{parts.path if parts.hostname else ""}'


@contextlib.contextmanager
def translated_errors(where: str):
    """Turn redis-py's transport errors into BackendUnavailable, naming
    the server but never its password."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f'Redis at {where} unavailable: {exc}') from exc
    except redis.exceptions.NoPermissionError as exc:
        # A user whose ACL lacks a key or command the queue needs: no
        # task can go through, as when Redis is down.
        raise BackendUnavailable(
            f'Redis at {where} refused a command: {exc}') from exc


class Waiter:
    """A connection of its own for BLMOVE, which knows its CLIENT ID so
    that another thread can end the wait (CLIENT UNBLOCK)."""

    def __init__(self, pool: redis.ConnectionPool, socket_timeout: float):
        kwargs = dict(pool.connection_kwargs, socket_timeout=socket_timeout)
        self.connection = pool.connection_class(**kwargs)
        self.connection.register_connect_callback(self._learn_id)
        self.client_id: int | None = None
        self.connection.connect()

    def _learn_id(self, connection) -> None:
        connection.send_command('CLIENT', 'ID')
        self.client_id = connection.read_response()

    def blmove(self, source: str, destination: str, timeout: float,
               then: tuple = ()):
        """BLMOVE from the right of ``source`` to the left of
        ``destination``; ``then`` is a command sent with it, which Redis
        runs as soon as the wait ends (one round trip for both).  Return
        the moved message, or None on timeout or CLIENT UNBLOCK."""
        connection = self.connection
        try:
            connection.send_packed_command(connection.pack_commands([
                ('BLMOVE', source, destination, 'RIGHT', 'LEFT', timeout),
                *([then] if then else [])]))
            message = connection.read_response()
            if then:
                try:
                    connection.read_response()
                except redis.ResponseError:
                    pass  # ``then`` is a status write: best effort
            return message
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            self.client_id = None
            raise
