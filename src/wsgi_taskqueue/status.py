"""The status log: what became of each task, kept for operators.

Each task has a record — its state (staged, scheduled, queued, running,
done, retrying, dead, purged, cancelled), who runs it, the status line of
each attempt, timestamps and the enqueuing user — written by the backend
in the same round trip
that moves the task, kept ``status_ttl`` seconds and at most
``status_max`` records per queue.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import time

from .errors import InvalidTask
from .options import NO_OPTIONS, STORED, header_fields

__all__ = ['Report', 'STATES', 'DEFAULT_STATUS_TTL', 'DEFAULT_STATUS_MAX',
           'record', 'header_of', 'MemoryStatusLog']

STATES = ('staged', 'scheduled', 'waiting', 'queued', 'running', 'done',
          'retrying', 'dead', 'purged', 'cancelled')

#: A day: long enough to answer "did my task run last night?".
DEFAULT_STATUS_TTL = 86400
#: About 50 MB of Redis memory at most, per queue.
DEFAULT_STATUS_MAX = 100_000


@dataclasses.dataclass(frozen=True)
class Report:
    """What one delivery of a task came to, for its status record."""

    task_id: str
    attempt: int
    #: The status line, or what went wrong instead ('exception').
    status: str
    #: Seconds the app took.
    duration: float
    #: What the app answered, kept for ``taskqueue.result`` (the stored
    #: text of ``results.encode``), or None when the task keeps none.
    result: str | None = None
    #: Messages that become pending in the same step that settles the
    #: task (its completion callbacks): both happen, or neither.
    then: tuple = ()


def record(fields: dict, queue: str) -> dict:
    """A status record as the API shows it, from the stored fields
    (strings: the task's header, without its environ, and what happened
    since); attempts in order.

    Stored fields are data, not trusted: a field that is missing or does
    not parse is None (``attempt``: 0) and named in ``problem``, which is
    None for a sound record, so every reader shows a malformed record as
    such instead of failing on it."""
    problems = []
    try:
        header = json.loads(fields.get('header') or '{}')
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        problems.append('header is not a JSON object')
        header = {}

    def text(value, name):
        if value is None or isinstance(value, str):
            return value
        problems.append(f'{name} is not a string')
        return None

    def number(value, name):
        if value is None or value == '':
            return None
        found = _number(value)
        if found is None:
            problems.append(f'{name} is not a number')
        return found

    def stored(option):
        value = header.get(option.key)
        if value is None:
            return None
        try:
            return option.check_stored(value)
        except InvalidTask:
            problems.append(f'{option.field} is not valid')
            return None

    attempts = []
    for key, value in fields.items():
        if key[:1] == 'a' and _count(key[1:]) is not None:
            status, at, duration = (value.split('\t') + ['', ''])[:3]
            attempts.append({'attempt': _count(key[1:]), 'status': status,
                             'at': number(at, key),
                             'duration_ms': number(duration, key)})
    attempts.sort(key=lambda entry: entry['attempt'])
    state = fields.get('state')
    if state not in STATES:
        problems.append('state is missing' if state is None
                        else 'state is none of ' + ', '.join(STATES))
        state = None
    if not fields.get('id'):
        problems.append('id is missing')
    attempt = _count(fields.get('attempt') or header.get('a') or 1)
    if attempt is None:
        problems.append('attempt is not a whole number')
        attempt = 0
    return {
        'id': fields.get('id') or None, 'queue': queue, 'state': state,
        'method': text(header.get('m'), 'method'),
        'path': (text(header.get('u'), 'url') or '').partition('?')[0],
        'user': text(header.get('uid'), 'user'),
        'created': number(header.get('t'), 'created'),
        'updated': number(fields.get('updated'), 'updated'),
        'consumer': fields.get('consumer') or None,
        'attempt': attempt,
        'next_attempt': number(fields.get('next'), 'next attempt'),
        **{option.field: stored(option) for option in STORED},
        'status': fields.get('status') or None,
        'attempts': attempts,
        'problem': '; '.join(problems) or None,
    }


def header_of(task) -> str:
    """What a status record keeps of the task's header (JSON)."""
    fields = {'m': task.method, 'u': task.path, 'uid': task.user_id,
              't': task.created_at, 'a': task.attempt}
    if task.options is not NO_OPTIONS:
        fields.update(header_fields(task.options))
    return json.dumps(fields)


def _count(value) -> int | None:
    """A whole number from a stored field (text or JSON), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() \
            and len(value) <= 18:
        return int(value)
    return None


def _number(value) -> float | None:
    """A finite number from a stored field (text or JSON), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class MemoryStatusLog:
    """The status log of an in-process queue, in the form Redis keeps it
    (string fields), so both render through ``record``."""

    def __init__(self, queue):
        self.queue = queue
        self._records: collections.OrderedDict = collections.OrderedDict()
        self._minutes: dict[int, collections.Counter] = {}

    def new(self, task, state: str) -> None:
        """A record for ``task`` (None: not a task, nothing to record)."""
        if task is None or not self.queue.status_ttl:
            return
        # As Redis's HSET does, what the record held stays (a promotion
        # of a task it knows must not forget which attempts finished).
        self._records[task.id] = {
            **self._records.pop(task.id, {}),
            'id': task.id, 'state': state, 'updated': str(time.time()),
            'header': header_of(task)}
        while len(self._records) > self.queue.status_max:
            self._records.popitem(last=False)

    def update(self, task_id: str | None, **fields) -> None:
        fields_now = self._records.get(task_id)
        if fields_now is not None:
            fields_now.update({k: str(v) for k, v in fields.items()},
                              updated=str(time.time()))

    def outcome(self, report: Report | None, state: str, outcome: str,
                **fields) -> None:
        """Record how a delivery ended, and count it for its minute."""
        now = time.time()
        minute = int(now // 60)
        self._minutes.setdefault(minute, collections.Counter())[outcome] += 1
        for old in [m for m in self._minutes if m < minute - 60]:
            del self._minutes[old]
        if report is not None:
            self.update(report.task_id, state=state, status=report.status,
                        f=report.attempt,
                        **{f'a{report.attempt}': f'{report.status}\t{now}\t'
                           f'{report.duration * 1000:.1f}'}, **fields)

    def fields(self, task_id: str) -> dict | None:
        """The stored fields of a task's record, expired or not."""
        return self._records.get(task_id)

    def get(self, task_id: str) -> dict | None:
        fields = self._records.get(task_id)
        if fields is None or self._expired(fields):
            return None
        return record(fields, self.queue.name)

    def list(self, state=None, start=0, count=50) -> list[dict]:
        found = [record(fields, self.queue.name)
                 for fields in reversed(self._records.values())
                 if not self._expired(fields)
                 and (state is None or fields['state'] == state)]
        return found[start:start + count]

    def throughput(self, minutes: int) -> list[dict]:
        current = int(time.time() // 60)
        return [{'minute': minute * 60, **self._minutes.get(minute, {})}
                for minute in range(current - minutes + 1, current + 1)]

    def _expired(self, fields: dict) -> bool:
        return float(fields['updated']) < time.time() - self.queue.status_ttl
