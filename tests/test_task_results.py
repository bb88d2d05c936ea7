"""Results and completion callbacks: the backend contract on every
backend (what ``ack`` and ``bury`` keep and release, once), and the
validation of the options at ``add``."""
import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

from wsgi_taskqueue import completion, results, taskqueue
from wsgi_taskqueue.dispatch import Result
from wsgi_taskqueue.errors import InvalidTask
from wsgi_taskqueue.status import Report

from test_backends import promoted, task_message

fixture_kept = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture])


def finished_report(queue, task, outcome, status='200 OK', body=b'hello'):
    """The Report a consumer hands over for ``task`` ending ``outcome``."""
    answer = Result(status, [('Content-Type', 'text/plain'),
                             ('Location', '/there'), ('X-Other', '1')],
                    body=body, size=len(body))
    return completion.finished(queue, task, Report(task.id, 1, status, 0.01),
                               answer, outcome)


def taken(queue, slot='c'):
    return [queue.codec.decode(message)
            for message in queue.reserve(slot, 10, 0)]


def test_ack_keeps_the_result_and_queues_the_success_callback_once(
        any_queue):
    task, message = task_message(any_queue, keep_result=True,
                                 on_success='/done', on_failure='/failed')
    promoted(any_queue, message)
    assert any_queue.reserve('c', 1, 0) == [message]
    report = finished_report(any_queue, task, 'done')
    any_queue.ack('c', [(message, report)])
    # A lost reply: the consumer acknowledges again.  Nothing more.
    any_queue.ack('c', [(message, report)])
    stored = results.decode(any_queue.task_result(task.id))
    assert stored == {'outcome': 'done', 'status': '200 OK',
                      'headers': {'Content-Type': 'text/plain',
                                  'Location': '/there'},
                      'body': b'hello', 'size': 5, 'truncated': False}
    assert any_queue.task_status(task.id)['state'] == 'done'
    [callback] = taken(any_queue)
    assert (callback.url, callback.method, callback.user_id,
            callback.payload) == ('/done', 'GET', 'alice', b'')
    assert callback.environ == task.environ
    assert callback.parent == {'id': task.id, 'outcome': 'done',
                               'status': '200 OK'}
    assert any_queue.task_status(callback.id)['state'] == 'running'


def test_the_acknowledgement_in_a_reserve_releases_the_callback_too(
        any_queue):
    task, message = task_message(any_queue, on_success='/done')
    promoted(any_queue, message)
    assert any_queue.reserve('c', 1, 0) == [message]
    [callback] = [any_queue.codec.decode(found) for found in any_queue.reserve(
        'c', 10, 0, done=[(message, finished_report(any_queue, task,
                                                    'done'))])]
    assert callback.parent['id'] == task.id
    assert any_queue.task_result(task.id) is None  # not asked to keep it


def test_bury_queues_the_failure_callback_once_with_the_result(any_queue):
    task, message = task_message(any_queue, keep_result=True,
                                 on_success='/done', on_failure='/failed')
    promoted(any_queue, message)
    assert any_queue.reserve('c', 1, 0) == [message]
    report = finished_report(any_queue, task, 'dead', '404 Not Found',
                             b'no such thing')
    record = any_queue.dead_letter(message, task, '404 Not Found', '', 1)
    any_queue.bury('c', message, record, report)
    any_queue.bury('c', message, record, report)
    assert any_queue.counts()['dead'] == 1
    assert any_queue.task_status(task.id)['state'] == 'dead'
    assert results.decode(any_queue.task_result(task.id))['body'] == \
        b'no such thing'
    [callback] = taken(any_queue)
    assert callback.url == '/failed'
    assert callback.parent == {'id': task.id, 'outcome': 'dead',
                               'status': '404 Not Found'}


def test_a_task_buried_unrun_releases_its_failure_callback(any_queue):
    task, message = task_message(any_queue, on_failure='/failed')
    promoted(any_queue, message)
    assert any_queue.reserve('c', 1, 0) == [message]
    any_queue.bury_unusable('c', message, 'older than max_age', task)
    [callback] = taken(any_queue)
    assert callback.parent == {'id': task.id, 'outcome': 'dead',
                               'status': 'older than max_age'}


def test_a_task_requeued_from_its_slot_releases_nothing(any_queue):
    # The consumer died before it settled the task: it runs again, and
    # its callback comes with that run's settlement.
    task, message = task_message(any_queue, on_success='/done')
    promoted(any_queue, message)
    assert any_queue.reserve('c#1', 1, 0) == [message]
    assert any_queue.requeue_processing('c') == (1, 0)
    assert any_queue.reserve('c#1', 10, 0) == [message]
    any_queue.ack('c#1', [(message, finished_report(any_queue, task,
                                                    'done'))])
    assert [callback.parent['id'] for callback in taken(any_queue)] == [
        task.id]
    assert taken(any_queue) == []


def test_a_result_is_cut_at_result_max_size(local_queue):
    local_queue.result_max_size = 3
    task, message = task_message(local_queue, keep_result=True)
    promoted(local_queue, message)
    local_queue.reserve('c', 1, 0)
    answer = Result('200 OK', [], body=b'hel', size=5)
    local_queue.ack('c', [(message, completion.finished(
        local_queue, task, Report(task.id, 1, '200 OK', 0), answer,
        'done'))])
    found = taskqueue.result(task.id)
    assert (found['body'], found['size'], found['truncated']) == (
        b'hel', 5, True)


def test_a_binary_body_is_kept_as_it_was(local_queue):
    stored = results.encode('done', '200 OK', [], b'\xff\x00', 2)
    assert results.as_json(stored)['encoding'] == 'base64'
    assert results.decode(stored)['body'] == b'\xff\x00'


def test_the_queue_default_keeps_every_result(local_queue):
    local_queue.keep_result = True
    task, _ = task_message(local_queue)
    assert completion.kept_result(local_queue, task) == \
        local_queue.result_max_size
    local_queue.keep_result = False
    assert completion.kept_result(local_queue, task) is None


def test_result_of_a_task_without_one_is_none(local_queue):
    assert taskqueue.result('ab' * 16) is None
    with pytest.raises(InvalidTask, match='task_id'):
        taskqueue.result('not an id')


def test_the_options_travel_in_the_signed_header(local_queue):
    task_id = taskqueue.add('/view', keep_result=True, on_success='/ok',
                            on_failure='/caf\u00e9')
    transaction.commit()
    [message] = local_queue.reserve('c', 1, 0)
    options = local_queue.codec.decode(message).options
    assert (options.keep_result, options.on_success, options.on_failure) \
        == (True, '/ok', '/caf%C3%A9')
    status = local_queue.task_status(task_id)
    assert (status['keep_result'], status['on_success']) == (True, '/ok')


def test_keep_result_false_is_the_same_as_not_given(local_queue):
    taskqueue.add('/view', keep_result=False)
    transaction.commit()
    [message] = local_queue.reserve('c', 1, 0)
    assert b'"kr"' not in message


@fixture_kept
@given(st.one_of(st.integers(), st.text(), st.floats(), st.just([True])))
def test_keep_result_must_be_a_boolean(local_queue, value):
    with pytest.raises(InvalidTask, match='keep_result'):
        taskqueue.add('/view', keep_result=value)


@fixture_kept
@given(option=st.sampled_from(['on_success', 'on_failure']),
       url=st.one_of(
           st.text().filter(lambda text: not text.startswith('/')),
           st.just('//host/path'), st.just('/a b'), st.just('/a\nb'),
           st.just('/%0d%0a'), st.integers(), st.binary()))
def test_a_callback_must_be_a_path_inside_the_app(local_queue, option, url):
    with pytest.raises(InvalidTask, match=option):
        taskqueue.add('/view', **{option: url})


@fixture_kept
@given(st.from_regex(r"/([A-Za-z0-9_.~-][A-Za-z0-9/_.~-]{0,50})?",
                     fullmatch=True))
def test_every_plain_path_is_a_valid_callback(local_queue, url):
    taskqueue.add('/view', on_success=url, on_failure=url)
    transaction.abort()


def test_a_forged_parent_is_refused_at_decode(local_queue):
    task, _ = task_message(local_queue)
    import dataclasses
    forged = dataclasses.replace(task, parent={'id': task.id,
                                               'outcome': 'maybe',
                                               'status': '200 OK'})
    from wsgi_taskqueue.errors import DecodeError
    with pytest.raises(DecodeError, match='parent'):
        local_queue.codec.decode(local_queue.codec.encode(forged))


def test_the_api_shows_a_kept_result(local_queue):
    import webtest

    from wsgi_taskqueue.management import make_app

    from test_admin import work
    from test_management import AUTH, KEY
    with transaction.manager:
        task_id = taskqueue.add('/ok', keep_result=True)
    work()
    record = webtest.TestApp(make_app(KEY)).get(f'/tasks/{task_id}',
                                                headers=AUTH).json
    assert record['state'] == 'done'
    assert (record['result']['outcome'], record['result']['status']) == (
        'done', '200 OK')


def test_the_dashboard_links_a_task_to_its_page_with_the_result(
        local_queue):
    import re

    import webtest

    from wsgi_taskqueue.management import make_app

    from test_admin import work
    from test_management import KEY
    with transaction.manager:
        task_id = taskqueue.add('/ok', keep_result=True)
    work()
    browser = webtest.TestApp(make_app(KEY))
    browser.get(f'/?key={KEY}', status=303)
    panels = browser.get('/panels').text
    [link] = re.findall(rf'href="(task/{task_id}\?queue=default)"', panels)
    page = browser.get('/' + link).text
    assert re.search(r'<div data-panel="result"><p>200 OK \(\d+ bytes\)</p>',
                     page)
