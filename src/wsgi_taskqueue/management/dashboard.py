"""The dashboard: one server-rendered page that refreshes itself.

The page (``dashboard.html``) holds the panels rendered here;
``dashboard.js`` fetches them again (``GET panels``) every
``REFRESH_MS`` and posts the requeue, purge and close buttons to the JSON
API.

Everything is rendered by this module, through one path: each fragment is
a ``markupsafe.Markup`` built with ``Markup(template).format(...)``, which
escapes every value it is given, and fragments are joined with
``Markup.join``, which escapes any that is plain text.  A value can only
become markup by passing through a template here; the script only swaps
HTML it is given.  So nothing a task or a stored record carries can become
markup, and a record that does not parse is shown as such (its
``problem``), in a row of its own.

``?label=NAME`` on the page narrows its task panels to the tasks of that
label (a task's label links there); the other panels stay whole.
"""
from __future__ import annotations

import dataclasses
import time
import urllib.parse
from importlib import resources

import webob
from markupsafe import Markup

from .. import __version__, admin
from ..console import task_options
from ..deadletter import DeadLetter
from ..errors import BackendUnavailable, InvalidTask
from ..validation import check_label
from . import api
from .dashboard_jobs import JOBS, jobs_panel
from .fragments import ago, clock, section, table, text, when

__all__ = ['page', 'panels', 'static', 'render_panels']

#: Fast enough to watch a queue drain, slow enough to cost nothing.
REFRESH_MS = 1500
#: The throughput chart's window.
CHART_MINUTES = 15
#: Status records read per queue for the recent tasks and failures; a
#: bounded read, whatever the size of the status log.
SCAN = 200
ROWS = 10
LETTERS = 20

_STATIC_TYPES = {'js': 'text/javascript', 'css': 'text/css',
                 'svg': 'image/svg+xml'}


def _read(path: str) -> str:
    return resources.files(__package__).joinpath(path).read_text('utf-8')


def page(app, request, access) -> webob.Response:
    label = _label_asked(request)
    body = Markup(_read('dashboard.html')).format(
        csrf_token=access.csrf_token or '', refresh_ms=REFRESH_MS,
        version=__version__, label=label or '',
        panels=render_panels(app, label))
    return _html(body)


def panels(app, request, access) -> webob.Response:
    return _html(render_panels(app, _label_asked(request)))


def _label_asked(request) -> str | None:
    label = request.GET.get('label') or None
    if label is not None:
        try:
            check_label(label)
        except InvalidTask as exc:
            raise api.APIError(400, str(exc)) from None
    return label


def _html(body: Markup) -> webob.Response:
    # The Content-Security-Policy and its companions are the app's, on
    # every answer (see app.SECURITY_HEADERS).
    return webob.Response(body=body.encode(), content_type='text/html',
                          charset='utf-8')


def static(app, request, access, name: str) -> webob.Response:
    return webob.Response(
        body=_read(name).encode(), charset='utf-8',
        content_type=_STATIC_TYPES[name.rpartition('.')[2]])


@dataclasses.dataclass
class _QueueView:
    name: str
    status: dict | None = None
    records: list = dataclasses.field(default_factory=list)
    letters: list = dataclasses.field(default_factory=list)
    jobs: list = dataclasses.field(default_factory=list)
    error: str | None = None


def _gather(app, label: str | None) -> list[_QueueView]:
    views = []
    for name in app.queue_names():
        view = _QueueView(name)
        try:
            backend = app.backend(name)
            view.status = api.queue_status(backend, CHART_MINUTES)
            view.records = backend.tasks(None, 0, SCAN) if label is None \
                else admin.tasks([name], None, 0, SCAN, label=label)
            view.letters = [DeadLetter.decode(record) for record
                            in backend.dead_letters(0, LETTERS - 1)]
            view.jobs = backend.job_list(0, JOBS)
        except (BackendUnavailable, api.APIError) as exc:
            view.error = str(exc)
        views.append(view)
    return views


def render_panels(app, label: str | None = None) -> Markup:
    views = _gather(app, label)
    now = time.time()
    records = sorted((record for view in views for record in view.records),
                     key=lambda record: record.get('updated') or 0,
                     reverse=True)
    failures = [record for record in records
                if record.get('state') in ('retrying', 'dead')]
    return Markup('\n').join([
        section('Queues', _queues(views)),
        section('Consumers', _consumers(views, now)),
        section('Jobs', jobs_panel(views, now)),
        section('Recent tasks', _tasks(records[:ROWS], now, 'tasks'),
                _filtered(label)),
        section('Recent failures', _tasks(failures[:ROWS], now,
                                          'failures'), _filtered(label)),
        section('Dead letters', _letters(views, now)),
    ])


# -- panels ----------------------------------------------------------------

def _queues(views) -> Markup:
    rows = []
    for view in views:
        if view.status is None:
            rows.append(Markup(
                '<tr data-queue="{0}"><th>{0}</th><td colspan="7" '
                'class="error">{1}</td></tr>').format(view.name, view.error))
            continue
        counts = view.status['counts']
        minutes = view.status['throughput']
        cells = Markup('').join(
            Markup('<td class="number" data-count="{}">{}</td>').format(
                key, counts[key])
            for key in ('pending', 'processing', 'delayed', 'dead', 'staged'))
        done = sum(minute['done'] for minute in minutes)
        rows.append(Markup(
            '<tr data-queue="{0}"><th>{0}</th>{1}<td class="number" '
            'data-count="done">{2}</td><td>{3}</td></tr>').format(
                view.name, cells, done, _chart(minutes)))
    return table(['Queue', 'Pending', 'Running', 'Retrying', 'Dead',
                   'Staged', f'Done ({CHART_MINUTES} min)',
                   f'Per minute, last {CHART_MINUTES} min'], rows,
                  'No queue is configured.', 'queues')


def _chart(minutes: list[dict]) -> Markup:
    """Outcomes per minute as stacked bars: done, retried, dead."""
    width, height, bar = 12, 36, 10
    top = max([m['done'] + m['retried'] + m['dead'] for m in minutes] + [1])
    groups = []
    for index, minute in enumerate(minutes):
        x = index * width
        y = height
        bars = []
        for kind in ('done', 'retried', 'dead'):
            if minute[kind]:
                size = max(1.0, round(minute[kind] / top * (height - 2), 1))
                y -= size
                bars.append(Markup(
                    '<rect class="bar-{}" x="{}" y="{:g}" width="{}" '
                    'height="{:g}"/>').format(kind, x, y, bar, size))
        groups.append(Markup(
            '<g><title>{}: {} done, {} retried, {} dead</title>{}'
            '<rect class="bar-slot" x="{}" y="{}" width="{}" height="1"/>'
            '</g>').format(
                clock(minute['minute'], '%H:%M'), minute['done'],
                minute['retried'], minute['dead'], Markup('').join(bars), x,
                height - 1, bar))
    total = width * len(minutes)
    return Markup(
        '<svg class="chart" viewBox="0 0 {0} {1}" width="{0}" height="{1}" '
        'role="img" aria-label="outcomes per minute, highest {2}">{3}</svg>'
    ).format(total, height, top, Markup('').join(groups))


def _consumers(views, now: float) -> Markup:
    rows = []
    for view in views:
        for consumer in (view.status or {}).get('consumers', ()):
            alive = bool(consumer.get('alive'))
            state = 'alive' if alive else 'gone'
            if consumer.get('paused'):
                state += ', paused'
            if consumer.get('problem'):
                state += f', malformed record: {consumer["problem"]}'
            rows.append(Markup(
                '<tr data-consumer="{name}"><td>{queue}</td><td>{name}</td>'
                '<td>{host}:{pid}</td><td class="{health}">{state}</td>'
                '<td>{heartbeat}</td>'
                '<td class="number" data-count="in_flight">{in_flight}</td>'
                '<td class="number">{threads}</td>'
                '<td class="number">{processed}</td></tr>').format(
                    name=consumer.get('name'), queue=view.name,
                    host=consumer.get('host', '?'),
                    pid=consumer.get('pid', '?'),
                    health='ok' if alive and not consumer.get('problem')
                    else 'error',
                    state=state, heartbeat=ago(consumer.get('heartbeat_age')),
                    in_flight=consumer.get('in_flight', 0),
                    threads=text(consumer.get('concurrency')),
                    processed=text(consumer.get('processed'))))
    return table(['Queue', 'Consumer', 'Host:pid', 'State', 'Heartbeat',
                   'In flight', 'Threads', 'Processed'], rows,
                  'No consumer holds a lease.', 'consumers')


def _tasks(records, now: float, kind: str) -> Markup:
    rows = []
    for record in records:
        if record.get('problem'):
            rows.append(Markup(
                '<tr class="malformed" data-task="{id}" data-state="{state}">'
                '<td>{updated}</td><td>{queue}</td><td class="id">{id}</td>'
                '<td colspan="5" class="error">malformed status record: '
                '{problem}</td></tr>').format(
                    id=text(record.get('id')),
                    state=text(record.get('state')),
                    updated=when(record.get('updated'), now),
                    queue=record.get('queue'), problem=record['problem']))
            continue
        attempts = record.get('attempts') or []
        last = attempts[-1] if attempts else {}
        duration = last.get('duration_ms')
        rows.append(Markup(
            '<tr data-task="{id}" data-state="{state}"><td>{updated}</td>'
            # The id opens the task's page (taskpage.py): attempts, and
            # the result when the task kept one.
            '<td>{queue}</td><td class="id"><a href="task/{id}?queue='
            '{quoted_queue}">{id}</a></td>'
            '<td>{method} {path}{options}</td>'
            '<td class="state-{state}">{state}</td>'
            '<td class="number">{attempt}</td><td>{status}</td>'
            '<td class="number">{took}</td></tr>').format(
                id=record['id'], state=record['state'],
                updated=when(record.get('updated'), now),
                queue=record['queue'],
                quoted_queue=urllib.parse.quote(record['queue'], safe=''),
                method=text(record.get('method')),
                path=text(record.get('path')), options=_options(record),
                attempt=record['attempt'],
                status=text(record.get('status')),
                took='' if duration is None else f'{duration:.1f} ms'))
    empty = 'No task failed lately.' if kind == 'failures' \
        else 'No task in the status log.'
    return table(['Updated', 'Queue', 'Task', 'Request', 'State', 'Attempt',
                   'Status', 'Took'], rows, empty, kind)


def _options(record: dict) -> Markup:
    """The options a task was added with, after its request; its label
    links to the page narrowed to that label, its job to the job's
    status."""
    links = {'label': '?label={2}', 'job': 'queues/{3}/jobs/{2}'}
    return Markup('').join(
        Markup(' <a class="option" href="' + links[name] + '">{0} {1}</a>'
               ).format(name, value, urllib.parse.quote(value, safe=''),
                        urllib.parse.quote(record['queue'], safe=''))
        if name in links else
        Markup(' <span class="option">{0} {1}</span>').format(name, value)
        for name, value in task_options(record))


def _filtered(label: str | None) -> Markup | str:
    if label is None:
        return ''
    return Markup('<p class="filter">Labelled <strong>{}</strong> &middot; '
                  '<a href="./">all tasks</a></p>').format(label)


def _letters(views, now: float) -> Markup:
    rows = []
    purges = []
    for view in views:
        if not view.letters:
            continue
        dead = (view.status or {}).get('counts', {}).get('dead', 0)
        purges.append(Markup(
            '<button type="button" class="danger" data-action="purge" '
            'data-url="dead-letters/{0}/purge" data-confirm="Delete the {1} '
            'dead letter(s) of queue {0}?">Purge the dead letters of {0}'
            '</button>').format(view.name, dead))
        for letter in view.letters:
            rows.append(_letter(letter, view.name, now))
    listing = table(['Died', 'Queue', 'Task', 'Request', 'Status', 'Attempts',
                    'Error', ''], rows, 'No dead letters.', 'letters')
    if not purges:
        return listing
    return Markup('{}<p class="actions">{}</p>').format(
        listing, Markup('').join(purges))


def _letter(letter: DeadLetter, queue: str, now: float) -> Markup:
    handle = api.letter_id(letter.record)
    requeue = Markup(
        '<button type="button" data-action="requeue" '
        'data-url="dead-letters/{}/{}/requeue">Requeue</button>').format(
            queue, handle) if letter.message is not None else ''
    if letter.problem:
        return Markup(
            '<tr class="malformed" data-letter="{handle}" data-task="{id}">'
            '<td>{died}</td><td>{queue}</td><td class="id">{id}</td>'
            '<td colspan="4" class="error">malformed dead letter: {problem}'
            '</td><td>{requeue}</td></tr>').format(
                handle=handle, id=text(letter.task_id),
                died=when(letter.dead_at, now), queue=queue,
                problem=letter.problem, requeue=requeue)
    first, _, _ = (letter.error or '').strip().partition('\n')
    return Markup(
        '<tr data-letter="{handle}" data-task="{id}"><td>{died}</td>'
        '<td>{queue}</td><td class="id">{shown_id}</td>'
        '<td>{method} {url}</td><td>{status}</td>'
        '<td class="number">{attempt}</td>'
        '<td><details data-key="{handle}"><summary>{summary}</summary>'
        '<pre>{error}</pre></details></td><td>{requeue}</td></tr>').format(
            handle=handle, id=text(letter.task_id),
            shown_id=letter.task_id or '(not a task)',
            died=when(letter.dead_at, now), queue=queue,
            method=text(letter.method), url=text(letter.url),
            status=text(letter.status), attempt=letter.attempt,
            summary=first[:120], error=letter.error, requeue=requeue)
