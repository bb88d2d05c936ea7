"""How a waiting consumer learns that there is work, without busy polling.

In its own process a promotion, retry or requeue notifies a condition the
waiting threads sleep on.  Promotions by other processes reach them on
PostgreSQL through LISTEN/NOTIFY (one notification per promoted batch,
sent in the promotion's transaction, so it arrives only if that commits);
elsewhere, and while the listening connection is down, a waiting thread
looks again after at most ``poll_interval`` seconds.  A database that is
down costs a reconnection attempt every few seconds, nothing more.
"""
from __future__ import annotations

import logging
import threading

__all__ = ['Wakeups']

log = logging.getLogger(__name__)

#: Longest pause between two attempts to listen again.
MAX_BACKOFF = 5.0


class Wakeups:
    """A generation counter and a condition: a waiter remembers the
    generation it last looked at and sleeps until it changes."""

    def __init__(self, poll_interval: float):
        self.poll_interval = poll_interval
        self.generation = 0
        self._changed = threading.Condition()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()

    def notify(self) -> None:
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait(self, generation: int, seconds: float) -> None:
        """Sleep until notified after ``generation``, at most ``seconds``
        and never longer than the poll interval."""
        with self._changed:
            self._changed.wait_for(lambda: self.generation != generation,
                                   min(seconds, self.poll_interval))

    def listen(self, url, channel: str, timeout: float) -> None:
        """Turn PostgreSQL notifications on ``channel`` into wakeups, from
        a thread of its own (started once)."""
        with self._changed:
            if self._listener is not None or self._closed.is_set():
                return
            self._listener = threading.Thread(
                target=self._listen, args=(url, channel, timeout),
                daemon=True, name=f'wsgi-taskqueue LISTEN {channel}')
            self._listener.start()

    def close(self) -> None:
        """Stop listening (within a second) and wake every waiter."""
        self._closed.set()
        self.notify()

    def _listen(self, url, channel: str, timeout: float) -> None:
        import psycopg
        from psycopg import sql
        conninfo = url.set(drivername='postgresql').render_as_string(
            hide_password=False)
        backoff = 0.1
        while not self._closed.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True,
                                     connect_timeout=max(1, int(timeout))
                                     ) as connection:
                    connection.execute(sql.SQL('LISTEN {}').format(
                        sql.Identifier(channel)))
                    backoff = 0.1
                    self.notify()  # what was promoted while we were away
                    while not self._closed.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            self.notify()
            except psycopg.Error as exc:
                log.debug('LISTEN %s: %s; again in %.1fs', channel, exc,
                          backoff)
                self._closed.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
