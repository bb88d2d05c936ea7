"""The options a task may be added with: one table, ``OPTIONS``, feeds
every place that knows them.

``taskqueue.add(url, ..., **options)`` checks each keyword with its row's
``check`` and keeps the result in the task's ``TaskOptions``; the codec
writes it into the signed header under the row's ``key`` (only when set:
a task without options has the header it always had) and checks it again
with ``check_stored`` when the message is decoded; the dispatcher passes
it to the app as the row's ``X-Task-*`` header; the status record shows
it under the row's ``field``; ``wsgi-taskqueue add`` takes it as
``--name-with-dashes``; the HTTP API's ``POST /tasks`` takes it as a JSON
field of the row's ``schema`` (``openapi.yaml`` is tested against the
table).

To add an option:

1. add its field to ``TaskOptions`` (default None: not given);
2. add its row to ``OPTIONS`` (a ``check`` that raises ``InvalidTask``
   naming the option, a header ``key`` no other row uses, a ``schema``,
   and ``header`` if the app should see it);
3. describe it in ``openapi.yaml`` (NewTask and TaskRecord) as the
   schema says, and in ``docs/task-options.rst``.

Several keywords may fill one field (``countdown`` and ``eta`` both set
``due``); giving two of them is refused.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import time
from collections.abc import Callable

from .errors import InvalidTask
from .validation import (
    check_after,
    check_callback,
    check_job,
    check_keep_result,
    check_label,
    check_name,
    check_priority,
)

__all__ = ['TaskOptions', 'NO_OPTIONS', 'Option', 'OPTIONS', 'STORED',
           'options_of', 'stored_options', 'check_stored', 'header_fields',
           'dispatch_headers', 'MAX_DELAY']


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """What a task was added with, beyond its request; None: not given."""

    #: Epoch time before which the task must not run (``countdown`` or
    #: ``eta``); None to run as soon as possible.
    due: float | None = None
    #: What the task is about, for finding it in the status log.
    label: str | None = None
    #: 0 (lowest) to 9 (highest); None for the default, 5 (a task added
    #: with 5 stores None, as one added without).
    priority: int | None = None
    #: The task's name: at most one task of a name per queue within the
    #: queue's ``name_ttl``.
    name: str | None = None
    #: True: what the app answers is kept for ``taskqueue.result`` (None:
    #: as the queue's ``keep_result`` says).
    keep_result: bool | None = None
    #: Paths of this app queued when the task is done (``on_success``)
    #: or dead (``on_failure``), in the step that settles it
    #: (``completion.py``).
    on_success: str | None = None
    on_failure: str | None = None
    #: The ids of the tasks (of the same queue) this one waits for: it
    #: is pending once all of them are done, dead-lettered when one of
    #: them dies or is cancelled (``backends/dependencies.py``).
    after: list | None = None
    #: The id of the job the task belongs to (``jobs.py``).
    job: str | None = None


#: The options of every task added without any: one shared instance, so
#: ``options is NO_OPTIONS`` tells the fast path.
NO_OPTIONS = TaskOptions()


def _same(value):
    return value


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword of ``add``: how it is checked, stored, shown and
    accepted at each boundary (module docstring)."""

    #: The keyword of ``add``, the field of ``POST /tasks``, and (with
    #: dashes) the flag of ``wsgi-taskqueue add``.
    name: str
    #: The value given to ``add`` -> the value stored; raises InvalidTask.
    check: Callable
    #: The key of the signed header that carries the stored value.
    key: str
    #: The JSON schema of the API's field (``openapi.yaml``).
    schema: dict
    #: One line for ``--help``, the API document and the docs.
    help: str
    #: The ``TaskOptions`` field it fills (default: ``name``).
    field: str = ''
    #: A decoded header value -> the same value; raises InvalidTask
    #: (default: ``check``).
    check_stored: Callable | None = None
    #: The header the dispatched request carries it in; None: not sent.
    header: str | None = None
    #: The stored value as that header's text.
    header_value: Callable = str
    #: The API's JSON value -> what ``add`` takes.
    from_json: Callable = _same
    #: The command line's text -> what ``add`` takes (an argparse type).
    from_text: Callable = str
    #: The command line's placeholder.
    metavar: str = 'VALUE'

    def __post_init__(self):
        if not self.field:
            object.__setattr__(self, 'field', self.name)
        if self.check_stored is None:
            object.__setattr__(self, 'check_stored', self.check)

    @property
    def environ_key(self) -> str | None:
        """The WSGI environ key of ``header``."""
        if self.header is None:
            return None
        return 'HTTP_' + self.header.upper().replace('-', '_')


#: The furthest ahead a task may be scheduled: a year.
MAX_DELAY = 366 * 86400.0


def due_in(countdown) -> float | None:
    """The due time ``countdown`` seconds from now; None for 0 (at once)."""
    if type(countdown) not in (int, float) or not math.isfinite(
            countdown) or not 0 <= countdown <= MAX_DELAY:
        raise InvalidTask(
            f'countdown must be a number of seconds from 0 to '
            f'{MAX_DELAY:.0f}, not {countdown!r}'[:200])
    return time.time() + countdown if countdown else None


def due_at(eta) -> float:
    """The due time of ``eta``, an aware datetime at most a year ahead."""
    if not isinstance(eta, datetime.datetime):
        raise InvalidTask(
            f'eta must be a datetime, not {type(eta).__name__}')
    if eta.tzinfo is None or eta.utcoffset() is None:
        raise InvalidTask('eta must be an aware datetime (with a tzinfo); '
                          f'a naive one is ambiguous: {eta.isoformat()}')
    due = eta.timestamp()
    if due - time.time() > MAX_DELAY:
        raise InvalidTask(f'eta is more than {MAX_DELAY:.0f} seconds '
                          f'ahead: {eta.isoformat()}')
    return due


def check_due(due) -> float:
    """A stored due time: a number (epoch seconds)."""
    if type(due) not in (int, float) or due != due:
        raise InvalidTask(f'bad due time {due!r}')
    return due


def eta_of(text) -> datetime.datetime:
    """An ISO 8601 date and time with its offset (API, command line)."""
    if not isinstance(text, str):
        raise InvalidTask(f'eta must be an ISO 8601 date and time, not '
                          f'{text!r}'[:200])
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTask(f'eta must be an ISO 8601 date and time with '
                          f'its offset, not {text!r}'[:200]) from None


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidTask(f'countdown must be a number of seconds, not '
                          f'{text!r}'[:200]) from None


def _flag(text: str) -> bool:
    """A yes/no of the command line."""
    value = text.strip().lower()
    if value in ('1', 'true', 'yes', 'on'):
        return True
    if value in ('0', 'false', 'no', 'off'):
        return False
    raise InvalidTask(f'keep_result must be true or false, not '
                      f'{text!r}'[:200])


def _ids(text: str) -> list:
    """Task ids of the command line, separated by commas."""
    return [part.strip() for part in text.split(',')]


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidTask(f'priority must be a whole number, not '
                          f'{text!r}'[:200]) from None


def _json_whole(value):
    """A JSON number that is whole (``8`` or ``8.0``, both integers to
    JSON Schema) as an int; anything else as it came, for ``add`` to
    refuse."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: A path inside the app, as the API's ``url`` (openapi.yaml).
_PATH_SCHEMA = {'type': ['string', 'null'],
                'pattern': '^/([^/\\x00-\\x20\\x7f#][^\\x00-\\x20\\x7f#]*)?$'}

#: Every option of ``add``, by keyword.
OPTIONS: dict[str, Option] = {option.name: option for option in [
    Option('countdown', due_in, key='d', field='due', check_stored=check_due,
           header='X-Task-Eta', header_value=repr, from_text=_seconds,
           metavar='SECONDS',
           schema={'type': ['number', 'null'], 'minimum': 0,
                   'maximum': MAX_DELAY},
           help='run no sooner than this many seconds after the commit'),
    Option('eta', due_at, key='d', field='due', check_stored=check_due,
           header='X-Task-Eta', header_value=repr, from_json=eta_of,
           from_text=eta_of, metavar='ISO-8601',
           schema={'type': ['string', 'null'], 'format': 'date-time'},
           help='run no sooner than this time (with its UTC offset)'),
    Option('label', check_label, key='l', header='X-Task-Label',
           metavar='LABEL',
           schema={'type': ['string', 'null'],
                   'pattern': '^[A-Za-z0-9_.:@/+-]{1,100}$'},
           help='what the task is about, for finding it (tasks --label)'),
    Option('priority', check_priority, key='p', header='X-Task-Priority',
           from_text=_whole, from_json=_json_whole, metavar='0-9',
           schema={'type': ['integer', 'null'], 'minimum': 0,
                   'maximum': 9},
           help='0 (lowest) to 9 (highest), default 5: a consumer takes '
                'the highest pending first'),
    Option('name', check_name, key='n', header='X-Task-Name',
           metavar='NAME',
           schema={'type': ['string', 'null'],
                   'pattern': '^[A-Za-z0-9_.:@/+-]{1,200}$'},
           help="at most one task of this name per queue within the "
                "queue's name_ttl; a duplicate is dropped"),
    Option('keep_result', check_keep_result, key='kr', from_text=_flag,
           metavar='true|false', schema={'type': ['boolean', 'null']},
           help="keep what the app answers (status line, Content-Type, "
                "Location, body up to result_max_size) for result()"),
    Option('on_success', lambda url: check_callback('on_success', url),
           key='os', metavar='PATH', schema=_PATH_SCHEMA,
           help='a path of the app queued, as the same user, when the task '
                'is done'),
    Option('on_failure', lambda url: check_callback('on_failure', url),
           key='of', metavar='PATH', schema=_PATH_SCHEMA,
           help='a path of the app queued, as the same user, when the task '
                'is dead'),
    Option('after', check_after, key='af', from_text=_ids,
           metavar='ID[,ID...]',
           schema={'oneOf': [
               {'type': 'null'},
               {'type': 'string', 'pattern': '^[0-9a-f]{1,64}$'},
               {'type': 'array', 'minItems': 1, 'maxItems': 100,
                'items': {'type': 'string', 'pattern': '^[0-9a-f]{1,64}$'}}]},
           help='wait until these tasks (of the same queue) are done; '
                'dead-lettered if one of them dies or is cancelled'),
    Option('job', check_job, key='jb', header='X-Task-Job-Id',
           metavar='JOB-ID',
           schema={'type': ['string', 'null'], 'pattern': '^[0-9a-f]{1,64}$'},
           help='the id of the job (of the same queue) the task is part of: '
                'counted in its progress, its on_complete queued when the '
                'closed job has no unfinished task'),
]}

#: One row per stored field (the first of the keywords that fill it):
#: what the codec, the dispatcher and the status record go through.
STORED: tuple[Option, ...] = tuple(
    {option.field: option for option in reversed(OPTIONS.values())
     }.values())[::-1]


def options_of(given: dict) -> TaskOptions:
    """The TaskOptions of ``add``'s option keywords ``given`` (a value of
    None counts as not given); InvalidTask for an unknown keyword, a bad
    value, or two keywords for one field."""
    fields: dict = {}
    by: dict = {}
    for name, value in given.items():
        option = OPTIONS.get(name)
        if option is None:
            raise InvalidTask(f'unknown option {name!r}; the options are '
                              f'{", ".join(OPTIONS)}')
        if value is None:
            continue
        if option.field in by:
            raise InvalidTask(f'give {by[option.field]} or {name}, not both')
        by[option.field] = name
        stored = option.check(value)
        if stored is not None:
            fields[option.field] = stored
    return TaskOptions(**fields) if fields else NO_OPTIONS


def header_fields(options: TaskOptions) -> dict:
    """The header keys and values of the options that are set."""
    found = {}
    for option in STORED:
        value = getattr(options, option.field)
        if value is not None:
            found[option.key] = value
    return found


def stored_options(header: dict) -> TaskOptions:
    """The TaskOptions a decoded header carries, unchecked (a report on a
    message that will not run reads them too): see ``check_stored``."""
    fields = {}
    for option in STORED:
        value = header.get(option.key)
        if value is not None:
            fields[option.field] = value
    return TaskOptions(**fields) if fields else NO_OPTIONS


def check_stored(options: TaskOptions) -> None:
    """InvalidTask unless every option set is one ``add`` could store: a
    signature proves who wrote a message, not that its writer was
    careful."""
    for option in STORED:
        value = getattr(options, option.field)
        if value is not None:
            option.check_stored(value)


def dispatch_headers(options: TaskOptions) -> dict:
    """The ``X-Task-*`` environ entries of the options that are set."""
    environ = {}
    for option in STORED:
        value = getattr(options, option.field)
        if value is not None and option.header is not None:
            environ[option.environ_key] = option.header_value(value)
    return environ
