"""Decides what happens to a task from what the app answered.

============================================ =======================================
app answer                                   outcome
============================================ =======================================
2xx                                          done
3xx                                          done, logged as a warning
408, 409, 423, 429, 5xx, exception, broken   retried with backoff, then dead-lettered
other 4xx                                    dead-lettered at once
============================================ =======================================
"""
from __future__ import annotations

import dataclasses
import email.utils
import enum
import random
import time

__all__ = ['Outcome', 'classify', 'RetryPolicy']

#: 4xx answers that say "not now" rather than "never".
RETRYABLE_CLIENT_ERRORS = frozenset([408, 409, 423, 429])


class Outcome(enum.Enum):
    DONE = 'done'
    REDIRECTED = 'redirected'
    RETRY = 'retry'
    DEAD = 'dead'


def classify(status_code: int | None) -> Outcome:
    """The outcome table, for a status code (None: exception or broken)."""
    if status_code is None:
        return Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.DONE
    if 300 <= status_code < 400:
        return Outcome.REDIRECTED
    if status_code >= 500 or status_code in RETRYABLE_CLIENT_ERRORS:
        return Outcome.RETRY
    return Outcome.DEAD


@dataclasses.dataclass
class RetryPolicy:
    """Exponential backoff with jitter, capped; ``max_count`` retries."""

    #: collective.taskqueue's default.
    max_count: int = 10
    #: First delay in seconds; doubles with each retry.
    delay: float = 1.0
    #: A few minutes: long enough to ride out a deploy or a failover.
    delay_max: float = 300.0
    #: Spread delays by up to this fraction, so tasks that failed together
    #: (a database restart) do not all come back in the same instant.
    jitter: float = 0.25

    def allows(self, attempt: int) -> bool:
        """May a task whose ``attempt`` just failed run again?"""
        return attempt <= self.max_count

    def delay_after(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based); an app's
        ``Retry-After`` wins when it asks for longer."""
        delay = min(self.delay_max, self.delay * 2 ** (attempt - 1))
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        requested = _parse_retry_after(retry_after)
        if requested is not None:
            delay = max(delay, min(requested, self.delay_max))
        return delay


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
