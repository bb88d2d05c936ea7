"""The rules a task must follow, checked twice with the same code: by
``taskqueue.add`` (bad input raises InvalidTask) and again when a message
is decoded for dispatch (a message that breaks them is not run).

Every pattern matches a whole string (``fullmatch``): ``$`` would accept a
trailing newline, which is exactly what must not reach a header.
"""
from __future__ import annotations

import re
import time
import urllib.parse

from .errors import InvalidTask, TaskTooLarge

METHODS = frozenset(
    ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

#: Header names that become environ keys the decoder accepts: HTTP allows
#: more characters (``X.Trace``), but such a header would be refused at
#: dispatch, and the task with it.
_HEADER_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]*')
#: What a decoded task may carry: the keys WSGI servers make of header
#: names built from letters, digits and dashes.
_ENVIRON_KEY = re.compile(r'HTTP_[A-Z0-9_]+|CONTENT_TYPE')
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
        raise InvalidTask(
            f'url must be a non-empty string, not {shortened(repr(url))}')
    if not url.startswith('/') or url.startswith('//'):
        raise InvalidTask(
            f'url must be a path inside the app starting with "/" '
            f'(no scheme or host), not {shortened(repr(url))}')
    if _FORBIDDEN_IN_URL.search(url):
        raise InvalidTask(
            f'url must not contain spaces, control characters or a '
            f'fragment: {shortened(repr(url))}')
    # What the app will see as PATH_INFO: percent-encoding must not smuggle
    # in a line break or a second leading slash (a host, to some routers).
    path = urllib.parse.unquote(url.partition('?')[0], errors='replace')
    if path.startswith('//') or _FORBIDDEN_IN_VALUE.search(path):
        raise InvalidTask(
            f'url must not encode CR, LF, NUL or a leading "//" in its '
            f'path: {shortened(repr(url))}')
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


def header_value(name: str, value) -> str:
    """An explicit header's value as it travels: numbers and booleans as
    their ``str()`` (as collective.taskqueue sent them), text as it is."""
    if isinstance(value, (bool, int, float)):
        value = str(value)
    return check_header_value(name, value)


def copyable_header(key: str, value) -> bool:
    """Whether a request's environ entry will decode at dispatch, so that
    ``add`` may copy it: a header name the decoder accepts, a clean text
    value."""
    return (isinstance(value, str) and _ENVIRON_KEY.fullmatch(key) is not None
            and not _FORBIDDEN_IN_VALUE.search(value) and _is_text(value))


def environ_key(name) -> str:
    """The WSGI environ key of header ``name``, refusing the ones only the
    dispatcher computes."""
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise InvalidTask(
            f'invalid header name {shortened(repr(name))}: letters, digits, '
            f'"-" and "_" only (the names WSGI servers pass on)')
    key = name.upper().replace('-', '_')
    if key.startswith('X_TASK_'):
        raise InvalidTask(
            f'header {name!r}: X-Task-* headers are set by the dispatcher')
    if key == 'CONTENT_LENGTH':
        raise InvalidTask(
            'header Content-Length: it is computed from the payload')
    return key if key == 'CONTENT_TYPE' else 'HTTP_' + key


def headers_size(environ: dict) -> int:
    """What a task's headers count toward its size: names and values."""
    return sum(len(key) + len(value.encode()) for key, value in
               environ.items())


def check_size(url: str, environ: dict, payload: bytes, limit: int) -> None:
    """One limit for everything a client controls: URL, headers, body."""
    size = len(url.encode()) + headers_size(environ) + len(payload)
    if size > limit:
        raise TaskTooLarge(size, limit)


def check_environ(environ) -> dict:
    """A decoded task's headers: only header keys, only clean values."""
    if not isinstance(environ, dict):
        raise InvalidTask('headers must be a mapping')
    for key, value in environ.items():
        if (not isinstance(key, str) or not _ENVIRON_KEY.fullmatch(key)
                or key.startswith(TASK_HEADER_PREFIX)
                or key == 'HTTP_CONTENT_LENGTH'):
            raise InvalidTask(f'header key {key!r} is not allowed')
        check_header_value(key, value)
    return environ


def refused(task, queue: str, max_age: float | None) -> str | None:
    """Why a genuine task must not run in ``queue``, if it must not: it was
    signed for another queue (a message copied from one queue to another),
    or it is older than the queue's ``max_age``."""
    if task.queue != queue:
        return f'addressed to queue {task.queue!r}, found in queue {queue!r}'
    if max_age and time.time() - task.created_at > max_age:
        return (f'older than the queue\'s max_age of {max_age:g} seconds: '
                f'not run')
    return None


def shortened(text: str, limit: int = 200) -> str:
    """``text`` cut for a message or a log line: a hostile URL may be
    megabytes."""
    return text if len(text) <= limit else text[:limit] + '...'


#: A task's label: a short name made of letters, digits and ``_.:@/+-``.
LABEL = re.compile(r'[A-Za-z0-9_.:@/+\-]{1,100}\Z')


def check_label(label) -> str:
    """``label`` if it is a valid task label, else InvalidTask."""
    return _checked_word(label, 'label', LABEL, 100)


#: A task's name: letters, digits and ``_.:@/+-``, as a label, and long
#: enough for names built from ids (``invoice-42-reminder``); short
#: enough to be an indexed column on every SQL database.
NAME = re.compile(r'[A-Za-z0-9_.:@/+\-]{1,200}\Z')


def check_name(name) -> str:
    """``name`` if it is a valid task name, else InvalidTask."""
    return _checked_word(name, 'name', NAME, 200)


def _checked_word(value, what: str, pattern: re.Pattern, longest: int) -> str:
    """``value`` if ``pattern`` (1 to ``longest`` of ``_.:@/+-``, letters
    and digits) matches it whole, else InvalidTask naming ``what``."""
    if type(value) is not str or not pattern.match(value):
        raise InvalidTask(
            f'{what} must be 1 to {longest} letters, digits or _.:@/+-, '
            f'not {value!r}'[:200])
    return value


#: Priorities run from LOWEST_PRIORITY to HIGHEST_PRIORITY; a task added
#: without one has DEFAULT_PRIORITY, in the middle, so that some tasks can
#: be made to wait for the common ones and some to pass them.
LOWEST_PRIORITY, DEFAULT_PRIORITY, HIGHEST_PRIORITY = 0, 5, 9


def check_priority(priority) -> int | None:
    """``priority`` if it is a valid priority, None for the default one
    (stored as no priority at all), else InvalidTask."""
    if type(priority) is not int or not (
            LOWEST_PRIORITY <= priority <= HIGHEST_PRIORITY):
        raise InvalidTask(
            f'priority must be a whole number from {LOWEST_PRIORITY} to '
            f'{HIGHEST_PRIORITY}, not {priority!r}'[:200])
    return None if priority == DEFAULT_PRIORITY else priority


#: How a finished task ended, as its completion callback is told.
OUTCOMES = ('done', 'dead')


def check_parent(parent) -> dict:
    """A completion callback's report on its task, as decoded."""
    if (not isinstance(parent, dict) or set(parent) != {'id', 'outcome',
                                                        'status'}
            or type(parent['id']) is not str
            or not parent['id'].isalnum()
            or parent['outcome'] not in OUTCOMES):
        raise InvalidTask(f'bad parent task {parent!r}'[:200])
    check_header_value('X-Task-Parent-Status', parent['status'])
    return parent


def check_keep_result(keep_result) -> bool | None:
    """True to keep the result; None (stored as nothing) for False."""
    if type(keep_result) is not bool:
        raise InvalidTask(f'keep_result must be True or False, not '
                          f'{keep_result!r}'[:200])
    return keep_result or None


#: Characters that percent-encoding leaves as they are, in a URL and in a
#: query parameter.
SAFE_IN_URL = "/?&=%:@!$'()*+,;~-._"


def check_callback(option: str, url) -> str:
    """``on_success`` or ``on_failure``: a path inside the app, as it
    travels (percent-encoded, as ``add``'s url)."""
    try:
        check_url(url)
    except InvalidTask as exc:
        raise InvalidTask(f'{option}: {exc}') from None
    return urllib.parse.quote(url, safe=SAFE_IN_URL)


#: The most tasks one task may wait for.
MAX_AFTER = 100
#: What a task id is made of (task.TASK_ID).
_TASK_ID = re.compile(r'[0-9a-f]{1,64}')


def check_after(after) -> list:
    """``after``: a task id or a list of them (1 to MAX_AFTER, each once)
    -> the list of ids, in order."""
    ids = [after] if isinstance(after, str) else after
    if (not isinstance(ids, (list, tuple)) or not 1 <= len(ids) <= MAX_AFTER
            or not all(type(task_id) is str and _TASK_ID.fullmatch(task_id)
                       for task_id in ids)):
        raise InvalidTask(
            f'after must be a task id or a list of 1 to {MAX_AFTER} task '
            f'ids (as add returns them), not {after!r}'[:200])
    return list(dict.fromkeys(ids))


def check_job(job) -> str:
    """``job``: a ``jobs.Job`` or its id (hex digits) -> the id."""
    job_id = getattr(job, 'job_id', job)
    if type(job_id) is not str or not _TASK_ID.fullmatch(job_id):
        raise InvalidTask(f'job must be a Job (taskqueue.job()) or its id '
                          f'(hex digits), not {job!r}'[:200])
    return job_id


#: What a job marker (``jobs.py``) may say.
JOB_OPS = ('open', 'close')


def check_job_marker(marker) -> dict:
    """A job marker as decoded: its operation, and for 'open' the job's
    label (or None) and whether the message is its on_complete task."""
    if (not isinstance(marker, dict) or marker.get('op') not in JOB_OPS
            or (marker['op'] == 'open' and (
                set(marker) != {'op', 'label', 'cb'}
                or type(marker['cb']) is not bool
                or (marker['label'] is not None
                    and check_label(marker['label']) is None)))
            or (marker['op'] == 'close' and set(marker) != {'op'})):
        raise InvalidTask(f'bad job marker {marker!r}'[:200])
    return marker
