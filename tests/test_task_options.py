"""The options of ``add``: countdown, eta, label, priority, name; and the
table that feeds them to every boundary."""
import datetime
import json
import math
import re
import time

import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.dispatch import Dispatcher
from wsgi_taskqueue.errors import InvalidTask
from wsgi_taskqueue.options import (
    MAX_DELAY,
    NO_OPTIONS,
    OPTIONS,
    STORED,
    TaskOptions,
    options_of,
)

from test_task import make_task

#: The queue only receives what a test commits, and these abort.
fixture_kept = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture])


def test_a_task_without_a_delay_has_no_due_time_in_its_header(local_queue):
    taskqueue.add('/view')
    transaction.commit()
    [message] = local_queue.reserve('test', 10, 0)
    assert b'"d":' not in message
    assert local_queue.codec.decode(message).options.due is None


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
    assert local_queue.codec.decode(message).options.due is None


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


# -- the options table feeds every boundary ----------------------------------

def _openapi_schemas():
    import importlib.resources

    import yaml
    spec = yaml.safe_load(importlib.resources.files(
        'wsgi_taskqueue.management').joinpath('openapi.yaml').read_text())
    return spec['components']['schemas']


def test_the_api_document_describes_every_option_as_the_table_does():
    schemas = _openapi_schemas()
    for name, option in OPTIONS.items():
        described = dict(schemas['NewTask']['properties'][name])
        assert described.pop('description')
        assert described == option.schema, name
    for option in STORED:
        assert option.field in schemas['TaskRecord']['properties']


def test_the_add_command_takes_every_option_as_a_flag():
    from wsgi_taskqueue.cli import build_parser
    args = build_parser().parse_args([
        'add', 'app.ini', '/x', '--countdown', '2.5', '--label', 'a',
        '--priority', '7', '--name', 'n-1'])
    assert (args.countdown, args.label, args.priority, args.name,
            args.eta) == (2.5, 'a', 7, 'n-1', None)
    eta = build_parser().parse_args(
        ['add', 'app.ini', '/x', '--eta', '2030-01-01T00:00:00+01:00']).eta
    assert eta == datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone(
        datetime.timedelta(hours=1)))


@pytest.mark.parametrize('flag, value', [
    ('--priority', '10'), ('--priority', 'high'), ('--countdown', 'soon'),
    ('--eta', 'tomorrow'), ('--name', 'a b'), ('--label', '')])
def test_the_add_command_refuses_a_bad_option_naming_it(flag, value, capsys):
    from wsgi_taskqueue.cli import build_parser
    args = ['add', 'app.ini', '/x', flag, value]
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        assert flag[2:] in capsys.readouterr().err
        return
    # Text that parses (a priority of 10) is checked by add itself.
    with pytest.raises(InvalidTask, match=flag[2:]):
        options_of({flag[2:]: getattr(parsed, flag[2:])})


def test_a_task_without_options_has_the_header_it_always_had(local_queue):
    taskqueue.add('/view')
    transaction.commit()
    [message] = local_queue.reserve('test', 10, 0)
    header = json.loads(message.split(b'\n')[1])
    assert list(header) == ['v', 'id', 'q', 'u', 'm', 'e', 'uid', 't', 'a',
                            'sn', 's']
    assert local_queue.codec.decode(message).options is NO_OPTIONS


def test_the_dispatched_request_sees_each_option_set_as_an_x_task_header(
        local_queue):
    eta = datetime.datetime(2031, 5, 6, tzinfo=datetime.timezone.utc)
    task = make_task(options=options_of(
        {'label': 'mailing', 'priority': 8, 'name': 'invoice-42'}))
    later = make_task(options=TaskOptions(due=eta.timestamp()))
    environ = Dispatcher(None).environ(task)
    assert (environ['HTTP_X_TASK_LABEL'], environ['HTTP_X_TASK_PRIORITY'],
            environ['HTTP_X_TASK_NAME']) == ('mailing', '8', 'invoice-42')
    assert 'HTTP_X_TASK_ETA' not in environ
    assert float(Dispatcher(None).environ(later)['HTTP_X_TASK_ETA']) == \
        eta.timestamp()
    plain = Dispatcher(None).environ(make_task())
    assert not {option.environ_key for option in STORED} & set(plain)


def test_options_given_twice_for_one_field_are_refused():
    with pytest.raises(InvalidTask, match='give countdown or eta, not both'):
        options_of({'countdown': 1, 'eta': datetime.datetime.now(
            datetime.timezone.utc)})


def test_an_unknown_option_is_refused_naming_the_known_ones(local_queue):
    with pytest.raises(InvalidTask, match="unknown option 'urgency'; the "
                                          "options are countdown, eta"):
        taskqueue.add('/view', urgency=3)


# -- priority ------------------------------------------------------------------

@fixture_kept
@given(st.integers(min_value=0, max_value=9))
def test_every_priority_from_0_to_9_is_accepted(local_queue, priority):
    task_id = taskqueue.add('/view', priority=priority)
    transaction.commit()
    [message] = local_queue.reserve('test', 10, 0)
    task = local_queue.codec.decode(message)
    assert task.id == task_id
    # The default is stored as no priority: the header is a plain one's.
    assert task.options.priority == (None if priority == 5 else priority)
    local_queue.reset()


@fixture_kept
@given(st.one_of(st.integers().filter(lambda n: not 0 <= n <= 9),
                 st.floats(), st.text(), st.booleans()))
def test_a_priority_out_of_range_is_refused(local_queue, priority):
    with pytest.raises(InvalidTask, match='priority must be a whole number '
                                          'from 0 to 9'):
        taskqueue.add('/view', priority=priority)


def test_the_status_record_shows_the_priority(local_queue):
    high = taskqueue.add('/view', priority=9)
    plain = taskqueue.add('/view')
    transaction.commit()
    assert taskqueue.status(high)['priority'] == 9
    assert taskqueue.status(plain)['priority'] is None


# -- names ---------------------------------------------------------------------

NAME = r'[A-Za-z0-9_.:@/+\-]{1,200}'


@fixture_kept
@given(st.from_regex(NAME, fullmatch=True))
def test_every_name_of_the_charset_is_accepted(local_queue, name):
    assert taskqueue.add('/view', name=name)
    transaction.abort()


@fixture_kept
@given(st.one_of(st.text().filter(lambda text: not re.fullmatch(NAME, text)),
                 st.integers(), st.binary()))
def test_a_name_out_of_the_charset_is_refused(local_queue, name):
    with pytest.raises(InvalidTask, match='name must be'):
        taskqueue.add('/view', name=name)


def test_a_name_added_twice_in_one_transaction_gives_the_first_task(
        local_queue):
    first = taskqueue.add('/view', name='invoice-42')
    assert taskqueue.add('/other', name='invoice-42') == first
    assert taskqueue.add('/other', name='invoice-43') != first
    transaction.commit()
    assert len(local_queue.reserve('test', 10, 0)) == 2


def test_a_savepoint_rolled_back_frees_the_names_added_after_it(local_queue):
    first = taskqueue.add('/view')
    savepoint = transaction.savepoint()
    dropped = taskqueue.add('/view', name='report')
    savepoint.rollback()
    kept = taskqueue.add('/view', name='report')
    assert kept != dropped
    transaction.commit()
    assert [local_queue.codec.decode(message).id for message in
            local_queue.reserve('test', 10, 0)] == [first, kept]


def test_a_duplicate_from_another_transaction_is_dropped_and_logged(
        local_queue, caplog):
    caplog.set_level('INFO', 'wsgi_taskqueue')
    with transaction.manager:
        holder = taskqueue.add('/view', name='invoice-42')
    with transaction.manager:
        dropped = taskqueue.add('/view', name='invoice-42')
    assert dropped != holder
    assert taskqueue.status(dropped) is None
    assert taskqueue.status(holder)['name'] == 'invoice-42'
    assert f'task {dropped} of queue \'default\' dropped: its name ' \
           f'\'invoice-42\' is held by task {holder}' in caplog.text
    assert len(local_queue.reserve('test', 10, 0)) == 1
