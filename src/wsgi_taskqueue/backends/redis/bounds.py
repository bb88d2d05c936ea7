"""How many connections one process opens to one Redis server, and what
a thread does when they are all busy.

Two sets of connections are shared by the threads of a process, each at
most ``max_connections`` (a queue setting, 50 by default):

* the pool (``BoundedPool``): reads, discards, sweeps, status; a thread
  holds one for one command or pipeline;
* the script connections (``Lines``): a thread keeps one while it lives,
  so that its commands skip the pool's bookkeeping and a write can carry
  its reply unread (connection.py); when there are as many as the bound,
  a thread without one takes over one no other thread is using at the
  moment: first one whose thread ended, then any idle one.

A thread that finds every connection of a set busy waits for one, at most
``socket_timeout`` (redis-py's BlockingConnectionPool semantics), then
gets ``Exhausted``: nothing was sent, so a vote that meets it says no and
the transaction aborts with nothing written (G6).  A consumer thread's
blocking wait has a connection of its own besides (it cannot be shared
while it blocks): their number is the consumers' ``concurrent_limit``.
"""
from __future__ import annotations

import threading
import time

import redis
import redis.sentinel

__all__ = ['BoundedPool', 'BoundedSentinelPool', 'Exhausted', 'Lines',
           'DEFAULT_MAX_CONNECTIONS']

#: Far more than a process's threads use at once (each holds a connection
#: for one command: microseconds to milliseconds), far less than Redis's
#: default maxclients (10,000) divided among a deployment's processes.
DEFAULT_MAX_CONNECTIONS = 50


class NotSent(redis.ConnectionError):
    """No connection could be made, so the command was never sent: the
    server cannot have applied it."""


class Exhausted(NotSent):
    """Every connection of a set was busy for the whole wait: nothing was
    sent.  Not retried at once (the wait was the retry)."""


def _exhausted(what: str, limit: int, timeout) -> Exhausted:
    return Exhausted(f'all {limit} {what} connections of this process '
                     f'were busy for {timeout} s (max_connections = '
                     f'{limit})')


class _Bounded:
    """BlockingConnectionPool's wait, with an error that names the bound."""

    def get_connection(self, *args, **kwargs):
        try:
            return super().get_connection(*args, **kwargs)
        except redis.ConnectionError as error:
            if str(error) != 'No connection available.':
                raise
            raise _exhausted('pool', self.max_connections,
                             self.timeout) from error


class BoundedPool(_Bounded, redis.BlockingConnectionPool):
    """The pool of one Redis server: at most ``max_connections``."""


class BoundedSentinelPool(_Bounded, redis.sentinel.SentinelConnectionPool,
                          redis.BlockingConnectionPool):
    """The pool of a Sentinel group's primary: at most ``max_connections``
    (``Sentinel.master_for(connection_pool_class=...)``)."""


class Line:
    """A script connection, the callbacks of the replies it owes, and the
    scripts its server has run since it connected.  ``lock`` is held by
    the thread using it; ``owner`` is the token of the thread that keeps
    it (None once that thread ended)."""

    __slots__ = ('connection', 'owed', 'scripts', 'generation', 'lock',
                 'owner', '__weakref__')

    def __init__(self, connection):
        self.connection = connection
        self.generation = 0
        self.owed: list = []
        self.scripts: set = set()
        self.lock = threading.Lock()
        self.owner = None
        connection.register_connect_callback(self.connected)

    def connected(self, connection) -> None:
        # Perhaps to a server that restarted: its script cache is empty.
        self.scripts = set()


class _Holder:
    """A thread's claim on a line; dropped when the thread ends, which
    leaves the line to the next thread that needs one."""

    __slots__ = ('line', 'token')

    def __init__(self):
        self.line = None
        self.token = object()

    def __del__(self) -> None:
        line = self.line
        if line is not None and line.owner is self.token:
            line.owner = None


class Lines:
    """The script connections of one process to one Redis server, made by
    ``make`` on demand, at most ``limit``; see the module docstring."""

    def __init__(self, make, limit: int, timeout: float | None):
        self.make = make
        self.limit = limit
        self.timeout = timeout
        self._local = threading.local()
        self._lines: list[Line] = []
        self._changed = threading.Condition()
        self._waiting = 0

    def take(self) -> Line:
        """A line for this thread's next command, locked for it: its own
        if no other thread took it over."""
        holder = getattr(self._local, 'holder', None)
        if holder is None:
            holder = self._local.holder = _Holder()
        line = holder.line
        if line is not None:
            if line.lock.acquire(False):
                if line.owner is holder.token:
                    return line
            else:
                # Another thread is taking it over: it reads the replies
                # this thread's writes still owe first, so that what this
                # thread reads next includes their effect.
                line.lock.acquire()
            line.lock.release()
        return self._another(holder)

    def give_back(self, line: Line) -> None:
        line.lock.release()
        if self._waiting:
            with self._changed:
                self._changed.notify()

    def mine(self) -> Line | None:
        """The line this thread used last, if any."""
        holder = getattr(self._local, 'holder', None)
        return holder and holder.line

    def all(self) -> list[Line]:
        with self._changed:
            return list(self._lines)

    def forked(self) -> None:
        """In a forked child: none of the parent's lines are ours."""
        self._local = threading.local()
        self._lines = []
        self._changed = threading.Condition()
        self._waiting = 0

    def _another(self, holder: _Holder) -> Line:
        deadline = None
        with self._changed:
            self._waiting += 1
            try:
                while True:
                    line = self._free(lambda line: line.owner is None)
                    if line is None and len(self._lines) < self.limit:
                        line = Line(self.make())
                        line.lock.acquire()
                        self._lines.append(line)
                    if line is None:
                        line = self._free(lambda line: True)
                    if line is not None:
                        line.owner = holder.token
                        holder.line = line
                        return line
                    if deadline is None and self.timeout is not None:
                        deadline = time.monotonic() + self.timeout
                    remaining = (None if deadline is None
                                 else deadline - time.monotonic())
                    if remaining is not None and remaining <= 0:
                        raise _exhausted('script', self.limit, self.timeout)
                    self._changed.wait(remaining)
            finally:
                self._waiting -= 1

    def _free(self, wanted) -> Line | None:
        for line in self._lines:
            if wanted(line) and line.lock.acquire(False):
                return line
        return None
