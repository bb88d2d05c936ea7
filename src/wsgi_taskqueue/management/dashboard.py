"""The dashboard: one server-rendered page that refreshes itself.

The page (``dashboard.html``) holds the panels rendered here;
``dashboard.js`` fetches them again (``GET panels``) every
``REFRESH_MS`` and posts the requeue and purge buttons to the JSON API.
Everything is rendered by this module, escaped once, here: the script only
swaps HTML it is given, so nothing a task carries can become markup.
"""
from __future__ import annotations

import dataclasses
import html
import string
import time
from importlib import resources

import webob

from .. import __version__
from ..deadletter import DeadLetter
from ..errors import BackendUnavailable
from . import api

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

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self'; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")
_STATIC_TYPES = {'js': 'text/javascript', 'css': 'text/css',
                 'svg': 'image/svg+xml'}


def _read(path: str) -> str:
    return resources.files(__package__).joinpath(path).read_text('utf-8')


def page(app, request, access) -> webob.Response:
    body = string.Template(_read('dashboard.html')).substitute(
        csrf_token=h(access.csrf_token or ''), refresh_ms=REFRESH_MS,
        version=h(__version__), panels=render_panels(app))
    response = webob.Response(body=body.encode(), content_type='text/html',
                              charset='utf-8')
    response.headers['Content-Security-Policy'] = _CSP
    return response


def panels(app, request, access) -> webob.Response:
    return webob.Response(body=render_panels(app).encode(),
                          content_type='text/html', charset='utf-8')


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
    error: str | None = None


def _gather(app) -> list[_QueueView]:
    views = []
    for name in app.queue_names():
        view = _QueueView(name)
        try:
            backend = app.backend(name)
            view.status = api.queue_status(backend, CHART_MINUTES)
            view.records = backend.tasks(None, 0, SCAN)
            view.letters = [DeadLetter.decode(record) for record
                            in backend.dead_letters(0, LETTERS - 1)]
        except (BackendUnavailable, api.APIError) as exc:
            view.error = str(exc)
        views.append(view)
    return views


def render_panels(app) -> str:
    views = _gather(app)
    now = time.time()
    records = sorted((record for view in views for record in view.records),
                     key=lambda record: record.get('updated') or 0,
                     reverse=True)
    failures = [record for record in records
                if record.get('state') in ('retrying', 'dead')]
    return '\n'.join([
        _section('Queues', _queues(views)),
        _section('Consumers', _consumers(views, now)),
        _section('Recent tasks', _tasks(records[:ROWS], now, 'tasks')),
        _section('Recent failures', _tasks(failures[:ROWS], now,
                                           'failures')),
        _section('Dead letters', _letters(views, now)),
    ])


# -- panels ----------------------------------------------------------------

def _queues(views) -> str:
    rows = []
    for view in views:
        if view.status is None:
            rows.append(f'<tr data-queue="{h(view.name)}"><th>{h(view.name)}'
                        f'</th><td colspan="7" class="error">{h(view.error)}'
                        f'</td></tr>')
            continue
        counts = view.status['counts']
        minutes = view.status['throughput']
        cells = ''.join(
            f'<td class="number" data-count="{key}">{counts[key]}</td>'
            for key in ('pending', 'processing', 'delayed', 'dead', 'staged'))
        done = sum(minute['done'] for minute in minutes)
        rows.append(
            f'<tr data-queue="{h(view.name)}"><th>{h(view.name)}</th>{cells}'
            f'<td class="number" data-count="done">{done}</td>'
            f'<td>{_chart(minutes)}</td></tr>')
    return _table(['Queue', 'Pending', 'Running', 'Retrying', 'Dead',
                   'Staged', f'Done ({CHART_MINUTES} min)',
                   f'Per minute, last {CHART_MINUTES} min'], rows,
                  'No queue is configured.', 'queues')


def _chart(minutes: list[dict]) -> str:
    """Outcomes per minute as stacked bars: done, retried, dead."""
    width, height, bar = 12, 36, 10
    top = max([m['done'] + m['retried'] + m['dead'] for m in minutes] + [1])
    parts = []
    for index, minute in enumerate(minutes):
        x = index * width
        y = height
        label = time.strftime('%H:%M', time.localtime(minute['minute']))
        parts.append(f'<g><title>{label}: {minute["done"]} done, '
                     f'{minute["retried"]} retried, {minute["dead"]} dead'
                     f'</title>')
        for kind in ('done', 'retried', 'dead'):
            if minute[kind]:
                size = max(1.0, round(minute[kind] / top * (height - 2), 1))
                y -= size
                parts.append(f'<rect class="bar-{kind}" x="{x}" y="{y:g}" '
                             f'width="{bar}" height="{size:g}"/>')
        parts.append(f'<rect class="bar-slot" x="{x}" y="{height - 1}" '
                     f'width="{bar}" height="1"/></g>')
    total = width * len(minutes)
    return (f'<svg class="chart" viewBox="0 0 {total} {height}" '
            f'width="{total}" height="{height}" role="img" aria-label='
            f'"outcomes per minute, highest {top}">{"".join(parts)}</svg>')


def _consumers(views, now: float) -> str:
    rows = []
    for view in views:
        for consumer in (view.status or {}).get('consumers', ()):
            state = 'alive' if consumer.get('alive') else 'gone'
            if consumer.get('paused'):
                state += ', paused'
            where = f'{consumer.get("host", "?")}:{consumer.get("pid", "?")}'
            rows.append(
                f'<tr data-consumer="{h(consumer["name"])}">'
                f'<td>{h(view.name)}</td><td>{h(consumer["name"])}</td>'
                f'<td>{h(where)}</td>'
                f'<td class="{"ok" if consumer.get("alive") else "error"}">'
                f'{h(state)}</td>'
                f'<td>{_ago(consumer.get("heartbeat_age"))}</td>'
                f'<td class="number" data-count="in_flight">'
                f'{consumer.get("in_flight", 0)}</td>'
                f'<td class="number">{h(consumer.get("concurrency", ""))}</td>'
                f'<td class="number">{h(consumer.get("processed", ""))}</td>'
                f'</tr>')
    return _table(['Queue', 'Consumer', 'Host:pid', 'State', 'Heartbeat',
                   'In flight', 'Threads', 'Processed'], rows,
                  'No consumer holds a lease.', 'consumers')


def _tasks(records, now: float, kind: str) -> str:
    rows = []
    for record in records:
        attempts = record.get('attempts') or []
        last = attempts[-1] if attempts else {}
        duration = last.get('duration_ms')
        rows.append(
            f'<tr data-task="{h(record["id"])}" '
            f'data-state="{h(record.get("state"))}">'
            f'<td>{_when(record.get("updated"), now)}</td>'
            f'<td>{h(record["queue"])}</td>'
            f'<td class="id">{h(record["id"])}</td>'
            f'<td>{h(record.get("method"))} {h(record.get("path"))}</td>'
            f'<td class="state-{h(record.get("state"))}">'
            f'{h(record.get("state"))}</td>'
            f'<td class="number">{h(record.get("attempt"))}</td>'
            f'<td>{h(record.get("status") or "")}</td>'
            f'<td class="number">'
            f'{"" if duration is None else f"{duration:.1f} ms"}</td></tr>')
    empty = 'No task failed lately.' if kind == 'failures' \
        else 'No task in the status log.'
    return _table(['Updated', 'Queue', 'Task', 'Request', 'State', 'Attempt',
                   'Status', 'Took'], rows, empty, kind)


def _letters(views, now: float) -> str:
    rows = []
    purges = []
    for view in views:
        if not view.letters:
            continue
        dead = (view.status or {}).get('counts', {}).get('dead', 0)
        purges.append(
            f'<button type="button" class="danger" data-action="purge" '
            f'data-url="dead-letters/{h(view.name)}/purge" data-confirm='
            f'"Delete the {dead} dead letter(s) of queue {h(view.name)}?">'
            f'Purge the dead letters of {h(view.name)}</button>')
        for letter in view.letters:
            handle = api.letter_id(letter.record)
            first, _, _ = (letter.error or '').strip().partition('\n')
            rows.append(
                f'<tr data-letter="{handle}" data-task="{h(letter.task_id)}">'
                f'<td>{_when(letter.dead_at, now)}</td>'
                f'<td>{h(view.name)}</td>'
                f'<td class="id">{h(letter.task_id or "(not a task)")}</td>'
                f'<td>{h(letter.method or "")} {h(letter.url or "")}</td>'
                f'<td>{h(letter.status or "")}</td>'
                f'<td class="number">{letter.attempt}</td>'
                f'<td><details data-key="{handle}"><summary>'
                f'{h(first[:120])}</summary><pre>{h(letter.error)}</pre>'
                f'</details></td>'
                f'<td><button type="button" data-action="requeue" data-url='
                f'"dead-letters/{h(view.name)}/{handle}/requeue">Requeue'
                f'</button></td></tr>')
    table = _table(['Died', 'Queue', 'Task', 'Request', 'Status', 'Attempts',
                    'Error', ''], rows, 'No dead letters.', 'letters')
    return table + (f'<p class="actions">{"".join(purges)}</p>'
                    if purges else '')


# -- helpers ---------------------------------------------------------------

def h(value) -> str:
    return html.escape('' if value is None else str(value), quote=True)


def _section(title: str, body: str) -> str:
    return f'<section><h2>{h(title)}</h2>{body}</section>'


def _table(headings, rows, empty: str, name: str) -> str:
    head = ''.join(f'<th>{h(heading)}</th>' for heading in headings)
    body = ''.join(rows) or (f'<tr class="empty"><td colspan='
                             f'"{len(headings)}">{h(empty)}</td></tr>')
    return (f'<table data-panel="{name}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table>')


def _when(at, now: float) -> str:
    if at is None:
        return ''
    exact = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))
    return f'<time title="{exact}">{_ago(now - at)}</time>'


def _ago(seconds) -> str:
    if seconds is None:
        return ''
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f'{seconds:.0f} s ago'
    if seconds < 3600:
        return f'{seconds / 60:.0f} min ago'
    if seconds < 86400 * 2:
        return f'{seconds / 3600:.0f} h ago'
    return f'{seconds / 86400:.0f} days ago'
