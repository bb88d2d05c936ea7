"""The options of ``add``: countdown, eta, label."""
import datetime
import math
import re
import time

import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import InvalidTask
from wsgi_taskqueue.taskqueue import MAX_DELAY

#: The queue only receives what a test commits, and these abort.
fixture_kept = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture])


def test_a_task_without_a_delay_has_no_due_time_in_its_header(local_queue):
    taskqueue.add('/view')
    transaction.commit()
    [message] = local_queue.reserve('test', 10, 0)
    assert b'"d":' not in message
    assert local_queue.codec.decode(message).due is None


def test_countdown_schedules_the_task_that_many_seconds_ahead(local_queue):
    before = time.time()
    task_id = taskqueue.add('/view', countdown=60)
    transaction.commit()
    assert local_queue.reserve('test', 10, 0) == []
    status = local_queue.task_status(task_id)
    assert status['state'] == 'scheduled'
    assert before + 60 <= status['due'] <= time.time() + 60


def test_eta_schedules_the_task_at_that_time(local_queue):
    eta = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        hours=1)
    task_id = taskqueue.add('/view', eta=eta)
    transaction.commit()
    assert local_queue.task_status(task_id)['due'] == eta.timestamp()


def test_a_countdown_of_zero_runs_at_once(local_queue):
    taskqueue.add('/view', countdown=0)
    transaction.commit()
    [message] = local_queue.reserve('test', 10, 0)
    assert local_queue.codec.decode(message).due is None


def test_a_naive_eta_is_refused(local_queue):
    with pytest.raises(InvalidTask, match='eta must be an aware datetime'):
        taskqueue.add('/view', eta=datetime.datetime.now())


def test_countdown_and_eta_together_are_refused(local_queue):
    with pytest.raises(InvalidTask, match='countdown or eta, not both'):
        taskqueue.add('/view', countdown=1, eta=datetime.datetime.now(
            datetime.timezone.utc))


@fixture_kept
@given(st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).filter(
        lambda x: not (0 <= x <= MAX_DELAY)),
    st.integers().filter(lambda x: not (0 <= x <= MAX_DELAY)),
    st.booleans(), st.text(), st.none().map(lambda _: [1])))
def test_a_countdown_that_is_not_seconds_ahead_is_refused(local_queue,
                                                          countdown):
    with pytest.raises(InvalidTask, match='countdown'):
        taskqueue.add('/view', countdown=countdown)


@fixture_kept
@given(st.floats(min_value=0, max_value=MAX_DELAY))
def test_every_countdown_in_range_is_accepted(local_queue, countdown):
    task_id = taskqueue.add('/view', countdown=countdown)
    assert task_id
    transaction.abort()


@fixture_kept
@given(st.one_of(st.text(), st.integers(), st.dates(), st.datetimes()))
def test_an_eta_that_is_not_an_aware_datetime_is_refused(local_queue, eta):
    with pytest.raises(InvalidTask, match='eta'):
        taskqueue.add('/view', eta=eta)


@fixture_kept
@given(st.datetimes(timezones=st.timezones()))
def test_an_aware_eta_is_accepted_within_a_year(local_queue, eta):
    if eta.timestamp() - time.time() > MAX_DELAY:
        with pytest.raises(InvalidTask, match='eta is more than'):
            taskqueue.add('/view', eta=eta)
    else:
        assert taskqueue.add('/view', eta=eta)
    transaction.abort()
    assert math.isfinite(eta.timestamp())


@fixture_kept
@given(st.from_regex(r'[A-Za-z0-9_.:@/+\-]{1,100}', fullmatch=True))
def test_every_label_of_the_charset_is_accepted(local_queue, label):
    assert taskqueue.add('/view', label=label)
    transaction.abort()


@fixture_kept
@given(st.one_of(st.text().filter(lambda text: not re.fullmatch(
    r'[A-Za-z0-9_.:@/+\-]{1,100}', text)), st.integers(), st.binary()))
def test_a_label_out_of_the_charset_is_refused(local_queue, label):
    with pytest.raises(InvalidTask, match='label must be'):
        taskqueue.add('/view', label=label)


def test_cancel_removes_a_task_not_started_from_any_queue(local_queue):
    with transaction.manager:
        task_id = taskqueue.add('/view', countdown=60)
    assert taskqueue.cancel(task_id) == 'cancelled'
    assert taskqueue.status(task_id)['state'] == 'cancelled'
    assert taskqueue.cancel(task_id) is None


def test_cancel_says_a_running_task_runs_on(local_queue):
    with transaction.manager:
        task_id = taskqueue.add('/view')
    local_queue.reserve('test', 1, 0)
    assert taskqueue.cancel(task_id) == 'running'


@pytest.mark.parametrize('task_id', ['', 'xyz', 42, None, 'a' * 65])
def test_cancel_refuses_what_is_not_a_task_id(local_queue, task_id):
    with pytest.raises(InvalidTask, match='task_id must be'):
        taskqueue.cancel(task_id)
