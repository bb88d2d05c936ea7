"""The JSON operations of the management app (see ``openapi.yaml``).

Each route's function takes the app (which knows the queues it shows) and
a WebOb request and returns a JSON-able value, or raises ``APIError``.  The
operations themselves are ``admin``'s, shared with the command line; here
are only the HTTP concerns: parameters and bodies checked, errors as status
codes, answers in the shapes the OpenAPI document gives.  The dashboard
reads through ``queue_status`` and ``letter_id`` too.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import time

from .. import admin, admin_dead, admin_jobs
from ..admin_dead import letter_id  # the dashboard's handles, too
from ..deadletter import DeadLetter
from ..drain import drain_queue
from ..errors import InvalidTask
from ..options import OPTIONS
from ..status import STATES
from ..validation import METHODS, check_label

__all__ = ['APIError', 'status', 'queue_status', 'list_tasks', 'get_task',
           'list_jobs', 'get_job', 'add_task', 'list_dead_letters',
           'requeue_letter', 'purge_letters', 'close_job', 'drain',
           'letter_json', 'letter_id']

#: How many records one page of GET /tasks, /dead-letters or a queue's
#: jobs may hold.
MAX_COUNT = 500
#: Deeper than any status log or dead-letter list is long.
MAX_START = 1_000_000
#: Room for a task of the default ``max_task_size`` (8 MiB) whose body is
#: sent as base64; an app whose queues take larger tasks raises it
#: (``max_body_size``).
DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
#: Arrays and objects nested deeper than this are refused: the deepest
#: body the API takes (params holding lists) is 3 levels deep.
MAX_BODY_DEPTH = 10
#: The longest a drain runs unless the app says otherwise: a request
#: that a proxy or cron job in front still waits for.
DEFAULT_DRAIN_MAX_RUNTIME = 60.0
#: The query parameters of a drain.
DRAIN_PARAMETERS = ('max_tasks', 'runtime')
#: More tasks than one drain could run.
MAX_DRAIN_TASKS = 1_000_000
#: Fields of a POST /tasks body: the request's, then the task options.
TASK_FIELDS = frozenset(['url', 'method', 'params', 'headers', 'payload',
                         'payload_base64', 'queue', *OPTIONS])


class APIError(Exception):
    """Answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- reading ---------------------------------------------------------------

def status(app, request) -> dict:
    minutes = _int_param(request, 'minutes', 15, 1, 60)
    return {'time': time.time(),
            'queues': [queue_status(app.backend(name), minutes)
                       for name in app.queue_names()]}


def queue_status(backend, minutes: int = 15) -> dict:
    """Counts, consumers and outcomes per minute of one queue: its
    ``admin.queue_snapshot`` as a QueueStatus of the OpenAPI document."""
    snapshot = admin.queue_snapshot(backend.name, minutes)
    counts = dict(snapshot['counts'])
    in_flight = counts.pop('processing')
    counts['processing'] = sum(in_flight.values())
    return {
        'name': backend.name,
        'counts': counts,
        'in_flight': in_flight,
        'consumers': snapshot['consumers'],
        'throughput': snapshot['throughput'],
    }


def list_tasks(app, request) -> dict:
    state = request.GET.get('state')
    if state is not None and state not in STATES:
        raise APIError(400, f'state must be one of {", ".join(STATES)}, '
                            f'not {state!r}')
    label = request.GET.get('label')
    if label is not None:
        try:
            check_label(label)
        except InvalidTask as exc:
            raise APIError(400, str(exc)) from None
    start = _int_param(request, 'start', 0, 0, MAX_START)
    count = _int_param(request, 'count', 50, 1, MAX_COUNT)
    return {'tasks': admin.tasks(_queues_asked(app, request), state, start,
                                 count, order='updated', label=label)}


def get_task(app, request, task_id: str) -> dict:
    found = admin.status_record(task_id, _queues_asked(app, request))
    if found is None:
        raise APIError(404, f'unknown task {task_id!r} (never queued here, '
                            f'or its status record expired)')
    return found


def list_jobs(app, request, queue: str) -> dict:
    start = _int_param(request, 'start', 0, 0, MAX_START)
    count = _int_param(request, 'count', 50, 1, MAX_COUNT)
    return {'jobs': admin_jobs.list_jobs([app.backend(queue).name], start,
                                         count)}


def get_job(app, request, queue: str, job_id: str) -> dict:
    return _on_job(admin_jobs.find_job, app, queue, job_id)


def list_dead_letters(app, request) -> dict:
    start = _int_param(request, 'start', 0, 0, MAX_START)
    count = _int_param(request, 'count', 50, 1, MAX_COUNT)
    letters = admin_dead.read_dead_letters(_queues_asked(app, request), start,
                                      count)
    return {'dead_letters': [letter_json(letter) for letter in letters]}


def letter_json(letter: DeadLetter) -> dict:
    """``admin_dead.letter_info`` as a DeadLetter of the OpenAPI document: with
    its handle for the requeue URL, without its size."""
    info = admin_dead.letter_info(letter)
    del info['size']
    return {'id': letter_id(letter.record), **info}


# -- acting ----------------------------------------------------------------

def add_task(app, request) -> tuple[dict, str]:
    """Enqueue the task a JSON body describes; return the answer and the
    task's id."""
    fields = _json_body(request, app.max_body_size)
    unknown = sorted(set(fields) - TASK_FIELDS)
    if unknown:
        raise APIError(400, f'unknown field(s) {", ".join(unknown)}; known '
                            f'fields: {", ".join(sorted(TASK_FIELDS))}')
    if 'url' not in fields:
        raise APIError(400, 'url is required')
    method = fields.get('method')
    name = fields.get('queue')
    if name is not None and not isinstance(name, str):
        raise APIError(400, 'queue must be a string')
    if method is not None and (not isinstance(method, str)
                               or method not in METHODS):
        # Stricter than add(), which upper-cases: HTTP methods are
        # case-sensitive, and the OpenAPI document lists these.
        raise APIError(400, f'invalid task: method must be one of '
                            f'{", ".join(sorted(METHODS))}, not {method!r}')
    backend = app.backend(name if name is not None else app.default_queue(),
                          status=400)
    try:
        options = {name: option.from_json(fields[name])
                   for name, option in OPTIONS.items()
                   if fields.get(name) is not None}
        # Nothing of this request travels with the task: see
        # admin.add_task.
        task_id = admin.add_task(
            fields['url'], method=method if method is not None else 'GET',
            params=_params(fields.get('params')), headers=fields.get('headers'),
            payload=_payload(fields), queue=backend.name, **options)
    except InvalidTask as exc:
        raise APIError(400, f'invalid task: {exc}') from None
    return {'id': task_id, 'queue': backend.name}, task_id


def requeue_letter(app, request, queue: str, letter: str) -> dict:
    try:
        found = admin_dead.requeue_letter(app.backend(queue).name, letter)
    except ValueError as exc:  # a malformed record: nothing to requeue
        raise APIError(409, str(exc)) from None
    if found is None:
        raise APIError(404, 'no such dead letter (requeued or purged '
                            'meanwhile?)')
    return {'requeued': True, 'task_id': found.task_id}


def purge_letters(app, request, queue: str) -> dict:
    return {'purged': admin_dead.purge_dead(app.backend(queue).name)}


def close_job(app, request, queue: str, job_id: str) -> dict:
    """Close the job in a transaction of its own, committed before the
    answer (``admin_jobs.close_job``); closing it again changes nothing
    and answers ``closed: false``, so a retried request is harmless."""
    return _on_job(admin_jobs.close_job, app, queue, job_id)


def drain(app, request, queue: str) -> dict:
    """Run the queue's tasks in this request (``drain.py``) for
    ``runtime`` seconds, capped by the app's ``drain_max_runtime`` (also
    the default), and ``max_tasks`` tasks at most, or until it is empty."""
    if request.content_length or 'chunked' in request.headers.get(
            'Transfer-Encoding', '').lower():
        # ``curl -d runtime=5``: parameters a drain would not see.
        raise APIError(400, 'a drain takes no body: give runtime and '
                            'max_tasks in the query string')
    unknown = sorted(set(request.GET) - set(DRAIN_PARAMETERS))
    if unknown:
        raise APIError(400, f'unknown parameter(s) {", ".join(unknown)}; '
                            f'known: {", ".join(DRAIN_PARAMETERS)}')
    backend = app.backend(queue)
    limit = app.drain_max_runtime
    runtime = min(_seconds_param(request, 'runtime', limit), limit)
    max_tasks = _int_param(request, 'max_tasks', 0, 1, MAX_DRAIN_TASKS)
    task_app = app.task_app(request)
    report = drain_queue(task_app, backend.name, runtime, max_tasks or None)
    return {**report.as_json(), 'runtime_limit': runtime}


# -- helpers ---------------------------------------------------------------

def _queues_asked(app, request) -> list[str]:
    name = request.GET.get('queue')
    if name is None:
        return app.queue_names()
    app.backend(name)
    return [name]


def _on_job(operation, app, queue: str, job_id: str) -> dict:
    """``operation(job_id, [queue])`` of ``admin_jobs``: an id that is
    not one is a 400, a job the queue does not know a 404."""
    name = app.backend(queue).name
    try:
        answer = operation(job_id, [name])
    except InvalidTask:
        raise APIError(400, f'not a job id (1 to 64 hex digits): '
                            f'{job_id[:80]!r}') from None
    if answer is None:
        raise APIError(404, f'unknown job {job_id!r} of queue {name!r} '
                            f'(never created there, or its record '
                            f'expired)')
    return answer


def _int_param(request, name: str, default: int, low: int,
               high: int) -> int:
    text = request.GET.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise APIError(400, f'{name} must be an integer, not {text!r}') \
            from None
    if not low <= value <= high:
        raise APIError(400, f'{name} must be between {low} and {high}, '
                            f'not {value}')
    return value


def _seconds_param(request, name: str, default: float) -> float:
    text = request.GET.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise APIError(400, f'{name} must be a positive number of seconds, '
                            f'not {text!r}')
    return value


def _json_body(request, limit: int) -> dict:
    """The request's body as a JSON object: at most ``limit`` bytes (read
    no further: 413) and ``MAX_BODY_DEPTH`` levels deep (400)."""
    too_large = APIError(413, f'the body is larger than {limit} bytes (the '
                              f"management app's max_body_size)")
    if (request.content_length or 0) > limit:
        raise too_large
    body = request.body_file.read(limit + 1)
    if len(body) > limit:
        raise too_large
    too_deep = False
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f'the body must be a JSON object: {exc}') \
            from None
    except RecursionError:  # deeper than Python's parser goes
        too_deep = True
    if too_deep or _depth(fields) > MAX_BODY_DEPTH:
        raise APIError(400, f'the body is nested too deeply: at most '
                            f'{MAX_BODY_DEPTH} levels of arrays and objects')
    if not isinstance(fields, dict):
        raise APIError(400, 'the body must be a JSON object')
    return fields


def _depth(value) -> int:
    """How deep ``value``'s arrays and objects nest, counted without
    recursion (up to one level past ``MAX_BODY_DEPTH``)."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_BODY_DEPTH:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _params(params):
    """JSON params: values are strings, numbers or lists of them (a list
    repeats the key)."""
    if not isinstance(params, dict):
        return params  # None, or let add() name the wrong type
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, (str, int, float))
                   and not isinstance(item, bool) for item in values):
            raise APIError(400, f'params[{key!r}] must be a string, a number '
                                f'or a list of them')
    return params


def _payload(fields):
    if 'payload_base64' in fields and fields['payload_base64'] is not None:
        if fields.get('payload') is not None:
            raise APIError(400, 'give payload or payload_base64, not both')
        encoded = fields['payload_base64']
        if not isinstance(encoded, str):
            raise APIError(400, 'payload_base64 must be a string')
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise APIError(400, f'payload_base64 is not base64: {exc}') \
                from None
    payload = fields.get('payload')
    if payload is not None and not isinstance(payload, str):
        raise APIError(400, 'payload must be a string (sent as UTF-8) or '
                            'null; binary bodies go in payload_base64')
    return payload
