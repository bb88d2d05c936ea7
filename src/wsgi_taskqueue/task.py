"""The task: a request to replay later, and its wire encoding.

A message is three parts separated by the first two newlines::

    <signature, hex; empty when unsigned>\\n<header: JSON>\\n<payload bytes>

The payload travels raw after the JSON header so a binary body costs its
own size, not a JSON escape of it.  Headers are kept as WSGI environ keys
(``HTTP_COOKIE``), ready to be merged into the environ at dispatch.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import os
import re
import time

from .errors import DecodeError, InvalidTask
from .options import (
    NO_OPTIONS,
    TaskOptions,
    check_stored,
    header_fields,
    stored_options,
)
from .signing import Signer
from .validation import (
    check_environ,
    check_header_value,
    check_job_marker,
    check_method,
    check_parent,
    check_size,
    check_url,
)

__all__ = ['Task', 'Codec', 'CREDENTIAL_HEADERS']

#: The version of the header layout; decoders refuse what they don't know.
FORMAT_VERSION = 1

#: One encoder for every header: ``json.dumps`` with options builds a new
#: one per call, which costs more than the encoding.
_encoder = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False)


def encode_header_stdlib(fields: dict) -> bytes:
    """A header as compact UTF-8 JSON, in the order of ``fields``: the
    layout the Lua scripts search (``scripts.py``)."""
    return _encoder.encode(fields).encode()


try:
    # The speedups extra: the same bytes for a header, ten times faster,
    # and four times faster to read.
    from orjson import dumps as encode_header
    from orjson import loads as decode_header
except ImportError:
    encode_header, decode_header = encode_header_stdlib, json.loads


#: The headers that log a user in: ``credentials = user-id`` keeps them out
#: of the queue, and dead letters drop them unless told to keep them.
CREDENTIAL_HEADERS = frozenset(['HTTP_COOKIE', 'HTTP_AUTHORIZATION'])


#: What ``new_id`` makes, and all a status record's key may be built from.
TASK_ID = re.compile(r'[0-9a-f]{1,64}')


def new_id() -> str:
    """A random id of 32 hex digits, for tasks and batches: the operating
    system's randomness, which ``secrets.token_hex`` reads through three
    Python calls more (``add`` makes two ids per transaction)."""
    return os.urandom(16).hex()


@dataclasses.dataclass(frozen=True)
class Task:
    """A request to replay, as seen by the app in
    ``environ['wsgi_taskqueue.task']``."""

    #: Stays the same across retries and redeliveries.
    id: str
    queue: str
    #: Path inside the app, with its query string.
    url: str
    method: str
    #: WSGI environ keys and values (``HTTP_*``, ``CONTENT_TYPE``, ...).
    environ: dict
    payload: bytes
    #: ``REMOTE_USER`` of the enqueuing request, if one was set.
    user_id: str | None
    created_at: float
    #: 1 on the first delivery, 2 on the first retry, ...
    attempt: int = 1
    #: ``SCRIPT_NAME`` and URL scheme of the enqueuing request, so URLs
    #: the task generates point where the original request's would.
    script_name: str = ''
    url_scheme: str = 'http'
    #: What it was added with beyond the request (``options.py``).
    options: TaskOptions = NO_OPTIONS
    #: For a completion callback: the task it reports on, as
    #: ``{'id': ..., 'outcome': 'done' | 'dead', 'status': line}``
    #: (``completion.py``); None for any other task.
    parent: dict | None = None
    #: For a job marker (``jobs.py``): ``{'op': 'open', 'label': ...,
    #: 'cb': bool}`` or ``{'op': 'close'}``, carried through the staging
    #: path like a task and taken in by the backend at promotion; None for
    #: any other task.
    job_marker: dict | None = None

    @classmethod
    def new(cls, **fields) -> Task:
        return cls(id=new_id(), created_at=time.time(), **fields)

    @classmethod
    def added(cls, queue: str, url: str, method: str, environ: dict,
              payload: bytes, user_id: str | None, script_name: str,
              url_scheme: str, options: TaskOptions,
              job_marker: dict | None) -> Task:
        """``new`` for ``taskqueue.add``, which has checked every field:
        the same task, built without the generated ``__init__``, whose
        assignment of each frozen field through ``object.__setattr__``
        costs more than encoding the task.  Every field is named here, so
        none can be missing or unknown."""
        task = object.__new__(cls)
        task.__dict__.update(
            id=new_id(), queue=queue, url=url, method=method,
            environ=environ, payload=payload, user_id=user_id,
            created_at=time.time(), attempt=1, script_name=script_name,
            url_scheme=url_scheme, options=options, parent=None,
            job_marker=job_marker)
        return task

    @property
    def path(self) -> str:
        return self.url.partition('?')[0]

    @property
    def query_string(self) -> str:
        return self.url.partition('?')[2]

    def next_attempt(self) -> Task:
        return dataclasses.replace(self, attempt=self.attempt + 1)

    def first_attempt(self) -> Task:
        return dataclasses.replace(self, attempt=1)

    def without_credentials(self) -> Task:
        return dataclasses.replace(self, environ={
            key: value for key, value in self.environ.items()
            if key not in CREDENTIAL_HEADERS})


class Codec:
    """Encodes tasks to messages and back, signing with the first secret.

    With ``secrets`` configured, only messages signed by one of them decode
    (the list allows rotation: sign with the new one, still accept the
    old).  Without secrets, messages travel unsigned and signed ones are
    refused too: a consumer cannot vouch for what it cannot check.
    """

    def __init__(self, secrets=(), max_task_size: int | None = None):
        self.keys = [s.encode() if isinstance(s, str) else bytes(s)
                     for s in secrets]
        self.max_task_size = max_task_size
        self._signers = [Signer(key) for key in self.keys]

    def encode(self, task: Task) -> bytes:
        fields = {
            'v': FORMAT_VERSION, 'id': task.id, 'q': task.queue,
            'u': task.url, 'm': task.method, 'e': task.environ,
            'uid': task.user_id, 't': task.created_at, 'a': task.attempt,
            'sn': task.script_name, 's': task.url_scheme,
        }
        if task.options is not NO_OPTIONS:
            # After the fields every task has, and only when set: a task
            # without options pays nothing for them, and the Lua scripts
            # find them by their keys (``due_of``).
            fields.update(header_fields(task.options))
        if task.parent is not None:
            fields['pa'] = task.parent
        if task.job_marker is not None:
            fields['jm'] = task.job_marker
        header = encode_header(fields)
        body = header + b'\n' + task.payload
        return self._sign(body) + b'\n' + body

    def decode(self, message: bytes) -> Task:
        """The task of a message whose signature and fields check out."""
        signature, newline, body = message.partition(b'\n')
        if not newline:
            raise DecodeError('not a task message (no signature line)',
                              message)
        self._verify(signature, body, message)
        task = _parse(body, message)
        try:
            _check_decoded(task, self.max_task_size)
        except InvalidTask as exc:
            raise DecodeError(f'invalid task: {exc}', message) from None
        return task

    def decode_unverified(self, message: bytes) -> Task:
        """The task a message claims to be, for reports about messages
        that will not run (dead letters); never for dispatching."""
        signature, newline, body = message.partition(b'\n')
        if not newline:
            raise DecodeError('not a task message (no signature line)',
                              message)
        return _parse(body, message)

    def without_credentials(self, message: bytes, task: Task | None
                            ) -> bytes:
        """``message`` without its Cookie and Authorization headers, for a
        dead letter.  ``task`` is what it decoded to: that one is signed
        anew, so it can be requeued; a message that did not decode (and
        could not run anyway) loses its signature with them."""
        if task is not None:
            if CREDENTIAL_HEADERS.isdisjoint(task.environ):
                return message
            return self.encode(task.without_credentials())
        signature, _, body = message.partition(b'\n')
        header, newline, payload = body.partition(b'\n')
        try:
            fields = decode_header(header)
        except (ValueError, RecursionError):
            return message
        environ = fields.get('e') if isinstance(fields, dict) else None
        if not isinstance(environ, dict) or CREDENTIAL_HEADERS.isdisjoint(
                environ):
            return message
        fields['e'] = {key: value for key, value in environ.items()
                       if key not in CREDENTIAL_HEADERS}
        return b'\n' + encode_header_stdlib(fields) + newline + payload

    def _sign(self, body: bytes) -> bytes:
        if not self._signers:
            return b''
        return self._signers[0].sign(body)

    def _verify(self, signature: bytes, body: bytes, message: bytes) -> None:
        if not self.keys:
            if signature:
                raise DecodeError('signed task, but no secret is configured '
                                  'to check it', message)
            return
        if not signature:
            raise DecodeError('unsigned task refused', message)
        for signer in self._signers:
            if hmac.compare_digest(signer.sign(body), signature):
                return
        raise DecodeError('task signature does not match any secret', message)


#: How many fields the header of a task without options has.
_PLAIN_FIELDS = 11


def _parse(body: bytes, message: bytes) -> Task:
    header, _, payload = body.partition(b'\n')
    try:
        fields = decode_header(header)
    except (ValueError, RecursionError) as exc:
        # orjson refuses deep nesting with a ValueError, the standard
        # library overflows the stack.
        raise DecodeError(f'task header is not JSON: {exc}', message) from None
    if not isinstance(fields, dict) or fields.get('v') != FORMAT_VERSION:
        raise DecodeError('unknown task format version', message)
    try:
        return Task(
            id=fields['id'], queue=fields['q'], url=fields['u'],
            method=fields['m'], environ=fields['e'], payload=payload,
            user_id=fields['uid'], created_at=fields['t'],
            attempt=fields['a'], script_name=fields['sn'],
            url_scheme=fields['s'],
            options=stored_options(fields) if len(fields) > _PLAIN_FIELDS
            else NO_OPTIONS, parent=fields.get('pa'),
            job_marker=fields.get('jm'))
    except KeyError as exc:
        raise DecodeError(f'task header lacks field {exc}', message) from None


def _check_decoded(task: Task, max_task_size: int | None) -> None:
    """Re-validate what came out of the queue: a signature proves who
    wrote a message, not that its writer was careful."""
    if not isinstance(task.id, str) or not task.id.isalnum():
        raise InvalidTask(f'bad task id {task.id!r}')
    if not isinstance(task.queue, str):
        raise InvalidTask('bad queue name')
    check_url(task.url)
    check_method(task.method)
    check_environ(task.environ)
    if task.user_id is not None:
        check_header_value('REMOTE_USER', task.user_id)
    if not isinstance(task.created_at, (int, float)):
        raise InvalidTask('bad creation time')
    if type(task.attempt) is not int or task.attempt < 1:
        raise InvalidTask(f'bad attempt {task.attempt!r}')
    check_stored(task.options)
    if task.parent is not None:
        check_parent(task.parent)
    if task.job_marker is not None:
        check_job_marker(task.job_marker)
        if task.options.job is None:
            raise InvalidTask('a job marker without its job')
    if not isinstance(task.script_name, str) or task.url_scheme not in (
            'http', 'https'):
        raise InvalidTask('bad script name or URL scheme')
    if max_task_size is not None:
        check_size(task.url, task.environ, task.payload, max_task_size)


def identity_of(message: bytes) -> tuple[str | None, int]:
    """The task id and attempt a message claims, for the status record of
    one that will not run; (None, 0) where it claims none that could be."""
    try:
        signature, newline, body = message.partition(b'\n')
        fields = decode_header(body.partition(b'\n')[0]) if newline else None
    except (ValueError, RecursionError):
        return None, 0
    if not isinstance(fields, dict):
        return None, 0
    task_id, attempt = fields.get('id'), fields.get('a')
    if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
        return None, 0
    return task_id, attempt if type(attempt) is int and attempt > 0 else 0
