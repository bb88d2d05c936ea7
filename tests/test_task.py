import dataclasses
import hmac
import json
from unittest import mock

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import given

from wsgi_taskqueue import task as task_module
from wsgi_taskqueue.errors import DecodeError
from wsgi_taskqueue.options import TaskOptions
from wsgi_taskqueue.task import Codec, Task
from wsgi_taskqueue.validation import headers_size


def make_task(**overrides):
    """A task of these fields; TaskOptions fields (``due=``) among them
    become its options."""
    fields = dict(queue='default', url='/view?a=1', method='POST',
                  environ={'HTTP_COOKIE': 'session=abc'}, payload=b'body',
                  user_id='alice', script_name='', url_scheme='http')
    options = {name: overrides.pop(name) for name in list(overrides)
               if name in TaskOptions.__dataclass_fields__}
    fields.update(overrides)
    if options:
        fields['options'] = TaskOptions(**options)
    return Task.new(**fields)


def test_a_task_survives_encoding_unchanged():
    codec = Codec()
    task = make_task()
    assert codec.decode(codec.encode(task)) == task


def test_binary_payloads_travel_raw_not_escaped():
    payload = bytes(range(256)) * 4
    message = Codec().encode(make_task(payload=payload))
    assert message.endswith(payload)
    assert len(message) < len(payload) + 400


def test_signed_tasks_decode_with_any_accepted_secret():
    old, new = Codec(['old']), Codec(['new', 'old'])
    task = make_task()
    assert new.decode(old.encode(task)) == task
    assert new.decode(new.encode(task)) == task


def test_a_task_added_is_the_task_the_dataclass_builds():
    fields = dict(queue='q', url='/a?b=c', method='POST',
                  environ={'HTTP_X': 'y'}, payload=b'body', user_id='alice',
                  script_name='/app', url_scheme='https',
                  options=TaskOptions(label='l'), job_marker=None)
    added = Task.added(**fields)
    built = Task(id=added.id, created_at=added.created_at, **fields)
    assert added == built
    assert vars(added) == vars(built)  # every field set, none extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        added.url = '/b'
    assert Codec(['s']).encode(added) == Codec(['s']).encode(built)


def test_the_signature_is_hex_hmac_sha256_of_header_and_payload():
    # The wire format consumers of other versions check: whatever way the
    # codec computes it, a message is signed with the standard HMAC.
    message = Codec(['secret']).encode(make_task())
    signature, _, body = message.partition(b'\n')
    assert signature == hmac.new(b'secret', body, 'sha256').hexdigest(
    ).encode()


def test_a_forged_signature_is_refused():
    message = Codec(['secret']).encode(make_task())
    with pytest.raises(DecodeError, match='does not match'):
        Codec(['other']).decode(message)


def test_a_tampered_body_is_refused():
    message = Codec(['secret']).encode(make_task(user_id='alice'))
    forged = message.replace(b'"alice"', b'"admin"')
    with pytest.raises(DecodeError, match='does not match'):
        Codec(['secret']).decode(forged)


def test_unsigned_tasks_are_refused_when_a_secret_is_configured():
    message = Codec().encode(make_task())
    with pytest.raises(DecodeError, match='unsigned'):
        Codec(['secret']).decode(message)


def test_signed_tasks_are_refused_when_no_secret_can_check_them():
    message = Codec(['secret']).encode(make_task())
    with pytest.raises(DecodeError, match='no secret'):
        Codec().decode(message)


@pytest.mark.parametrize('message, reason', [
    (b'no newline at all', 'no signature line'),
    (b'\nnot json\n', 'not JSON'),
    (b'\n{"v": 99}\n', 'version'),
    (b'\n[1, 2]\n', 'version'),
    (b'\n{"v": 1, "id": "x"}\n', 'lacks field'),
])
def test_undecodable_messages_say_why(message, reason):
    with pytest.raises(DecodeError, match=reason) as info:
        Codec().decode(message)
    assert info.value.message == message


def test_the_next_attempt_keeps_the_id():
    task = make_task()
    retried = task.next_attempt()
    assert (retried.id, retried.attempt) == (task.id, 2)
    assert retried.first_attempt() == task


# add() refuses lone surrogates before anything is encoded.
text = st.text(st.characters(blacklist_categories=['Cs']), max_size=12)
clean_text = st.text(st.characters(blacklist_characters='\r\n\x00',
                                   blacklist_categories=['Cs']), max_size=50)
headers = st.dictionaries(
    st.from_regex(r'HTTP_[A-Z][A-Z_]{0,19}', fullmatch=True).filter(
        lambda key: not key.startswith('HTTP_X_TASK_')), clean_text)
paths = st.from_regex(r"/[A-Za-z0-9/%?&=._~-]{0,60}", fullmatch=True).filter(
    lambda url: not url.startswith('//'))


@given(url=paths, method=st.sampled_from(['GET', 'POST', 'DELETE']),
       environ=headers, payload=st.binary(max_size=500),
       user_id=st.none() | clean_text,
       secrets=st.lists(st.text(min_size=1, max_size=10), max_size=3))
def test_any_valid_task_round_trips(url, method, environ, payload, user_id,
                                    secrets):
    codec = Codec(secrets)
    task = make_task(url=url, method=method, environ=environ,
                     payload=payload, user_id=user_id)
    assert codec.decode(codec.encode(task)) == task


@given(url=text, method=text, environ=st.dictionaries(text, text),
       user_id=st.none() | text, created_at=st.floats(1, 4e9),
       attempt=st.integers(1, 10**6))
def test_orjson_and_the_standard_library_write_the_same_messages(
        url, method, environ, user_id, created_at, attempt):
    """Processes with and without the speedups extra share queues, and
    the Lua scripts search a header's text: both must write the same."""
    task = Task(id='f' * 32, queue='q', url=url, method=method,
                environ=environ, payload=b'', user_id=user_id,
                created_at=created_at, attempt=attempt)
    codec = Codec(['secret'])
    assert task_module.encode_header is orjson.dumps
    fast = codec.encode(task)
    with mock.patch.object(task_module, 'encode_header',
                           task_module.encode_header_stdlib):
        assert codec.encode(task) == fast
    header = fast.split(b'\n')[1]
    assert orjson.loads(header) == json.loads(header)


@given(url=text, method=text, environ=st.dictionaries(text, text),
       user_id=st.none() | text,
       attempt=st.integers(-2, 3))
def test_decoding_gives_the_same_task_or_a_reason_never_a_crash(
        url, method, environ, user_id, attempt):
    codec = Codec(['secret'])
    task = make_task(url=url, method=method, environ=environ,
                     user_id=user_id, attempt=attempt)
    try:
        decoded = codec.decode(codec.encode(task))
    except DecodeError as exc:
        assert exc.reason.startswith('invalid task')
    else:
        assert decoded == task


@pytest.mark.parametrize('field, value, reason', [
    ('url', 'http://elsewhere/', 'path inside the app'),
    ('method', 'BREW', 'method must be one of'),
    ('environ', {'HTTP_X_TASK_ID': 'x'}, 'not allowed'),
    ('environ', {'REMOTE_USER': 'admin'}, 'not allowed'),
    ('environ', {'HTTP_A': 'b\r\nc'}, 'CR, LF'),
    ('user_id', 'a\nb', 'CR, LF'),
    ('attempt', 0, 'bad attempt'),
    ('url_scheme', 'ftp', 'URL scheme'),
])
def test_tasks_are_revalidated_when_decoded(field, value, reason):
    codec = Codec(['secret'])
    message = codec.encode(make_task(**{field: value}))
    with pytest.raises(DecodeError, match=reason):
        codec.decode(message)


def test_oversized_tasks_are_refused_when_decoded():
    task = make_task(payload=b'x' * 11)
    message = Codec().encode(task)
    limit = len(task.url) + headers_size(task.environ) + 10
    with pytest.raises(DecodeError, match=f'larger than the queue.s '
                                          f'max_task_size of {limit}'):
        Codec(max_task_size=limit).decode(message)


@given(st.binary(max_size=300))
def test_random_bytes_never_decode_into_a_signed_task(garbage):
    with pytest.raises(DecodeError):
        Codec(['secret']).decode(garbage)
