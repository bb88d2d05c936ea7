"""``prefetch = auto``: a thread reserves more tasks per round trip while
they run short, and after a batch that ran long hands back what it had
not started (prefetch.py), keeping G2 and G5 when that hand-back's reply
is lost."""
import threading
import time

import hypothesis
import pytest
from hypothesis import strategies as st

import wsgi_taskqueue
from wsgi_taskqueue import prefetch, settings
from wsgi_taskqueue.errors import ConfigurationError
from wsgi_taskqueue.prefetch import AUTO, MOST, Prefetch, prefetch_setting

from dummies import RecordingApp, add, wait_until
from faults.proxy import ReplyDroppingProxy


class Clock:
    """perf_counter, moved by the test."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(prefetch.time, 'perf_counter', clock)
    return clock


def run_batch(limiter, clock, durations):
    """Run a batch of tasks lasting ``durations``; whether it overran and
    after how many tasks."""
    limiter.reserved()
    for count, seconds in enumerate(durations, 1):
        started = clock.now
        clock.now += seconds
        if limiter.overran(started):
            limiter.finished(True)
            return count
    limiter.finished(False)
    return None


def test_auto_doubles_while_tasks_are_short_up_to_most(clock):
    limiter = Prefetch(AUTO)
    sizes = []
    for _ in range(8):
        sizes.append(limiter.limit)
        assert run_batch(limiter, clock, [0.0001] * limiter.limit) is None
    assert sizes == [1, 2, 4, 8, 16, 32, 32, 32]
    assert MOST == 32


def test_auto_sizes_a_batch_to_fit_the_time_of_its_longest_task(clock):
    limiter = Prefetch(AUTO)
    for _ in range(6):
        run_batch(limiter, clock, [0.0001] * limiter.limit)
    run_batch(limiter, clock, [0.0001, prefetch.BATCH_SECONDS / 5.5])
    assert limiter.limit == 5


def test_auto_falls_to_one_and_stops_the_batch_after_a_long_task(clock):
    limiter = Prefetch(AUTO)
    for _ in range(5):
        run_batch(limiter, clock, [0.0001] * limiter.limit)
    assert limiter.limit == 32
    assert run_batch(limiter, clock, [0.0001, 5.0] + [0.0001] * 30) == 2
    assert limiter.limit == 1


def test_a_number_is_kept_whatever_the_tasks_take(clock):
    limiter = Prefetch(4)
    assert run_batch(limiter, clock, [5.0, 5.0, 5.0, 5.0]) is None
    assert limiter.limit == 4


@hypothesis.given(st.integers(min_value=1, max_value=10**6))
def test_any_number_from_one_is_a_prefetch(number):
    assert prefetch_setting(number) == number
    assert prefetch_setting(f' {number}') == number


@hypothesis.given(st.one_of(
    st.integers(max_value=0), st.floats(allow_nan=True),
    st.text().filter(lambda text: text.strip().lower() != 'auto'
                     and not text.strip().lstrip('+-').isdigit()),
    st.booleans(), st.none()))
def test_anything_else_is_refused_naming_what_was_given(value):
    with pytest.raises(ValueError, match='auto'):
        prefetch_setting(value)


def test_the_default_is_auto_and_a_bad_one_is_a_clear_configuration_error():
    assert settings.CONSUMER_SETTINGS['prefetch'][1] == AUTO
    with pytest.raises(ConfigurationError, match='prefetch'):
        settings.convert(settings.CONSUMER_SETTINGS, {'prefetch': 'lots'})


class SlowFirstApp(RecordingApp):
    """Answers 200; a request to /slow waits until ``release`` is set."""

    def __init__(self):
        super().__init__()
        self.slow_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        if environ['PATH_INFO'] == '/slow':
            self.slow_started.set()
            assert self.release.wait(30)
        return super().__call__(environ, start_response)


def start_batch_behind_a_slow_task(queue, consume, monkeypatch):
    """A consumer whose batches double deterministically (a second of
    room), then meet a slow task with 7 tasks reserved behind it: 1, 2
    and 4 fast tasks, then [slow, 7 fast]; more fast ones after."""
    monkeypatch.setattr(prefetch, 'BATCH_SECONDS', 1.0)
    fast = [f'/fast?n={n}' for n in range(20)]
    ids = add(*fast[:7], '/slow', *fast[7:])
    app = SlowFirstApp()
    consumer = consume(app, prefetch=AUTO)
    assert app.slow_started.wait(10)
    return app, consumer, ids


def test_a_batch_that_ran_long_hands_back_what_it_did_not_start(
        redis_queue, consume, monkeypatch):
    app, consumer, ids = start_batch_behind_a_slow_task(
        redis_queue, consume, monkeypatch)
    # Held behind the slow one: the cost that auto keeps to one batch.
    assert redis_queue.counts()['processing'] == {consumer.name: 8}
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 1.0)  # past the room
    reserves = []
    original = redis_queue.reserve

    def spy(slot_, limit, timeout, done=(), recover=False):
        reserves.append((limit, len(done), recover))
        return original(slot_, limit, timeout, done, recover)
    monkeypatch.setattr(redis_queue, 'reserve', spy)
    app.release.set()
    app.wait_for(len(ids))
    wait_until(lambda: not redis_queue.counts()['processing'])
    # The slow task acknowledged, the 7 not started handed back, one taken.
    assert reserves[0] == (1, 1, True)
    paths = [environ['PATH_INFO'] + '?' + environ['QUERY_STRING']
             for environ in app.environs]
    assert sorted(paths) == sorted(set(paths))  # each ran once
    assert [environ['HTTP_X_TASK_ID'] for environ in app.environs] == ids
    assert not redis_queue.counts()['pending']
    assert all(redis_queue.task_status(task)['state'] == 'done'
               for task in ids)


def test_a_hand_back_whose_reply_was_lost_runs_every_task_once(
        redis_server, redis_url, consume, monkeypatch):
    """G2, G5: the reserve that acknowledges the slow task and hands back
    the rest reached Redis, its reply did not.  The thread cannot tell
    what happened; its next reserve acknowledges and hands back again."""
    proxy = ReplyDroppingProxy(redis_server.port)
    try:
        queue = wsgi_taskqueue.RedisQueue(url=proxy.url, socket_timeout=2.0)
        wsgi_taskqueue.register_queue('default', queue)
        app, consumer, ids = start_batch_behind_a_slow_task(
            queue, consume, monkeypatch)
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 1.0)
        # The first command to carry the slow task's message is that
        # reserve, with the slow task among the finished ones.
        proxy.drop_reply_to(b'"u":"/slow"')
        app.release.set()
        wait_until(lambda: len(app.environs) >= len(ids), timeout=30)
        wait_until(lambda: not queue.counts()['processing'], timeout=30)
        assert proxy.dropped == 1
        assert [environ['HTTP_X_TASK_ID'] for environ in app.environs] \
            == ids
        assert all(queue.task_status(task)['state'] == 'done'
                   for task in ids)
    finally:
        proxy.close()
