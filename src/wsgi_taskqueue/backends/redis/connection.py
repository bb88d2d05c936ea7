"""Connections to Redis: each thread's own connection for the scripts,
error translation (``Talking``), an idempotent write sent once more after
a broken connection (``twice``); blocking waits are waiter.py's, the
pools topology.py's."""
from __future__ import annotations

import hashlib
import os
import threading
import urllib.parse
import weakref

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...errors import BackendUnavailable
from .bounds import Exhausted, Line, Lines, NotSent

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

#: This process's id, updated in a forked child: every command asks
#: whether it runs in the process that made its connections, and
#: ``os.getpid`` is a system call each time.
_process = os.getpid()


def _forked() -> None:
    global _process
    _process = os.getpid()


os.register_at_fork(after_in_child=_forked)


def thread_connections(pool: redis.ConnectionPool) -> ThreadConnections:
    """The thread connections to the Redis of ``pool``, shared like it."""
    with _pools_lock:
        if pool not in _thread_connections:
            _thread_connections[pool] = ThreadConnections(pool)
        return _thread_connections[pool]


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
    again on its next use.  Settings (TLS, ACL user, timeouts) and the
    bound on their number (``max_connections``: bounds.Lines, which lets
    a thread take over the connection of one that ended) are the pool's.
    """

    def __init__(self, pool: redis.ConnectionPool):
        self.pool = pool
        self._pid = _process
        # The pool's bound and wait apply to these connections too.
        self.lines = Lines(self._make, pool.max_connections,
                           getattr(pool, 'timeout', None))
        #: Bumped by ``renew``: each thread's connection made before then
        #: connects again (to wherever the pool's server is now) on next use.
        self.generation = 0

    def _make(self):
        # No blind retries: a command whose reply was lost may have been
        # applied.  Idempotent scripts are sent once more by their callers;
        # a reserve recovers instead.
        return self.pool.connection_class(**dict(
            self.pool.connection_kwargs, retry=Retry(NoBackoff(), 0),
            client_name=CLIENT_NAMES['thread']))

    def renew(self) -> None:
        """The server moved (a Sentinel failover): every thread connects
        again before its next command, never in the middle of one."""
        self.generation += 1

    def script(self, source: str) -> Script:
        return Script(self, source)

    def run(self, *command):
        """Send one command on this thread's connection; its reply."""
        line = self.take_line()
        try:
            return self._call(line, command)
        finally:
            self.lines.give_back(line)

    def run_script(self, script: Script, keys, args):
        line = self.take_line()
        try:
            try:
                return self._call(line, script.command(line, keys, args))
            except redis.exceptions.NoScriptError:
                return self._call(line, script.by_source(keys, args))
        finally:
            self.lines.give_back(line)

    def send_script(self, script: Script, keys, args, failed) -> None:
        """Run a script that writes without waiting for its reply.

        The reply is read before this thread's next command, or by
        ``settle``; should it be an error, ``failed(error)`` is called
        then, in this thread (or in a thread that took the connection
        over: bounds.Lines)."""
        line = self.take_line()
        try:
            line.connection.send_packed_command(
                pack(line.connection, script.command(line, keys, args)),
                check_health=False)
            line.owed.append((failed, script.by_source(keys, args)))
        finally:
            self.lines.give_back(line)

    def settle(self) -> None:
        """Read the replies this thread's writes still owe, so that what
        the thread reads next, on any connection, includes their effect."""
        if self._pid != _process:
            return
        line = self.lines.mine()
        if line is not None and line.owed:
            with line.lock:
                if line.owed:
                    self._settle(line)

    def disconnect(self) -> None:
        for line in self.lines.all():
            line.connection.disconnect()

    def _call(self, line: Line, command: tuple):
        line.connection.send_packed_command(pack(line.connection, command),
                                            check_health=False)
        return line.connection.read_response()

    def give_back(self, line: Line) -> None:
        """Done with ``line`` (from ``take_line``) for now."""
        self.lines.give_back(line)

    def take_line(self) -> Line:
        """This thread's line, connected, locked for it until
        ``give_back``, with no reply left to read; NotSent if it cannot
        connect (given back then)."""
        if self._pid != _process:
            # A forked child must not talk on its parent's sockets.
            self.lines.forked()
            self._pid = _process
        line = self.lines.take()
        try:
            self._connect(line)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.lines.give_back(line)
            raise NotSent(str(exc)) from exc
        except BaseException:
            self.lines.give_back(line)
            raise
        return line

    def _connect(self, line: Line) -> None:
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

    def _settle(self, line: Line) -> None:
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
                self._call(line, by_source)
            except redis.RedisError as exc:
                failed(exc)


def pack(connection, command: tuple) -> list:
    """``command`` as bytes to send on ``connection``."""
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

    def command(self, line: Line, keys, args) -> tuple:
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


def twice(operation, *args, **kwargs):
    """Run an idempotent operation; once more if the connection failed (a
    pooled connection that a Redis restart closed fails once)."""
    try:
        return operation(*args, **kwargs)
    except Exhausted:
        raise  # it waited its time already (G6)
    except NotSent:
        return operation(*args, **kwargs)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        try:
            return operation(*args, **kwargs)
        except NotSent:
            # Not sent again, but the first may have been applied.
            raise redis.ConnectionError(str(exc)) from exc


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
        if error is None:
            return False  # the common case, before five isinstance checks
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
