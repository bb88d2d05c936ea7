import contextlib
import urllib.parse

import hypothesis.strategies as st
import pytest
import transaction
import webob
from hypothesis import given

import wsgi_taskqueue
from wsgi_taskqueue import context, taskqueue
from wsgi_taskqueue.errors import InvalidTask, UnknownQueue


@contextlib.contextmanager
def serving(path='/enqueue', **kwargs):
    """Pretend the filter is serving a request while add() is called."""
    environ = webob.Request.blank(path, **kwargs).environ
    request, token = context.bind(environ)
    try:
        yield environ
    finally:
        context.unbind(token)


def committed_tasks(queue):
    """Commit, then take every task of ``queue`` as the consumer would."""
    transaction.commit()
    return [queue.codec.decode(message)
            for message in queue.reserve('test', 1000, 0)]


def test_add_returns_the_task_id(local_queue):
    task_id = taskqueue.add('/view')
    [task] = committed_tasks(local_queue)
    assert task.id == task_id
    assert (task.url, task.method, task.attempt) == ('/view', 'GET', 1)


def test_params_are_appended_to_the_query_string(local_queue):
    taskqueue.add('/a', params={'x': 1, 'y': ['2', '3']})
    taskqueue.add('/b?z=0', params={'x': 'é'})
    taskqueue.add('/c?', params={'x': 1})
    assert [t.url for t in committed_tasks(local_queue)] == [
        '/a?x=1&y=2&y=3', '/b?z=0&x=%C3%A9', '/c?x=1']


def test_methods_are_case_insensitive(local_queue):
    taskqueue.add('/a', method='post')
    [task] = committed_tasks(local_queue)
    assert task.method == 'POST'


def test_headers_and_body_of_the_request_are_copied(local_queue):
    with serving(method='POST', POST={'a': '1'},
                 headers={'Cookie': 'session=s', 'Authorization': 'Basic eA==',
                          'User-Agent': 'Browser', 'Connection': 'keep-alive',
                          'X-Task-Id': 'forged', 'Host': 'example.com:8080'},
                 environ={'REMOTE_USER': 'alice', 'SCRIPT_NAME': '/site',
                          'wsgi.url_scheme': 'https'}):
        taskqueue.add('/task', method='POST')
    [task] = committed_tasks(local_queue)
    assert task.environ == {
        'HTTP_COOKIE': 'session=s', 'HTTP_AUTHORIZATION': 'Basic eA==',
        'HTTP_HOST': 'example.com:8080',
        'CONTENT_TYPE': 'application/x-www-form-urlencoded'}
    assert task.payload == b'a=1'
    assert task.user_id == 'alice'
    assert (task.script_name, task.url_scheme) == ('/site', 'https')


def test_explicit_headers_win_and_payload_none_sends_no_body(local_queue):
    with serving(method='POST', POST={'a': '1'}, headers={'Cookie': 'a=1'}):
        taskqueue.add('/task', headers={'Cookie': 'b=2', 'X-Extra': 'yes'},
                      payload=None)
    [task] = committed_tasks(local_queue)
    assert task.environ == {'HTTP_COOKIE': 'b=2', 'HTTP_X_EXTRA': 'yes',
                            'HTTP_HOST': 'localhost:80'}
    assert task.payload == b''


def test_an_explicit_payload_replaces_the_body(local_queue):
    with serving(method='POST', POST={'a': '1'}):
        taskqueue.add('/task', payload='{"é": 1}',
                      headers={'Content-Type': 'application/json'})
    [task] = committed_tasks(local_queue)
    assert task.payload == '{"é": 1}'.encode()
    assert task.environ['CONTENT_TYPE'] == 'application/json'


def test_outside_a_request_only_what_is_given_travels(local_queue):
    taskqueue.add('/cron', headers={'Authorization': 'Bearer t'})
    [task] = committed_tasks(local_queue)
    assert task.environ == {'HTTP_AUTHORIZATION': 'Bearer t'}
    assert (task.payload, task.user_id) == (b'', None)


def test_the_default_queue_is_the_alphabetically_first():
    queues = {name: wsgi_taskqueue.LocalQueue() for name in ('mail', 'bulk')}
    for name, queue in queues.items():
        wsgi_taskqueue.register_queue(name, queue)
    taskqueue.add('/a')
    taskqueue.add('/b', queue='mail')
    assert [t.url for t in committed_tasks(queues['bulk'])] == ['/a']
    assert [t.url for t in committed_tasks(queues['mail'])] == ['/b']


def test_without_any_queue_add_says_how_to_configure_one():
    with pytest.raises(UnknownQueue, match=r'\[taskqueue\] section'):
        taskqueue.add('/a')


def test_an_unknown_queue_is_named(local_queue):
    with pytest.raises(UnknownQueue, match="'nope'.*default"):
        taskqueue.add('/a', queue='nope')


@pytest.mark.parametrize('kwargs, message', [
    ({'url': ''}, 'non-empty string'),
    ({'url': None}, 'non-empty string'),
    ({'url': 'view'}, 'path inside the app'),
    ({'url': 'http://evil.example/view'}, 'path inside the app'),
    ({'url': '//evil.example/view'}, 'path inside the app'),
    ({'url': '/a b'}, 'spaces'),
    ({'url': '/a\r\nX-Injected: 1'}, 'control characters'),
    ({'url': '/a#frag'}, 'fragment'),
    ({'method': 'BREW'}, 'method must be one of'),
    ({'method': None}, 'method must be one of'),
    ({'params': [('a', 1)]}, 'params must be a dict'),
    ({'headers': [('A', 'b')]}, 'headers must be a dict'),
    ({'headers': {'A': 'b\r\nC: d'}}, 'CR, LF'),
    ({'headers': {'A\nB': 'c'}}, 'invalid header name'),
    ({'headers': {'A': None}}, 'value must be a string'),
    ({'headers': {'A': b'bytes'}}, 'value must be a string'),
    ({'headers': {'X.Trace': 'a'}}, 'invalid header name'),
    ({'headers': {'X-Foo\n': 'a'}}, 'invalid header name'),
    ({'url': '/%0d%0aSet-Cookie:x'}, 'encode CR, LF'),
    ({'url': '/%2F%2Fevil.example/x'}, 'leading "//"'),
    ({'url': '/a/%00'}, 'encode CR, LF, NUL'),
    ({'headers': {'A': '\udc80'}}, 'lone surrogates'),
    ({'url': '/\udc80'}, 'non-empty string'),
    ({'headers': {'X-Task-Id': 'x'}}, 'set by the dispatcher'),
    ({'headers': {'Content-Length': '3'}}, 'computed from the payload'),
    ({'payload': 3}, 'payload must be bytes, str or None'),
])
def test_bad_input_is_refused_at_add_time(local_queue, kwargs, message):
    arguments = {'url': '/view', **kwargs}
    with pytest.raises(InvalidTask, match=message):
        taskqueue.add(**arguments)
    assert committed_tasks(local_queue) == []


def test_url_headers_and_payload_count_toward_the_queue_limit():
    wsgi_taskqueue.register_queue(
        'small', wsgi_taskqueue.LocalQueue(max_task_size=20))
    # 2 bytes of URL, 8 + 1 of header (its environ key and value), 9 of body.
    taskqueue.add('/a', headers={'X-A': 'b'}, payload=b'x' * 9)
    for kwargs in [dict(url='/ab', headers={'X-A': 'b'}, payload=b'x' * 9),
                   dict(url='/a', headers={'X-A': 'bc'}, payload=b'x' * 9),
                   dict(url='/a', headers={'X-A': 'b'}, payload=b'x' * 10)]:
        with pytest.raises(InvalidTask,
                           match='task of 21 bytes.*max_task_size of 20'):
            taskqueue.add(**kwargs)


def queued_url(url, params=None):
    """The URL of the task ``add(url, params=params)`` queues, or None if
    ``add`` refuses it."""
    queue = wsgi_taskqueue.LocalQueue()
    wsgi_taskqueue.register_queue('prop', queue)
    try:
        taskqueue.add(url, params=params, queue='prop')
    except InvalidTask:
        return None
    finally:
        transaction.commit()
    [message] = queue.reserve('test', 10, 0)
    return queue.codec.decode(message).url


@given(st.text(max_size=60))
def test_add_either_refuses_a_url_or_queues_a_path_without_control_chars(url):
    queued = queued_url(url)
    if queued is None:
        return
    assert queued.startswith('/') and not queued.startswith('//')
    assert queued.isascii()
    assert not any(c in queued for c in ' \r\n\x00#')


_PARAM_VALUES = st.one_of(
    st.text(max_size=8), st.integers(), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.binary(max_size=4),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3))


@given(st.dictionaries(st.one_of(st.text(max_size=6), st.integers()),
                       _PARAM_VALUES, max_size=4))
def test_params_are_encoded_as_urlencode_with_doseq_does(params):
    expected = urllib.parse.urlencode(params, doseq=True)
    assert queued_url('/q', params) == (f'/q?{expected}' if expected else '/q')


@given(st.text(alphabet=st.characters(codec='utf-8', exclude_characters='#'),
               max_size=20))
def test_a_url_travels_quoted_as_urllib_quotes_it(path):
    url = '/' + path.lstrip('/')
    queued = queued_url(url)
    if queued is not None:
        assert queued == urllib.parse.quote(url, safe="/?&=%:@!$'()*+,;~-._")


def test_with_credentials_user_id_only_the_user_id_travels():
    queue = wsgi_taskqueue.LocalQueue(credentials='user-id')
    wsgi_taskqueue.register_queue('default', queue)
    with serving(headers={'Cookie': 'session=s', 'Authorization': 'Basic x',
                          'Accept-Language': 'fr'},
                 environ={'REMOTE_USER': 'alice'}):
        taskqueue.add('/task')
    [task] = committed_tasks(queue)
    assert task.environ == {'HTTP_ACCEPT_LANGUAGE': 'fr',
                            'HTTP_HOST': 'localhost:80'}
    assert task.user_id == 'alice'


def test_an_unknown_credentials_mode_is_refused():
    with pytest.raises(ValueError, match='credentials must be one of'):
        wsgi_taskqueue.LocalQueue(credentials='some')


def test_a_remote_user_that_cannot_travel_is_refused_at_add_time(local_queue):
    with serving(environ={'REMOTE_USER': 'alice\r\nX-Admin: 1'}), \
            pytest.raises(InvalidTask, match='REMOTE_USER'):
        taskqueue.add('/task')


def test_reset_empties_the_default_queue_or_the_one_named():
    first, second = wsgi_taskqueue.LocalQueue(), wsgi_taskqueue.LocalQueue()
    wsgi_taskqueue.register_queue('a', first)
    wsgi_taskqueue.register_queue('b', second)
    with transaction.manager:
        taskqueue.add('/one', queue='a')
        taskqueue.add('/two', queue='b')
    taskqueue.reset()
    assert (len(first), len(second)) == (0, 1)
    taskqueue.reset('b')
    assert len(second) == 0
    with pytest.raises(UnknownQueue):
        taskqueue.reset('c')


def test_a_host_that_knows_the_authenticated_user_names_it_at_add_time(
        local_queue):
    """Zope sets REMOTE_USER only after publishing: the task's user is the
    one the host reports when add is called."""
    users = iter(['bob', None])
    environ = webob.Request.blank('/enqueue',
                                  environ={'REMOTE_USER': 'alice'}).environ
    request, token = context.bind(environ, lambda: next(users))
    try:
        taskqueue.add('/first')
        taskqueue.add('/second')
    finally:
        context.unbind(token)
    assert [t.user_id for t in committed_tasks(local_queue)] == ['bob', None]
