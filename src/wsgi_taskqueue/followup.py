"""What a finished transaction still owes the backend.

When Redis goes away between a transaction's vote and its end, the
after-commit promotion or the abort's discard of a staged batch cannot
happen then.  Raising would not help (the transaction is over), so the
operation is retried here, in a background thread, until the backend takes
it.  A promotion that never gets through (the process died) is made by a
consumer's recovery sweep after the grace period; a discard that never gets
through is the one case where a task whose transaction aborted can still
run (docs/guarantees.rst).
"""
from __future__ import annotations

import collections
import logging
import threading

log = logging.getLogger(__name__)

#: Seconds between tries: the first soon, later ones no more often than
#: this cap, so an outage costs no CPU.
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


class FollowUps:
    """Operations retried in turn by one daemon thread, started on demand
    and ended when nothing is left."""

    def __init__(self):
        self._operations: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def add(self, description: str, operation) -> None:
        with self._lock:
            self._operations.append((description, operation))
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, daemon=True,
                    name='wsgi-taskqueue follow-ups')
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until nothing is owed; True if so within ``timeout``."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        delay = FIRST_DELAY
        while True:
            with self._lock:
                if not self._operations:
                    self._idle.set()
                    return
                description, operation = self._operations[0]
            try:
                operation()
            except Exception as exc:
                log.debug('%s failed again: %s', description, exc)
                with self._lock:
                    # To the back of the line: a backend that stays away
                    # must not hold up what is owed to the others.
                    self._operations.rotate(-1)
                threading.Event().wait(delay)
                delay = min(MAX_DELAY, delay * 2)
                continue
            log.warning('%s: done now that the backend is back', description)
            delay = FIRST_DELAY
            with self._lock:
                self._operations.popleft()


#: The follow-ups of this process.
follow_ups = FollowUps()
