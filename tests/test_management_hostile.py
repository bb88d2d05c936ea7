"""The management app against hostile input: records crafted straight
into a real Redis (see the key layout in ``backends.redis``), request
bodies too large or too deep, short keys; and hypothesis feeding it
arbitrary bytes and JSON.  Nothing answers 500, everything rendered is
text, a malformed record is shown as such."""
from __future__ import annotations

import html.parser
import io
import json
import time
import urllib.parse

import hypothesis
import pytest
import redis
import webtest
from hypothesis import strategies as st

import wsgi_taskqueue
from wsgi_taskqueue.errors import ConfigurationError
from wsgi_taskqueue.management import app_factory, make_app
from wsgi_taskqueue.management.api import MAX_BODY_DEPTH
from wsgi_taskqueue.management.app import SECURITY_HEADERS
from wsgi_taskqueue.management.auth import MIN_KEY_LENGTH

from dummies import add
from test_cli import INI
from test_management import AUTH, EVERY_PATH, KEY, bury

#: Markup that would run if it reached a page as markup.
SCRIPT = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
#: The keys of a dead letter's header.
LETTER_KEYS = ['id', 'q', 'u', 'm', 's', 'e', 'a', 't']
#: Every route that reads stored records.
READERS = ['/', '/panels', '/status', '/tasks', '/dead-letters']
HYPOTHESIS = dict(deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(hypothesis.HealthCheck))


@pytest.fixture
def store(redis_queue, redis_url):
    """Write to the test Redis under the queue's keys."""
    client = redis.Redis.from_url(redis_url)
    yield Store(client, redis_queue)
    client.close()


class Store:
    def __init__(self, client, queue):
        self.client = client
        self.queue = queue

    def letter(self, record: bytes) -> None:
        self.client.lpush(self.queue.dead_key, record)

    def status(self, task_id: str, fields: dict) -> None:
        self.client.hset(self.queue.task_key(task_id), mapping=fields)
        self.client.zadd(self.queue.tasks_key, {task_id: time.time()})

    def consumer(self, name: str, info: bytes) -> None:
        self.client.zadd(self.queue.leases_key, {name: time.time() + 60})
        self.client.hset(self.queue.info_key, name, info)


@pytest.fixture
def api(redis_queue):
    return webtest.TestApp(make_app(KEY))


@pytest.fixture
def browser(api):
    """The test app with a dashboard session."""
    api.get(f'/?key={KEY}', status=303)
    return api


def letter_record(**fields) -> bytes:
    header = {'id': 'a' * 32, 'q': 'default', 'u': '/x', 'm': 'GET',
              's': '404 Not Found', 'e': 'gone', 'a': 1, 't': time.time()}
    header.update(fields)
    return json.dumps(header).encode() + b'\nmessage'


class Markup(html.parser.HTMLParser):
    """The elements and attributes of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(text: str) -> None:
    """No element a record could have brought, no event handler: the one
    script is the dashboard's own."""
    tags = Markup(text).tags
    assert [attrs for tag, attrs in tags if tag == 'script'] in (
        [], [{'src': 'static/dashboard.js', 'defer': None}])
    assert not {tag for tag, _ in tags} & {'img', 'iframe', 'object',
                                           'embed', 'form', 'base'}
    assert not [name for _, attrs in tags for name in attrs
                if name.startswith('on')]


# -- headers ---------------------------------------------------------------

@pytest.mark.parametrize('headers', [AUTH, {}])
def test_every_answer_carries_the_csp_and_its_companions(api, headers):
    api.get(f'/?key={KEY}', status=303)
    for method, path in EVERY_PATH + [('DELETE', '/tasks'),
                                      ('GET', f'/?key={KEY}')]:
        response = api.request(path, method=method, headers=headers,
                               body=b'{}', status='*')
        for name, value in SECURITY_HEADERS:
            assert response.headers[name] == value, (method, path, name)
    assert "frame-ancestors 'none'" in dict(SECURITY_HEADERS)[
        'Content-Security-Policy']


def test_the_panels_carry_the_csp(browser):
    response = browser.get('/panels')
    assert response.content_type == 'text/html'
    assert "script-src 'self'" in response.headers['Content-Security-Policy']
    assert response.headers['X-Content-Type-Options'] == 'nosniff'


# -- escaping --------------------------------------------------------------

def test_script_in_every_field_of_every_record_is_shown_as_text(
        browser, store, redis_url):
    hostile = wsgi_taskqueue.RedisQueue(url=redis_url)
    wsgi_taskqueue.register_queue(SCRIPT.replace(' ', ''), hostile)
    # A dead letter with script in every field (attempt and time too:
    # then it is malformed, and shown so), and one with sound types.
    store.letter(json.dumps(dict.fromkeys(LETTER_KEYS, SCRIPT)).encode()
                 + b'\n' + SCRIPT.encode())
    store.letter(letter_record(id=SCRIPT, q=SCRIPT, u=SCRIPT, m=SCRIPT,
                               s=SCRIPT, e=SCRIPT + '\n' + SCRIPT))
    store.status('t1', {'id': SCRIPT, 'state': 'dead', 'updated': SCRIPT,
                        'consumer': SCRIPT, 'attempt': SCRIPT,
                        'status': SCRIPT, 'next': SCRIPT, 'a1': SCRIPT,
                        'header': json.dumps(dict.fromkeys(
                            ['m', 'u', 'uid', 't', 'a'], SCRIPT))})
    store.status('t2', {'id': SCRIPT, 'state': 'retrying',
                        'updated': str(time.time()), 'consumer': SCRIPT,
                        'status': SCRIPT, 'a1': f'{SCRIPT}\t1\t2',
                        'header': json.dumps({'m': SCRIPT, 'u': SCRIPT,
                                              'uid': SCRIPT})})
    store.consumer(SCRIPT, json.dumps({
        'host': SCRIPT, 'pid': SCRIPT, 'concurrency': SCRIPT,
        'processed': SCRIPT, 'paused': SCRIPT, 'lease': 15}).encode())
    store.consumer('c2', json.dumps({'lease': SCRIPT}).encode())
    for path in ('/', '/panels'):
        text = browser.get(path).text
        assert_inert(text)
        assert '&lt;script&gt;document.title=' in text
        assert 'malformed dead letter: attempt is not a whole number' in text
        assert 'malformed status record: ' in text
        assert 'malformed record: its lease is not a number' in text
    for path in READERS[2:]:
        assert browser.get(path).content_type == 'application/json'


def test_a_dead_letters_attempt_is_escaped(browser, store):
    store.letter(letter_record(a='<img src=x onerror=alert(1)>'))
    text = browser.get('/panels').text
    assert_inert(text)
    assert '<img' not in text


# -- malformed records -----------------------------------------------------

NOT_A_RECORD = 'not a dead-letter record: its first line is not a JSON object'
MALFORMED_LETTERS = [
    (b'not json at all', NOT_A_RECORD),
    (b'{"id": "x"}', NOT_A_RECORD),  # no message
    (b'[1, 2]\nmessage', NOT_A_RECORD),
    (b'\xff\xfe\n\x00', NOT_A_RECORD),
    (b'[' * 100_000 + b'\nm', NOT_A_RECORD),
    (b'{}\nmessage', 'queue is missing; error is missing; attempt is '
                     'missing; time is missing'),
    (letter_record().partition(b'\n')[0] + b'\n', 'it holds no message'),
    (letter_record(a='2'), 'attempt is not a whole number'),
    (letter_record(a=-1), 'attempt is not a whole number'),
    (letter_record(a=True), 'attempt is not a whole number'),
    (letter_record(t='yesterday'), 'time is not a time'),
    (letter_record(t=1e300), 'time is not a time'),
    (letter_record(t=10 ** 400), 'time is not a time'),
    (letter_record(e=['a list']), 'error is not a string'),
    (letter_record(id={'an': 'object'}), 'task id is not a string'),
]


@pytest.mark.parametrize('record, problem', MALFORMED_LETTERS)
def test_a_malformed_dead_letter_is_a_row_saying_so(browser, store, record,
                                                    problem):
    bury(store.queue, '/gone')
    store.letter(record)
    for path in ('/', '/panels'):
        text = browser.get(path).text
        assert f'malformed dead letter: {problem}' in text
        assert '/gone' in text  # the sound letter beside it
    letters = browser.get('/dead-letters').json['dead_letters']
    assert sorted(letter['problem'] or '' for letter in letters) == [
        '', problem]
    status = browser.get('/status').json
    assert status['queues'][0]['counts']['dead'] == 2


MALFORMED_STATUS = [
    ({'state': 'done', 'updated': 'noon'}, 'updated is not a number'),
    ({'state': 'done', 'updated': 'nan'}, 'updated is not a number'),
    ({'state': 'done', 'attempt': 'x'}, 'attempt is not a whole number'),
    ({'state': 'done', 'attempt': '9' * 5000},
     'attempt is not a whole number'),
    ({'state': 'done', 'header': '{'}, 'header is not a JSON object'),
    ({'state': 'done', 'header': '[' * 100_000},
     'header is not a JSON object'),
    ({'state': 'done', 'header': '{"t": "then", "m": 1}'},
     'method is not a string; created is not a number'),
    ({'updated': '1'}, 'state is missing'),
    ({'state': 'exploded'}, 'state is none of'),
    ({'state': 'done', 'a1': 'ok\tlater\tslow'},
     'a1 is not a number; a1 is not a number'),
    ({'state': b'\xff\xfe'}, 'state is none of'),
]


@pytest.mark.parametrize('fields, problem', MALFORMED_STATUS)
def test_a_malformed_status_record_is_a_row_saying_so(browser, store, fields,
                                                      problem):
    [sound] = add('/sound')
    store.status('bad', dict({'id': 'bad'}, **fields))
    for path in ('/', '/panels'):
        text = browser.get(path).text
        assert 'malformed status record: ' + problem in text
        assert f'data-task="{sound}"' in text
    records = {record['id']: record
               for record in browser.get('/tasks').json['tasks']}
    assert records['bad']['problem'].startswith(problem)
    assert records[sound]['problem'] is None
    assert browser.get('/tasks/bad').json['problem'].startswith(problem)


def test_a_status_record_without_an_id_and_a_bad_minute_are_shown(
        browser, store):
    store.status('anonymous', {'state': 'done', 'updated': str(time.time())})
    minute = int(time.time() // 60)
    store.client.hset(f'{store.queue.base}minute:{minute}',
                      mapping={'done': 'many', 'dead': '2'})
    assert 'id is missing' in browser.get('/panels').text
    [queue] = browser.get('/status').json['queues']
    assert queue['throughput'][-1]['dead'] == 2


def test_consumer_info_that_is_not_json_is_shown_as_such(browser, store):
    store.consumer('garbled', b'{not json')
    [consumer] = browser.get('/status').json['queues'][0]['consumers']
    assert consumer['problem'] == 'its info is not a JSON object'
    assert 'malformed record: its info is not a JSON object' in \
        browser.get('/panels').text


def test_a_malformed_dead_letter_cannot_be_requeued_only_purged(browser,
                                                                store):
    store.letter(b'garbage')
    [letter] = browser.get('/dead-letters').json['dead_letters']
    response = browser.post(
        f'/dead-letters/default/{letter["id"]}/requeue', headers=AUTH,
        status=409)
    assert response.json['error'] == (
        'this dead letter cannot be requeued: not a dead-letter record: its '
        'first line is not a JSON object; purge it')
    assert 'data-action="requeue"' not in browser.get('/panels').text
    assert browser.post('/dead-letters/default/purge', headers=AUTH).json \
        == {'purged': 1}


def test_a_letter_with_a_bad_field_but_its_message_is_requeued(browser,
                                                               store):
    [task_id] = bury(store.queue, '/gone')
    record = store.client.lpop(store.queue.dead_key)
    header, _, message = record.partition(b'\n')
    store.letter(json.dumps(dict(json.loads(header), a='one')).encode()
                 + b'\n' + message)
    [letter] = browser.get('/dead-letters').json['dead_letters']
    assert letter['problem'] == 'attempt is not a whole number'
    assert browser.post(f'/dead-letters/default/{letter["id"]}/requeue',
                        headers=AUTH).json == {'requeued': True,
                                               'task_id': task_id}
    assert store.queue.counts()['pending'] == 1


def test_the_command_line_shows_malformed_records_too(store, tmp_path,
                                                      redis_url, capsys):
    from wsgi_taskqueue.cli import main
    ini = tmp_path / 'app.ini'
    ini.write_text(INI.format(type='redis', url=redis_url).replace('    ', ''))
    store.letter(b'garbage')
    store.status('bad', {'id': 'bad', 'state': 'done', 'updated': 'noon'})
    assert main(['dead', 'list', str(ini), '-q', 'default']) == 0
    assert 'malformed: not a dead-letter record' in capsys.readouterr().out
    assert main(['show', str(ini), 'bad']) == 0
    assert 'updated is not a number' in capsys.readouterr().out


# -- request bodies --------------------------------------------------------

def test_a_body_over_max_body_size_is_refused_before_it_is_read(redis_queue):
    api = webtest.TestApp(make_app(KEY, max_body_size=100))
    body = json.dumps({'url': '/x', 'payload': 'x' * 100}).encode()
    response = api.post('/tasks', body, headers=AUTH, status=413)
    assert response.json['error'] == (
        "the body is larger than 100 bytes (the management app's "
        "max_body_size)")
    assert redis_queue.counts()['pending'] == 0
    api.post('/tasks', b'{"url": "/x"}', headers=AUTH, status=201)


def test_a_body_of_unknown_length_is_read_no_further_than_the_limit(redis_queue):
    class Endless(io.RawIOBase):
        read_bytes = 0

        def readinto(self, buffer):
            buffer[:] = b' ' * len(buffer)
            self.read_bytes += len(buffer)
            return len(buffer)
    endless = Endless()
    app = make_app(KEY, max_body_size=1000)
    environ = {'REQUEST_METHOD': 'POST', 'PATH_INFO': '/tasks',
               'SERVER_NAME': 'localhost', 'SERVER_PORT': '80',
               'wsgi.url_scheme': 'http', 'wsgi.input': endless,
               'wsgi.input_terminated': True, 'HTTP_X_API_KEY': KEY}
    statuses = []
    body = b''.join(app(environ, lambda status, headers, exc=None:
                            statuses.append(status)))
    assert statuses == ['413 Request Entity Too Large']
    assert b'larger than 1000 bytes' in body
    assert endless.read_bytes == 1001


@pytest.mark.parametrize('depth', [MAX_BODY_DEPTH, 10_000, 1_000_000])
def test_a_body_nested_too_deep_answers_400(api, depth):
    body = b'{"url": "/x", "params": ' + b'[' * depth + b']' * depth + b'}'
    response = api.post('/tasks', body, headers=AUTH, status=400)
    assert response.json['error'] == (
        f'the body is nested too deeply: at most {MAX_BODY_DEPTH} levels of '
        f'arrays and objects')


def test_a_body_as_deep_as_the_api_takes_is_fine(api, redis_queue):
    api.post_json('/tasks', {'url': '/x', 'params': {'a': ['1', 2]},
                             'headers': {'X-A': 'b'}}, headers=AUTH,
                  status=201)


# -- the key ---------------------------------------------------------------

@pytest.mark.parametrize('key', ['', 'short', 'x' * (MIN_KEY_LENGTH - 1),
                                 ' ' * 20 + 'abc'])
def test_a_key_shorter_than_the_minimum_is_refused(key, tmp_path):
    with pytest.raises(ValueError, match=f'at least {MIN_KEY_LENGTH} '
                                         f'characters long'):
        make_app(key)
    if key.strip():
        ini = tmp_path / 'app.ini'
        ini.write_text('[taskqueue]\ntype = local\n')
        with pytest.raises(ConfigurationError, match="key 'api_key': the "
                           "management API key must be at least 16"):
            app_factory({'__file__': str(ini)}, api_key=key)
    make_app('x' * MIN_KEY_LENGTH)


def test_the_dashboard_command_refuses_a_short_key(tmp_path, redis_url,
                                                   capsys, monkeypatch):
    from wsgi_taskqueue.cli import main
    ini = tmp_path / 'app.ini'
    ini.write_text(INI.format(type='redis', url=redis_url).replace('    ', ''))
    assert main(['dashboard', str(ini), '--api-key', 'tooshort']) == 2
    assert '--api-key: the management API key must be at least 16 ' \
        'characters long, not 8' in capsys.readouterr().err
    monkeypatch.setenv('WSGI_TASKQUEUE_API_KEY', 'x' * 15)
    assert main(['dashboard', str(ini)]) == 2
    assert '$WSGI_TASKQUEUE_API_KEY: the management API key must be at ' \
        'least 16 characters long, not 15' in capsys.readouterr().err


# -- hypothesis ------------------------------------------------------------

def json_values():
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20)


def assert_documented(response, statuses) -> None:
    assert response.status_int in statuses, response.text
    assert response.content_type == 'application/json'
    if response.status_int >= 400:
        assert set(response.json) == {'error'}


@hypothesis.settings(max_examples=150, **HYPOTHESIS)
@hypothesis.given(body=st.binary(max_size=300))
def test_any_bytes_posted_as_a_task_get_a_documented_answer(api, body):
    assert_documented(api.post('/tasks', body, headers=AUTH, status='*'),
                      {201, 400})


@hypothesis.settings(max_examples=150, **HYPOTHESIS)
@hypothesis.given(fields=json_values() | st.fixed_dictionaries(
    {'url': st.text(max_size=30)},
    optional={'method': json_values(), 'params': json_values(),
              'headers': st.dictionaries(st.text(max_size=12),
                                         st.text(max_size=12), max_size=3)
              | json_values(),
              'payload': json_values(), 'payload_base64': json_values(),
              'queue': json_values()}))
def test_any_json_posted_as_a_task_gets_a_documented_answer(api, fields):
    assert_documented(api.post('/tasks', json.dumps(fields).encode(),
                               headers=AUTH, status='*'), {201, 400})


@hypothesis.settings(max_examples=60, **HYPOTHESIS)
@hypothesis.given(
    letters=st.lists(st.binary(max_size=80) | st.builds(
        lambda header, message: json.dumps(header).encode() + b'\n'
        + message, st.dictionaries(st.sampled_from(LETTER_KEYS),
                                   json_values()), st.binary(max_size=20)),
        max_size=3),
    records=st.lists(st.dictionaries(
        st.sampled_from(['id', 'state', 'updated', 'attempt', 'next',
                         'status', 'consumer', 'header', 'a1', 'a2'])
        | st.text(max_size=4) | st.binary(max_size=4),
        st.binary(max_size=20) | st.text(max_size=20)
        | st.builds(json.dumps, json_values()), min_size=1), max_size=3),
    info=st.binary(max_size=40) | st.builds(json.dumps, json_values()))
def test_any_stored_record_is_shown_never_a_500(browser, store, letters,
                                                records, info):
    store.queue.reset()
    for letter in letters:
        store.letter(letter)
    for number, fields in enumerate(records):
        store.status(f'task{number}', fields)
    store.consumer('someone', info)
    store.client.zadd(store.queue.tasks_key, {b'\xff\xfe': time.time()})
    for path in READERS:
        response = browser.get(path, status='*')
        assert response.status_int == 200, response.text
        if response.content_type == 'text/html':
            assert_inert(response.text)
    for letter in browser.get('/dead-letters').json['dead_letters']:
        response = browser.post(
            f'/dead-letters/default/{letter["id"]}/requeue', headers=AUTH,
            status='*')
        assert_documented(response, {200, 404, 409})


@hypothesis.settings(max_examples=150, **HYPOTHESIS)
@hypothesis.given(
    path=st.sampled_from(['/status', '/tasks', '/dead-letters', '/tasks/']),
    task_id=st.text(st.characters(blacklist_categories=['Cs']), min_size=1,
                    max_size=20),
    params=st.dictionaries(
        st.sampled_from(['minutes', 'state', 'queue', 'start', 'count']),
        st.text(st.characters(blacklist_categories=['Cs']), max_size=12)
        | st.integers().map(str)))
def test_any_query_gets_a_documented_answer(api, path, task_id, params):
    if path == '/tasks/':
        path += urllib.parse.quote(task_id, safe='')
    response = api.get(path, params, headers=AUTH, status='*')
    assert_documented(response, {200, 400, 404})
