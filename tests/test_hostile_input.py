"""What a hostile client or a stray writer to the queue can send, and what
becomes of it: on every backend, in ``add`` and in the codec.  The same
attacks against real processes are in faults/test_hostile.py."""
import io
import json

import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

import wsgi_taskqueue
from wsgi_taskqueue import context, taskqueue
from wsgi_taskqueue import task as task_module
from wsgi_taskqueue.deadletter import DeadLetter
from wsgi_taskqueue.errors import DecodeError, InvalidTask
from wsgi_taskqueue.status import Report
from wsgi_taskqueue.task import Codec, Task

from dummies import RecordingApp
from test_backends import promoted, task_message


def done(queue, slot, message, task):
    queue.ack(slot, [(message, Report(task.id, task.attempt, '200 OK', 0))])


# -- replays and bounds, on every backend ----------------------------------


def test_an_attempt_that_finished_is_buried_if_it_comes_again(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    assert queue.reserve('w', 1, 0) == [message]
    done(queue, 'w', message, task)
    promoted(queue, message, batch='again')  # a replay of the same bytes
    assert queue.reserve('w', 1, 0) == []
    [letter] = [DeadLetter.decode(r) for r in queue.dead_letters()]
    assert 'replayed' in letter.error and letter.task_id == task.id
    # The burial of the replay left the record of the run that happened
    # alone (the replay's promotion said "queued" in it, but on Redis,
    # where a promotion writes no record for a task that simply waits).
    record = queue.task_status(task.id)
    assert record['state'] == (
        'done' if isinstance(queue, wsgi_taskqueue.RedisQueue) else 'queued')
    assert [(a['attempt'], a['status']) for a in record['attempts']] == [
        (1, '200 OK')]


def test_an_attempt_that_never_finished_is_delivered_again(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('w', 1, 0)
    assert queue.requeue_processing('w') == (1, 0)  # its consumer died
    assert queue.reserve('w', 1, 0) == [message]


def test_a_requeued_dead_letter_runs_again(queue):
    task, message = task_message(queue)
    promoted(queue, message)
    queue.reserve('w', 1, 0)
    queue.bury('w', message, queue.dead_letter(message, task, '404 x', '', 1),
               Report(task.id, 1, '404 x', 0))
    [record] = queue.dead_letters()
    assert queue.requeue_dead(record, message)
    assert queue.reserve('w', 1, 0) == [message]


def test_dead_letters_beyond_dead_max_are_dropped_oldest_first(queue):
    queue.dead_max = 3
    messages = [task_message(queue)[1] for _ in range(5)]
    promoted(queue, *messages)
    for message in queue.reserve('w', 5, 0):
        queue.bury('w', message, b'{"t":1}\n' + message)
    assert queue.dead_letters() == [
        b'{"t":1}\n' + m for m in reversed(messages[2:])]


def test_dead_letters_older_than_dead_ttl_are_forgotten_by_the_sweep(queue):
    queue.dead_ttl = 3600
    messages = [task_message(queue) for _ in range(3)]
    promoted(queue, *(message for _, message in messages))
    old, new, garbage = queue.reserve('w', 3, 0)
    queue.bury('w', old, DeadLetter.of(queue.name, old, None, None, 'x', 1)
               .encode().replace(b'"t":', b'"t":1,"x":', 1))
    queue.bury('w', garbage, b'not a record')
    queue.bury('w', new, DeadLetter.of(queue.name, new, None, None, 'x', 1)
               .encode())
    queue.sweep(grace=60)
    [kept] = queue.dead_letters()
    assert DeadLetter.decode(kept).message == new


def test_copy_mode_dead_letters_keep_no_credentials_unless_told(queue):
    task, message = task_message(
        queue, environ={'HTTP_COOKIE': 'a=1', 'HTTP_AUTHORIZATION': 'Basic x',
                        'HTTP_ACCEPT': 'text/html'})
    kept = DeadLetter.decode(queue.dead_letter(message, task, None, 'e', 1))
    assert queue.codec.decode(kept.message).environ == {
        'HTTP_ACCEPT': 'text/html'}
    assert queue.codec.decode(kept.message).id == task.id
    queue.dead_credentials = True
    assert DeadLetter.decode(queue.dead_letter(
        message, task, None, 'e', 1)).message == message
    # A message that did not decode loses them too, and its signature.
    queue.dead_credentials = False
    forged = b'f00d' + message[message.index(b'\n'):]
    kept = DeadLetter.decode(queue.dead_letter(forged, None, None, 'e', 0))
    assert b'HTTP_COOKIE' not in kept.message and kept.message[:1] == b'\n'


# -- a reserve that fails on a message ---------------------------------------


class ChokingQueue(wsgi_taskqueue.LocalQueue):
    """A queue whose reserve fails after taking the poison message, as a
    script error once did: the failure mode, not the cause."""

    def reserve(self, slot, limit, timeout, done=(), recover=False):
        taken = super().reserve(slot, limit, timeout, done, recover)
        if b'poison' in b''.join(taken):
            raise RuntimeError('reserve choked')
        return taken


def test_a_message_reserve_keeps_failing_on_is_dead_lettered(consume):
    queue = ChokingQueue()
    wsgi_taskqueue.register_queue('default', queue)
    app = RecordingApp()
    poison = b'\n{"v":1,"id":"abc","u":"/poison"}\n'
    promoted(queue, poison, batch='p')
    with transaction.manager:
        taskqueue.add('/after', payload=None)
    consume(app, max_deliveries=3, poll_interval=0.05)
    app.wait_for(1)
    assert app.environs[0]['PATH_INFO'] == '/after'
    [letter] = [DeadLetter.decode(r) for r in queue.dead_letters()]
    assert 'delivered 3 times' in letter.error


# -- add -------------------------------------------------------------------


@pytest.fixture
def bound():
    """Bind a request environ, as the filter does, for ``add``."""
    tokens = []

    def bind(environ):
        environ.setdefault('REQUEST_METHOD', 'POST')
        environ.setdefault('wsgi.input', io.BytesIO())
        tokens.append(context.bind(environ)[1])
        return environ
    yield bind
    for token in reversed(tokens):
        context.unbind(token)


class Untouchable(io.RawIOBase):
    """A request body that must not be read."""

    def read(self, size=-1):
        raise AssertionError('the body was read')

    readinto = read


def test_a_declared_body_too_large_is_refused_before_it_is_read(bound):
    wsgi_taskqueue.register_queue(
        'default', wsgi_taskqueue.LocalQueue(max_task_size=1000))
    bound({'CONTENT_LENGTH': '300000000', 'wsgi.input': Untouchable()})
    with pytest.raises(InvalidTask, match='300000000 bytes does not fit'):
        taskqueue.add('/a')


def test_a_body_of_unknown_length_is_read_no_further_than_fits(bound):
    wsgi_taskqueue.register_queue(
        'default', wsgi_taskqueue.LocalQueue(max_task_size=1000))
    body = io.BytesIO(b'x' * 100_000)
    bound({'wsgi.input': body, 'wsgi.input_terminated': True})
    with pytest.raises(InvalidTask, match='max_task_size of 1000'):
        taskqueue.add('/a')
    assert body.tell() <= 1000
    small = bound({'wsgi.input': io.BytesIO(b'yz'),
                   'wsgi.input_terminated': True})
    with transaction.manager:
        taskqueue.add('/a')
    # What was read is still there for the app.
    assert small['wsgi.input'].read() == b'yz'


def test_headers_that_would_not_decode_are_skipped_not_copied(bound,
                                                              local_queue):
    bound({'HTTP_X.TRACE': '1', 'HTTP_X_OK': 'yes', 'HTTP_X_NL': 'a\nb',
           'HTTP_X_BAD\n': 'c'})
    with transaction.manager:
        taskqueue.add('/a')
    [message] = local_queue.reserve('w', 1, 0)
    assert local_queue.codec.decode(message).environ == {'HTTP_X_OK': 'yes'}


def test_header_values_that_are_numbers_travel_as_text(local_queue):
    with transaction.manager:
        taskqueue.add('/a', headers={'X-Count': 42, 'X-Flag': True,
                                     'X-Ratio': 0.5})
    [message] = local_queue.reserve('w', 1, 0)
    assert local_queue.codec.decode(message).environ == {
        'HTTP_X_COUNT': '42', 'HTTP_X_FLAG': 'True', 'HTTP_X_RATIO': '0.5'}


def test_user_id_mode_copies_an_allow_list_and_http_host_pins_the_host(
        bound):
    queue = wsgi_taskqueue.LocalQueue(
        credentials='user-id', copy_headers=['X-Tenant'],
        http_host='tasks.example')
    wsgi_taskqueue.register_queue('default', queue)
    bound({'HTTP_COOKIE': 'a=1', 'HTTP_X_API_KEY': 'k', 'HTTP_HOST': 'x',
           'HTTP_X_TENANT': 't', 'HTTP_ACCEPT_LANGUAGE': 'nl',
           'REMOTE_USER': 'alice'})
    with transaction.manager:
        taskqueue.add('/a', headers={'X-Explicit': 'travels'})
    [message] = queue.reserve('w', 1, 0)
    task = queue.codec.decode(message)
    assert task.environ == {'HTTP_HOST': 'tasks.example', 'HTTP_X_TENANT': 't',
                            'HTTP_ACCEPT_LANGUAGE': 'nl',
                            'HTTP_X_EXPLICIT': 'travels'}
    assert task.user_id == 'alice'


HEADER_NAMES = st.text(alphabet=st.characters(min_codepoint=0x20,
                                              max_codepoint=0x7e),
                       min_size=1, max_size=12)
HEADER_VALUES = st.one_of(st.text(max_size=20), st.integers(),
                          st.booleans(), st.none(), st.binary(max_size=5))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
          max_examples=200)
@given(headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
       environ=st.dictionaries(
           st.text(max_size=12).map(lambda key: 'HTTP_' + key),
           st.text(max_size=12), max_size=4))
def test_whatever_add_accepts_decodes(local_queue, headers, environ):
    """Arbitrary explicit headers, and arbitrary headers on the request
    being served: ``add`` raises InvalidTask or queues a task that will
    decode at dispatch, never one that would be refused there."""
    token = context.bind(dict(environ, REQUEST_METHOD='GET',
                              **{'wsgi.input': io.BytesIO()}))[1]
    try:
        try:
            task_id = taskqueue.add('/a', headers=headers)
        except InvalidTask:
            return
        transaction.commit()
    finally:
        context.unbind(token)
        transaction.abort()
    [message] = local_queue.reserve('w', 1, 0)
    assert local_queue.codec.decode(message).id == task_id
    local_queue.ack('w', [(message, Report(task_id, 1, '200 OK', 0))])


# -- the codec ---------------------------------------------------------------


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10)
FIELDS = st.fixed_dictionaries(
    {'v': st.just(1), 'id': st.text(max_size=8)},
    optional=dict.fromkeys(
        ('q', 'u', 'm', 'e', 'uid', 't', 'a', 'sn', 's'), JSON))


@pytest.fixture(params=['orjson', 'json'])
def decoder(request, monkeypatch):
    """Both header decoders: orjson (the speedups extra) and the standard
    library's."""
    if request.param == 'json':
        monkeypatch.setattr(task_module, 'decode_header', json.loads)
    return request.param


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.one_of(FIELDS, JSON), payload=st.binary(max_size=10))
def test_signed_messages_of_any_shape_decode_or_raise_decode_error(
        decoder, fields, payload):
    codec = Codec(['s3cret'])
    body = json.dumps(fields).encode() + b'\n' + payload
    message = codec._sign(body) + b'\n' + body
    try:
        task = codec.decode(message)
    except DecodeError:
        return
    assert isinstance(task, Task)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=st.binary(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(decoder, message):
    for codec in (Codec(), Codec(['s3cret'])):
        try:
            codec.decode(message)
        except DecodeError:
            pass


def test_a_deeply_nested_header_is_a_decode_error(decoder):
    codec = Codec()
    for header in (b'[' * 100_000, b'{"v":1,"e":' * 5000):
        with pytest.raises(DecodeError, match='not JSON'):
            codec.decode(b'\n' + header + b'\n')


def test_a_task_signed_for_a_queue_says_so(local_queue, consume):
    """The queue is inside what is signed: the consumer compares it."""
    app = RecordingApp()
    task = Task.new(queue='elsewhere', url='/a', method='GET', environ={},
                    payload=b'', user_id=None)
    promoted(local_queue, local_queue.codec.encode(task))
    with transaction.manager:
        taskqueue.add('/b', payload=None)
    consume(app)
    app.wait_for(1)
    assert app.environs[0]['PATH_INFO'] == '/b'
    [letter] = [DeadLetter.decode(r) for r in local_queue.dead_letters()]
    assert "addressed to queue 'elsewhere'" in letter.error
    assert local_queue.task_status(task.id)['state'] == 'dead'

