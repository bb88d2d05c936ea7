"""Backing off while the queue backend is away."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger('wsgi_taskqueue.consumer')


class Outage:
    """Log once, wait longer and longer (capped), never spin; say so when
    the backend is back.  ``owner`` names who waits, in the log."""

    FIRST_DELAY = 0.1
    #: A few seconds: a restarted Redis is noticed soon, a dead one costs
    #: no CPU.
    MAX_DELAY = 5.0

    def __init__(self, owner, stopping: threading.Event):
        self.owner = owner
        self.stopping = stopping
        self.delay = 0.0
        self.reported = False

    def report(self, error) -> None:
        if not self.reported:
            log.error('%r: queue backend unavailable, retrying: %s',
                      self.owner, error)
            self.reported = True

    def wait(self, error) -> None:
        self.report(error)
        self.delay = min(self.MAX_DELAY, (self.delay * 2) or self.FIRST_DELAY)
        self.stopping.wait(self.delay)

    def over(self) -> None:
        if self.reported:
            log.warning('%r: queue backend is back', self.owner)
        self.reported = False
        self.delay = 0.0
