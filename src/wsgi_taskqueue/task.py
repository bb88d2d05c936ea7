"""The task: a request to replay later, and its wire encoding.

A message is three parts separated by the first two newlines::

    <signature, hex; empty when unsigned>\\n<header: JSON>\\n<payload bytes>

The payload travels raw after the JSON header so a binary body costs its
own size, not a JSON escape of it.  Headers are kept as WSGI environ keys
(``HTTP_COOKIE``), ready to be merged into the environ at dispatch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
import uuid

from .errors import DecodeError

__all__ = ['Task', 'Codec']

#: The version of the header layout; decoders refuse what they don't know.
FORMAT_VERSION = 1


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

    @classmethod
    def new(cls, **fields) -> 'Task':
        return cls(id=uuid.uuid4().hex, created_at=time.time(), **fields)

    @property
    def path(self) -> str:
        return self.url.partition('?')[0]

    @property
    def query_string(self) -> str:
        return self.url.partition('?')[2]

    def next_attempt(self) -> 'Task':
        return dataclasses.replace(self, attempt=self.attempt + 1)

    def first_attempt(self) -> 'Task':
        return dataclasses.replace(self, attempt=1)


class Codec:
    """Encodes tasks to messages and back, signing with the first secret.

    With ``secrets`` configured, only messages signed by one of them decode
    (the list allows rotation: sign with the new one, still accept the
    old).  Without secrets, messages travel unsigned and signed ones are
    refused too: a consumer cannot vouch for what it cannot check.
    """

    def __init__(self, secrets=()):
        self.keys = [s.encode() if isinstance(s, str) else bytes(s)
                     for s in secrets]

    def encode(self, task: Task) -> bytes:
        header = json.dumps({
            'v': FORMAT_VERSION, 'id': task.id, 'q': task.queue,
            'u': task.url, 'm': task.method, 'e': task.environ,
            'uid': task.user_id, 't': task.created_at, 'a': task.attempt,
            'sn': task.script_name, 's': task.url_scheme,
        }, separators=(',', ':'), ensure_ascii=False).encode()
        body = header + b'\n' + task.payload
        return self._sign(body) + b'\n' + body

    def decode(self, message: bytes) -> Task:
        signature, newline, body = message.partition(b'\n')
        if not newline:
            raise DecodeError('not a task message (no signature line)',
                              message)
        self._verify(signature, body, message)
        header, newline, payload = body.partition(b'\n')
        try:
            fields = json.loads(header)
        except ValueError as exc:
            raise DecodeError(f'task header is not JSON: {exc}', message)
        if not isinstance(fields, dict) or fields.get('v') != FORMAT_VERSION:
            raise DecodeError('unknown task format version', message)
        try:
            task = Task(
                id=fields['id'], queue=fields['q'], url=fields['u'],
                method=fields['m'], environ=fields['e'], payload=payload,
                user_id=fields['uid'], created_at=fields['t'],
                attempt=fields['a'], script_name=fields['sn'],
                url_scheme=fields['s'])
        except KeyError as exc:
            raise DecodeError(f'task header lacks field {exc}', message)
        return task

    def _sign(self, body: bytes) -> bytes:
        if not self.keys:
            return b''
        return hmac.new(self.keys[0], body, hashlib.sha256).hexdigest().encode()

    def _verify(self, signature: bytes, body: bytes, message: bytes) -> None:
        if not self.keys:
            if signature:
                raise DecodeError('signed task, but no secret is configured '
                                  'to check it', message)
            return
        if not signature:
            raise DecodeError('unsigned task refused', message)
        for key in self.keys:
            expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
            if hmac.compare_digest(expected, signature):
                return
        raise DecodeError('task signature does not match any secret', message)
