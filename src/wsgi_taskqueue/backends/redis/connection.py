"""Connections to Redis: each thread's own connection for the scripts,
blocking waits, error translation (``Talking``); the pools are
topology.py's."""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import urllib.parse
import weakref

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...errors import BackendUnavailable

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # the ``redis`` extra brings hiredis; it is optional
    _hiredis_pack = None

#: The names our connections give themselves (CLIENT SETNAME), by what
#: they are for, so that ``status`` can count them in Redis's CLIENT LIST:
#: a pool's (reads, idempotent writes), a thread's own (the scripts), a
#: consumer thread's blocking wait, a Cluster's slot discovery.
CLIENT_NAMES = {role: f'wsgi-taskqueue-{role}'
                for role in ('pool', 'thread', 'wait', 'discovery')}

_thread_connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def thread_connections(pool: redis.ConnectionPool) -> ThreadConnections:
    """The thread connections to the Redis of ``pool``, shared like it."""
    with _pools_lock:
        if pool not in _thread_connections:
            _thread_connections[pool] = ThreadConnections(pool)
        return _thread_connections[pool]


class NotSent(redis.ConnectionError):
    """No connection could be made, so the command was never sent: the
    server cannot have applied it."""


class ThreadConnections:
    """A connection of each thread's own to one Redis, for the scripts that
    move tasks (stage, promote, reserve, acknowledge...).

    Why not the pool: per command, redis-py's client and pool spend more
    than the round trip itself (a pool lock, observability events, a retry
    wrapper, argument copies; measured: 100 µs a command through the
    client against 41 µs on a bare connection).  A connection only its
    thread uses needs none of that, and it can carry a write whose reply
    is read later (``send_script``): Redis answers in order, so the thread
    reads it before the reply to its next command.  One that failed, or
    that the server closed while it was idle, is disconnected and connects
    again on its next use.  Settings (TLS, ACL user, timeouts) are the
    pool's.
    """

    def __init__(self, pool: redis.ConnectionPool):
        self.pool = pool
        self._local = threading.local()
        self._pid = os.getpid()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        #: Bumped by ``renew``: each thread's connection made before then
        #: connects again (to wherever the pool's server is now) on next use.
        self.generation = 0

    def renew(self) -> None:
        """The server moved (a Sentinel failover): every thread connects
        again before its next command, never in the middle of one."""
        self.generation += 1

    def script(self, source: str) -> Script:
        return Script(self, source)

    def run(self, *command):
        """Send one command on this thread's connection; its reply."""
        return self._call(self._ready_line(), command)

    def run_script(self, script: Script, keys, args):
        line = self._ready_line()
        try:
            return self._call(line, script.command(line, keys, args))
        except redis.exceptions.NoScriptError:
            return self._call(line, script.by_source(keys, args))

    def send_script(self, script: Script, keys, args, failed) -> None:
        """Run a script that writes without waiting for its reply.

        The reply is read before this thread's next command, or by
        ``settle``; should it be an error, ``failed(error)`` is called
        then, in this thread."""
        line = self._ready_line()
        line.connection.send_packed_command(
            _pack(line.connection, script.command(line, keys, args)),
            check_health=False)
        line.owed.append((failed, script.by_source(keys, args)))

    def settle(self) -> None:
        """Read the replies this thread's writes still owe, so that what
        the thread reads next, on any connection, includes their effect."""
        line = getattr(self._local, 'line', None)
        if line is not None and line.owed:
            self._settle(line)

    def disconnect(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.disconnect()

    def _call(self, line: _Line, command: tuple):
        line.connection.send_packed_command(_pack(line.connection, command),
                                            check_health=False)
        return line.connection.read_response()

    def _ready_line(self) -> _Line:
        """This thread's line, connected, with no reply left to read;
        NotSent if it cannot connect."""
        try:
            return self._connected_line()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise NotSent(str(exc)) from exc

    def _connected_line(self) -> _Line:
        if self._pid != os.getpid():
            # A forked child must not talk on its parent's sockets.
            self._local = threading.local()
            self._pid = os.getpid()
        line = getattr(self._local, 'line', None)
        if line is None:
            # No blind retries: a command whose reply was lost may have
            # been applied.  Idempotent scripts are sent once more by their
            # callers; a reserve recovers instead.
            line = self._local.line = _Line(self.pool.connection_class(
                **dict(self.pool.connection_kwargs,
                       retry=Retry(NoBackoff(), 0),
                       client_name=CLIENT_NAMES['thread'])))
            line.connection.register_connect_callback(line.connected)
            line.generation = self.generation
            with self._lock:
                self._connections.add(line.connection)
        if line.owed:
            self._settle(line)
        if line.generation != self.generation:
            line.generation = self.generation
            line.connection.disconnect()
        try:
            stale = line.connection.can_read()  # connects if need be
        except redis.ConnectionError:
            stale = True
        if stale:
            # An idle connection with something to read was closed by the
            # server (a restart): what we send now would be lost unseen.
            line.connection.disconnect()
            line.connection.connect()
        return line

    def _settle(self, line: _Line) -> None:
        owed, line.owed = line.owed, []
        resend = []
        for index, (failed, by_source) in enumerate(owed):
            try:
                line.connection.read_response()
            except redis.exceptions.NoScriptError:
                resend.append((failed, by_source))
            except redis.ResponseError as exc:
                failed(exc)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # The connection is gone, and every reply still owed.
                for failed, _ in owed[index:]:
                    failed(exc)
                return
        for failed, by_source in resend:
            try:
                self._call(self._ready_line(), by_source)
            except redis.RedisError as exc:
                failed(exc)


class _Line:
    """A thread's connection, the callbacks of the replies it owes, and
    the scripts its server has run since it connected."""

    __slots__ = ('connection', 'owed', 'scripts', 'generation',
                 '__weakref__')

    def __init__(self, connection):
        self.connection = connection
        self.generation = 0
        self.owed: list = []
        self.scripts: set = set()

    def connected(self, connection) -> None:
        # Perhaps to a server that restarted: its script cache is empty.
        self.scripts = set()

    def __del__(self) -> None:
        # Its thread ended: close the connection now, not when the cyclic
        # garbage collector finds it (a server that starts a thread per
        # request would pile up idle connections until then).
        with contextlib.suppress(Exception):
            self.connection.disconnect()


def _pack(connection, command: tuple) -> list:
    # redis-py's packer copies the arguments once more on the way to
    # hiredis's: a fifth of a round trip.
    if _hiredis_pack is not None:
        return [_hiredis_pack(command)]
    return connection.pack_command(*command)


class Script:
    """A Lua script of the queue, run on the caller's thread connection by
    ``runner`` (ThreadConnections, or a queue that finds the connection of
    the server holding its keys)."""

    def __init__(self, runner, source: str):
        self.runner = runner
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys=(), args=()):
        return self.runner.run_script(self, keys, args)

    def send(self, failed, keys=(), args=()):
        """Run it without waiting (``ThreadConnections.send_script``)."""
        self.runner.send_script(self, keys, args, failed)

    def command(self, line: _Line, keys, args) -> tuple:
        """EVAL the first time on a connection, which loads the script,
        EVALSHA afterwards: no round trip is lost to a NOSCRIPT reply (one
        still comes after a SCRIPT FLUSH; then the script is run by its
        source, which is no blind re-send: NOSCRIPT means it did not run)."""
        if self.sha in line.scripts:
            return ('EVALSHA', self.sha, len(keys), *keys, *args)
        line.scripts.add(self.sha)
        return self.by_source(keys, args)

    def by_source(self, keys, args) -> tuple:
        return ('EVAL', self.source, len(keys), *keys, *args)


def describe_url(url: str) -> str:
    """scheme://host:port/db of a redis URL, without credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or parts.path or 'localhost'
    port = f':{parts.port}' if parts.port else ''
    return f'{parts.scheme}://{host}{port}{parts.path if parts.hostname else ""}'


#: Errors that mean Redis cannot take the queue's commands right now: a
#: failover in progress (a demoted primary answers READONLY, a Cluster
#: whose slot lost its primary CLUSTERDOWN, a slot still moving TRYAGAIN).
UNAVAILABLE_REPLIES = (redis.exceptions.ReadOnlyError,
                       redis.exceptions.ClusterDownError,
                       redis.exceptions.TryAgainError,
                       redis.exceptions.MasterDownError,
                       # no node serves the slot (yet): a Cluster failover
                       redis.exceptions.RedisClusterException)


class Talking:
    """A context for talking to one queue's Redis: on entry, this thread's
    writes still in flight are confirmed (``ThreadConnections.settle``), so
    that the thread reads its own writes; on exit, redis-py's transport
    errors and the replies of a failover become BackendUnavailable, naming
    the server but never its password.  A class, not a generator: it wraps
    every command of the hot path, and costs a tenth of a contextlib one.
    ``route`` (topology.Route) has the thread connections, and hears when
    its server did not answer."""

    __slots__ = ('where', 'route')

    def __init__(self, where: str, route):
        self.where = where
        self.route = route

    def __enter__(self) -> None:
        self.route.connections.settle()

    def __exit__(self, kind, error, traceback) -> bool:
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
            self.route.lost()
            raise BackendUnavailable(
                f'Redis at {self.where} unavailable: {error}',
                unsent=isinstance(error, NotSent)) from error
        if isinstance(error, redis.exceptions.AskError):
            # A read or idempotent write of the pool met a slot that moved
            # (MOVED: the route learns where) or is moving (ASK): it was
            # not run; the caller tries again later.
            if isinstance(error, redis.exceptions.MovedError):
                self.route.moved(error)
            raise BackendUnavailable(
                f'Redis at {self.where}: the slot moves: {error}',
                unsent=True) from error
        if isinstance(error, UNAVAILABLE_REPLIES):
            raise BackendUnavailable(
                f'Redis at {self.where} unavailable: {error}') from error
        if isinstance(error, redis.exceptions.NoPermissionError):
            # A user whose ACL lacks a key or command the queue needs: no
            # task can go through, as when Redis is down.
            raise BackendUnavailable(
                f'Redis at {self.where} refused a command: {error}'
            ) from error
        return False


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
