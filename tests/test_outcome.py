import email.utils
import time

import pytest

from wsgi_taskqueue.outcome import Outcome, RetryPolicy, classify


@pytest.mark.parametrize('status, outcome', [
    (200, Outcome.DONE), (204, Outcome.DONE), (302, Outcome.REDIRECTED),
    (400, Outcome.DEAD), (403, Outcome.DEAD), (404, Outcome.DEAD),
    (408, Outcome.RETRY), (409, Outcome.RETRY), (423, Outcome.RETRY),
    (429, Outcome.RETRY), (500, Outcome.RETRY), (503, Outcome.RETRY),
    (None, Outcome.RETRY),
])
def test_the_outcome_table(status, outcome):
    assert classify(status) is outcome


def test_delays_double_and_are_capped():
    policy = RetryPolicy(delay=1.0, delay_max=10.0, jitter=0)
    assert [policy.delay_after(n) for n in range(1, 7)] == [
        1, 2, 4, 8, 10, 10]


def test_jitter_spreads_delays_within_bounds():
    policy = RetryPolicy(delay=4.0, jitter=0.25)
    delays = {policy.delay_after(1) for _ in range(50)}
    assert len(delays) > 1
    assert all(3.0 <= d <= 5.0 for d in delays)


def test_retry_after_asks_for_longer_but_not_beyond_the_cap():
    policy = RetryPolicy(delay=1.0, delay_max=60.0, jitter=0)
    assert policy.delay_after(1, '30') == 30
    assert policy.delay_after(1, '3600') == 60
    assert policy.delay_after(3, '1') == 4
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= policy.delay_after(1, later) <= 20
    assert policy.delay_after(1, 'garbage') == 1


def test_retry_max_count_counts_retries_not_attempts():
    policy = RetryPolicy(max_count=2)
    assert [policy.allows(attempt) for attempt in (1, 2, 3)] == [
        True, True, False]
