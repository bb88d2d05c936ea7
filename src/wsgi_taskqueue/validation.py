"""The rules a task must follow, checked twice with the same code: by
``taskqueue.add`` (bad input raises InvalidTask) and again when a message
is decoded for dispatch (a message that breaks them is not run)."""
from __future__ import annotations

import re

from .errors import InvalidTask

METHODS = frozenset(
    ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_ENVIRON_KEY = re.compile(r'^(HTTP_[A-Z0-9_]+|CONTENT_TYPE)$')
_FORBIDDEN_IN_VALUE = re.compile(r'[\r\n\x00]')
_FORBIDDEN_IN_URL = re.compile(r'[\x00-\x20\x7f#]')
#: Headers only the dispatcher may set.
TASK_HEADER_PREFIX = 'HTTP_X_TASK_'


def _is_text(value: str) -> bool:
    """False for strings that cannot travel as UTF-8 (lone surrogates)."""
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


def check_url(url) -> str:
    if not isinstance(url, str) or not url or not _is_text(url):
        raise InvalidTask(f'url must be a non-empty string, not {url!r}')
    if not url.startswith('/') or url.startswith('//'):
        raise InvalidTask(
            f'url must be a path inside the app starting with "/" '
            f'(no scheme or host), not {url!r}')
    if _FORBIDDEN_IN_URL.search(url):
        raise InvalidTask(
            f'url must not contain spaces, control characters or a '
            f'fragment: {url!r}')
    return url


def check_method(method) -> str:
    name = method.upper() if isinstance(method, str) else method
    if name not in METHODS:
        raise InvalidTask(
            f'method must be one of {", ".join(sorted(METHODS))}, '
            f'not {method!r}')
    return name


def check_header_value(name: str, value) -> str:
    if not isinstance(value, str):
        raise InvalidTask(
            f'header {name!r}: value must be a string, not '
            f'{type(value).__name__}')
    if _FORBIDDEN_IN_VALUE.search(value) or not _is_text(value):
        raise InvalidTask(
            f'header {name!r}: value must not contain CR, LF, NUL or '
            f'lone surrogates')
    return value


def environ_key(name) -> str:
    """The WSGI environ key of header ``name``, refusing the ones only the
    dispatcher computes."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise InvalidTask(f'invalid header name {name!r}')
    key = name.upper().replace('-', '_')
    if key.startswith('X_TASK_'):
        raise InvalidTask(
            f'header {name!r}: X-Task-* headers are set by the dispatcher')
    if key == 'CONTENT_LENGTH':
        raise InvalidTask(
            'header Content-Length: it is computed from the payload')
    return key if key == 'CONTENT_TYPE' else 'HTTP_' + key


def check_environ(environ) -> dict:
    """A decoded task's headers: only header keys, only clean values."""
    if not isinstance(environ, dict):
        raise InvalidTask('headers must be a mapping')
    for key, value in environ.items():
        if (not isinstance(key, str) or not _ENVIRON_KEY.match(key)
                or key.startswith(TASK_HEADER_PREFIX)
                or key == 'HTTP_CONTENT_LENGTH'):
            raise InvalidTask(f'header key {key!r} is not allowed')
        check_header_value(key, value)
    return environ
