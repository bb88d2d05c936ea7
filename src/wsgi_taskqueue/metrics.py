"""Metrics of what the queue does, for Prometheus.

Off by default: the consumer and the data manager report to ``recorder``,
which does nothing until ``enable()`` replaces it, so the hot path pays one
method call and no dependency is needed.
"""
from __future__ import annotations

__all__ = ['recorder', 'enable', 'NullRecorder']


class NullRecorder:
    """Receives every observation and keeps none."""

    def enqueued(self, queue: str, count: int) -> None:
        """``count`` tasks of ``queue`` became pending (their transaction
        committed)."""

    def dispatched(self, queue: str, outcome: str, latency: float,
                   duration: float) -> None:
        """A task of ``queue`` ran: ``outcome`` is done, redirected, retry
        or dead; ``latency`` the seconds from enqueue to start (first
        attempt only, else None); ``duration`` the seconds the app took."""


recorder = NullRecorder()


def enable(registry=None):
    """Start recording into Prometheus metrics (``prometheus_client``)."""
    raise NotImplementedError
