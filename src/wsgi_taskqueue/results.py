"""A task's result: what the app answered, kept for ``taskqueue.result``.

A task keeps one when it asks (``add(..., keep_result=True)``) or its
queue does (``keep_result = true``): the status line, the Content-Type and
Location headers, and the body up to the queue's ``result_max_size``
bytes.  The consumer encodes it once (``encode``) and hands the text to
the backend with the acknowledgement or burial of the task, which keeps it
``result_ttl`` seconds beside the status record; the backend never reads
it.  ``decode`` turns the stored text back into what ``result`` returns,
``as_json`` into what the management API shows.
"""
from __future__ import annotations

import base64
import json

__all__ = ['KEPT_HEADERS', 'DEFAULT_RESULT_TTL', 'DEFAULT_RESULT_MAX_SIZE',
           'encode', 'decode', 'as_json']

#: The response headers a result keeps.
KEPT_HEADERS = ('Content-Type', 'Location')
#: A day, as the status log.
DEFAULT_RESULT_TTL = 86400
#: Enough for a report or a JSON answer; a result is not a file store.
DEFAULT_RESULT_MAX_SIZE = 64 * 1024


def encode(outcome: str, status: str | None, headers: list, body: bytes,
           size: int) -> str:
    """The stored text of a result: ``body`` is what was kept of a body of
    ``size`` bytes."""
    kept = {}
    for name in KEPT_HEADERS:
        for key, value in headers:
            if key.lower() == name.lower():
                kept[name] = value
                break
    try:
        text, encoding = body.decode('utf-8'), 'utf-8'
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode('ascii'), 'base64'
    return json.dumps({'outcome': outcome, 'status': status or 'exception',
                       'headers': kept, 'body': text, 'encoding': encoding,
                       'size': size, 'truncated': size > len(body)},
                      ensure_ascii=False)


def as_json(stored: str) -> dict | None:
    """A stored result as JSON-able data (body as text, or base64 with
    ``encoding`` saying so); None for text that is not a result."""
    try:
        found = json.loads(stored)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get('body'), str):
        return None
    return found


def decode(stored: str) -> dict | None:
    """A stored result with its body as bytes."""
    found = as_json(stored)
    if found is None:
        return None
    body = found.pop('body')
    try:
        found['body'] = (base64.b64decode(body)
                         if found.pop('encoding', None) == 'base64'
                         else body.encode('utf-8'))
    except ValueError:
        return None
    return found
