"""``taskqueue.add``: validate a task, build it, join it to the transaction.

Everything that can be wrong with a task is found here, at ``add`` time, so
a broken message never reaches a queue and the vote and after-commit steps
only move bytes already prepared.
"""
from __future__ import annotations

import logging
import re
import urllib.parse

import transaction
import webob

from . import context, datamanager, results
from .errors import InvalidTask, TaskTooLarge
from .options import NO_OPTIONS, options_of
from .registry import first_answer, get_queue
from .task import TASK_ID, Task
from .validation import (
    METHODS,
    SAFE_IN_URL,
    TASK_HEADER_PREFIX,
    check_header_value,
    check_method,
    check_url,
    copyable_header,
    environ_key,
    header_value,
    headers_size,
)

__all__ = ['add', 'status', 'result', 'cancel', 'reset', 'job', 'close_job',
           'job_status', 'Job', 'METHODS']

log = logging.getLogger(__name__)

#: Headers of the enqueuing request that must not travel: they describe
#: that one connection (hop-by-hop, RFC 9110 7.6.1), would be a lie on the
#: replay (User-Agent, Expect), or are the task's own (X-Task-*).
_NOT_COPIED = frozenset([
    'HTTP_CONNECTION', 'HTTP_KEEP_ALIVE', 'HTTP_PROXY_AUTHENTICATE',
    'HTTP_PROXY_AUTHORIZATION', 'HTTP_PROXY_CONNECTION', 'HTTP_TE',
    'HTTP_TRAILER', 'HTTP_TRANSFER_ENCODING', 'HTTP_UPGRADE',
    'HTTP_USER_AGENT', 'HTTP_EXPECT', 'HTTP_CONTENT_LENGTH',
])

#: The default of ``payload``: copy the body of the request being served.
COPY = object()

#: A path inside the app made only of the characters percent-encoding
#: leaves as they are (SAFE_IN_URL), "%" excepted: valid
#: (``check_url``) and needing no quoting.  One with "%" is checked in
#: full, as what it decodes to must be valid too.
_UNQUOTED_URL = re.compile(r"/(?!/)[A-Za-z0-9/?&=:@!$'()*+,;~\-._]*\Z")
#: A parameter whose name and value need no quoting: ``=`` is not among
#: the name's characters, so the name cannot swallow it.
_UNQUOTED_PARAM = re.compile(r'[A-Za-z0-9_.~\-]*=[A-Za-z0-9_.~\-]*\Z')


def add(url: str, method: str = 'GET', params: dict | None = None,
        headers: dict | None = None, payload=COPY,
        queue: str | None = None, **options) -> str:
    """Queue a request to ``url`` of this app, sent once the current
    transaction commits; return the task id (sent as ``X-Task-Id``).

    Headers and body are copied from the request being served (bound by
    the filter); ``headers`` add to or replace them, ``payload=None`` sends
    no body.  Outside a request only what is given travels.
    ``options`` are the task options of ``options.OPTIONS``
    (docs/task-options.rst): ``countdown`` (seconds) or ``eta`` (an aware
    datetime) delays the task, ``label`` names what it is about,
    ``priority`` (0-9, default 5) orders it among the pending tasks,
    ``name`` makes it the only one of that name in the queue for
    ``name_ttl``: a task whose name another transaction holds is dropped
    when this one stages its tasks, and its id is never queued; a name
    added earlier in this transaction returns that task's id and adds
    nothing.
    """
    job = options.get('job')
    if job is not None and getattr(job, 'queue', None) is not None:
        # A Job knows its queue: its tasks go there unless told otherwise,
        # and elsewhere is refused (a job counts the tasks of one queue).
        if queue is None:
            queue = job.queue
        elif get_queue(queue).name != job.queue:
            raise InvalidTask(f'job {job.job_id} is of queue {job.queue!r}, '
                              f'not {queue!r}')
    task_options = options_of(options) if options else NO_OPTIONS
    return queue_task(url, method, params, headers, payload, queue,
                      task_options)


def queue_task(url, method, params, headers, payload, queue, task_options,
               job_marker: dict | None = None) -> str:
    """``add``'s work once its options are checked; ``job_marker`` makes
    the task a job's marker (``jobs.py``)."""
    backend = get_queue(queue)
    request = context.current()
    environ = request.environ if request is not None else None
    url = _with_params(_checked_url(url), params)
    task_environ = _task_environ(environ, headers, payload is COPY, backend)
    # The URL is ASCII by now (percent-encoded), so characters are bytes.
    size = len(url) + headers_size(task_environ)
    body = _checked_payload(payload, environ, backend.max_task_size - size)
    if size + len(body) > backend.max_task_size:
        raise TaskTooLarge(size + len(body), backend.max_task_size)
    task = Task.added(
        queue=backend.name, url=url, method=check_method(method),
        environ=task_environ, payload=body, user_id=_checked_user(request),
        script_name=environ.get('SCRIPT_NAME', '') if environ else '',
        url_scheme=environ.get('wsgi.url_scheme', 'http') if environ else 'http',
        options=task_options, job_marker=job_marker,
    )
    message = backend.codec.encode(task)
    manager = (datamanager.joined(environ) if datamanager.joiners else None
               ) or datamanager.for_transaction(_transaction_manager(environ))
    if task_options.name is not None:
        holder = manager.name_holder(backend, task_options.name, task.id)
        if holder is not None:
            log.info('add: task %s not added: its name %r is held by task '
                     '%s, added earlier in this transaction', task.id,
                     task_options.name, holder)
            return holder
    manager.add(backend, message)
    if request is not None and manager not in request.data_managers:
        request.data_managers.append(manager)
    return task.id


def status(task_id: str, queue: str | None = None) -> dict | None:
    """The status record of a task (state, attempts with their status
    lines, timestamps, user), from ``queue`` or else from every queue;
    None when it is unknown or its record expired."""
    return first_answer(queue, lambda backend: backend.task_status(task_id))


def result(task_id: str, queue: str | None = None) -> dict | None:
    """What the app answered to a task that kept its result
    (``keep_result``): a dict with status, headers (Content-Type,
    Location), body (bytes, at most the queue's ``result_max_size``),
    size (of the whole body), truncated and outcome ('done' or 'dead');
    None while it has none (not finished, not kept, or expired after
    ``result_ttl``).  Searches ``queue``, or every queue."""
    _check_task_id(task_id)
    found = first_answer(queue,
                         lambda backend: backend.task_result(task_id))
    return None if found is None else results.decode(found)


def cancel(task_id: str, queue: str | None = None) -> str | None:
    """Cancel a task that has not started: one pending, scheduled or
    waiting for a retry is removed and recorded ``cancelled`` (return
    'cancelled').  One a consumer is running is not interrupted (return
    'running'); one in none of these states (unknown, staged, finished)
    is left alone (return None).  Searches ``queue``, or every queue."""
    _check_task_id(task_id)
    return first_answer(queue, lambda backend: backend.cancel(task_id))


def _check_task_id(task_id) -> None:
    if type(task_id) is not str or not TASK_ID.fullmatch(task_id):
        raise InvalidTask(f'task_id must be a task id (hex digits), not '
                          f'{task_id!r}'[:200])


def reset(queue: str | None = None) -> None:
    """Delete everything of ``queue`` (the default queue if None): tasks
    in every state, dead letters, the status log.  collective.taskqueue's
    way for tests to start from an empty queue."""
    get_queue(queue).reset()


def _transaction_manager(environ):
    """The request's own transaction manager when it has one (pyramid_tm
    puts it in the environ, and with ``tm.manager_hook`` it is not the
    thread-local one), else the thread-local ``transaction.manager``."""
    if environ is not None:
        manager = environ.get('tm.manager')
        if manager is not None:
            return manager
    return transaction.manager


def _checked_url(url) -> str:
    if type(url) is str and _UNQUOTED_URL.match(url):
        return url  # a path of safe characters: valid as it is
    check_url(url)
    # Non-ASCII paths are legal in views; they travel percent-encoded.
    return urllib.parse.quote(url, safe=SAFE_IN_URL)


def _checked_user(request) -> str | None:
    """The enqueuing user, who the task will run as: the host's
    authenticated user when it tells, else ``REMOTE_USER``."""
    if request is None:
        return None
    if request.authenticated_user is not None:
        user = request.authenticated_user()
    else:
        user = request.environ.get('REMOTE_USER')
    if user is not None:
        check_header_value('REMOTE_USER', user)
    return user


def _with_params(url: str, params) -> str:
    if params is None:
        return url
    if not isinstance(params, dict):
        raise InvalidTask(f'params must be a dict, not {type(params).__name__}')
    if not params:
        return url
    query = _query(params)
    if not query:  # every value an empty sequence
        return url
    if '?' not in url:
        return f'{url}?{query}'
    if url.endswith(('?', '&')):
        return url + query
    return f'{url}&{query}'


def _query(params: dict) -> str:
    """``urllib.parse.urlencode(params, doseq=True)``, without its cost for
    the parameters that need no quoting: names and numbers, mostly."""
    parts = []
    for name, value in params.items():
        if type(name) is str and type(value) in (str, int, float):
            part = f'{name}={value}'
            if _UNQUOTED_PARAM.match(part):
                parts.append(part)
                continue
        parts.append(urllib.parse.urlencode({name: value}, doseq=True))
    return '&'.join(filter(None, parts))


def _task_environ(environ, headers, copy_body: bool, backend) -> dict:
    """The headers a task carries: those of the request being served that
    the queue lets travel and that will decode at dispatch (a header name
    such as ``X.Trace`` is skipped, not copied into a task that would then
    be refused), the queue's pinned ``http_host``, then the explicit ones."""
    task_environ = {}
    if environ is not None:
        allowed = backend.copied_headers
        skipped = []
        for key, value in environ.items():
            if (not key.startswith('HTTP_') or key in _NOT_COPIED
                    or key.startswith(TASK_HEADER_PREFIX)
                    or (allowed is not None and key not in allowed)):
                continue
            if copyable_header(key, value):
                task_environ[key] = value
            else:
                skipped.append(key)
        if skipped:
            log.debug('add: not copying header(s) that would not decode: %s',
                      ', '.join(repr(key)[:80] for key in skipped))
        content_type = environ.get('CONTENT_TYPE')
        if copy_body and content_type and copyable_header('CONTENT_TYPE',
                                                          content_type):
            task_environ['CONTENT_TYPE'] = content_type
    if backend.http_host is not None:
        task_environ['HTTP_HOST'] = backend.http_host
    if headers is None:
        return task_environ
    if not isinstance(headers, dict):
        raise InvalidTask(
            f'headers must be a dict, not {type(headers).__name__}')
    for name, value in headers.items():
        task_environ[environ_key(name)] = header_value(name, value)
    return task_environ


def _checked_payload(payload, environ, budget: int) -> bytes:
    """The task's body, of at most ``budget`` bytes (what the URL and
    headers leave of the queue's max_task_size); a copied body longer
    than that is refused before it is read, or as soon as it shows."""
    if payload is COPY:
        return _request_body(environ, budget) if environ is not None else b''
    if payload is None:
        return b''
    if isinstance(payload, str):
        return payload.encode('utf-8')
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise InvalidTask(
        f'payload must be bytes, str or None, not {type(payload).__name__}')


def _request_body(environ: dict, budget: int) -> bytes:
    request = webob.Request(environ)
    length = request.content_length
    if budget < 0 or not request.is_body_readable:
        return b''  # nothing to read, or no room: the caller refuses
    if length is not None:
        if length > budget:
            raise InvalidTask(
                f'the request body of {length} bytes does not fit in the '
                f'queue\'s max_task_size: {budget} bytes are left after URL '
                f'and headers')
        return request.body
    # A body of unknown length (chunked): read no more than could fit,
    # and leave what was read for the app to read again.
    body = request.body_file_raw.read(budget + 1)
    request.body = body
    return body


# The job API lives in its own module and is used as ``taskqueue.job``.
from .jobs import Job, close_job, job, job_status  # noqa: E402
