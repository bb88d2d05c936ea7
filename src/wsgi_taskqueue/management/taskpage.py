"""A task's page on the dashboard: its status record, attempts, kept
result and dead letter, as ``wsgi-taskqueue show`` prints them.

The dashboard's task ids link here (``task/ID?queue=NAME``).  It is
rendered like the panels (``dashboard.py``): every value passes through a
``Markup`` template, so a result's body, headers or error, whatever the
app answered, is text on the page, never markup.  It does not refresh
itself: reload it to see the task move on.
"""
from __future__ import annotations

import base64
import binascii
import time

import webob
from markupsafe import Markup

from .. import __version__, admin
from ..console import task_options
from . import api
from .dashboard import _html, _read
from .fragments import section, table, text, when

__all__ = ['task_page']

#: A kept body longer than this is cut on the page (the API has it all).
BODY_SHOWN = 64 * 1024


def task_page(app, request, access, task_id: str) -> webob.Response:
    """The page of one task of the queues this app shows (``?queue=``
    narrows them), 404 when none knows it."""
    record = api.get_task(app, request, task_id)
    if record['state'] == 'dead':
        letter = admin.find_task(task_id, [record['queue']])
        record['dead_letter'] = (letter or {}).get('dead_letter')
    now = time.time()
    body = Markup(_read('taskpage.html')).format(
        task_id=task_id, version=__version__, sections=Markup('\n').join([
            section('Task', _fields(record, now)),
            section('Attempts', _attempts(record['attempts'], now)),
            section('Result', _result(record.get('result'))),
            _dead_letter(record.get('dead_letter'), now),
        ]))
    return _html(body)


def _fields(record: dict, now: float) -> Markup:
    rows = [('Queue', record['queue']), ('State', record['state']),
            ('Request', f"{text(record['method'])} {text(record['path'])}"),
            ('User', record['user']),
            ('Created', when(record['created'], now)),
            ('Updated', when(record['updated'], now)),
            ('Consumer', record['consumer']), ('Attempt', record['attempt']),
            ('Status', record['status'])]
    if record['next_attempt']:
        rows.append(('Next attempt', when(record['next_attempt'], now)))
    rows += [(name.replace('_', ' ').capitalize(), value)
             for name, value in task_options(record)]
    if record.get('problem'):
        rows.append(('Malformed', record['problem']))
    return Markup('<table data-panel="task"><tbody>{}</tbody></table>').format(
        Markup('').join(
            Markup('<tr data-field="{0}"><th>{0}</th><td>{1}</td></tr>')
            .format(name, text(value)) for name, value in rows))


def _attempts(attempts: list[dict], now: float) -> Markup:
    rows = [Markup(
        '<tr><td class="number">{}</td><td>{}</td><td>{}</td>'
        '<td class="number">{}</td></tr>').format(
            attempt['attempt'], text(attempt['status']),
            when(attempt['at'], now),
            '' if attempt['duration_ms'] is None
            else f"{attempt['duration_ms']:.1f} ms")
        for attempt in attempts]
    return table(['#', 'Status', 'At', 'Took'], rows,
                  'Not run yet.', 'attempts')


def _result(result: dict | None) -> Markup:
    if not result:
        return Markup('<p class="empty" data-panel="result">No result kept: '
                      'a task keeps one when it or its queue asks '
                      '(<code>keep_result</code>).</p>')
    headers = Markup('').join(
        Markup('<tr><th>{}</th><td>{}</td></tr>').format(name, value)
        for name, value in (result.get('headers') or {}).items())
    size = f"{result.get('size')} bytes" + (
        ', cut at the queue\'s result_max_size' if result.get('truncated')
        else '')
    return Markup(
        '<div data-panel="result"><p>{status} ({size})</p>'
        '<table><tbody>{headers}</tbody></table>{body}</div>').format(
            status=text(result.get('status')), size=size, headers=headers,
            body=_body(result))


def _body(result: dict) -> Markup:
    body = result.get('body') or ''
    if result.get('encoding') == 'base64':
        try:
            size = len(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            return Markup('<p class="error">The kept body is not valid '
                          'base64.</p>')
        return Markup('<p>A binary body of {} bytes: <code>GET '
                      'tasks/ID</code> of the API has it, base64.</p>'
                      ).format(size)
    if not body:
        return Markup('<p class="empty">An empty body.</p>')
    shown = body[:BODY_SHOWN]
    more = '' if shown == body else Markup(
        '<p>The first {} characters of {}.</p>').format(len(shown), len(body))
    return Markup('<pre class="result-body">{}</pre>{}').format(shown, more)


def _dead_letter(letter: dict | None, now: float) -> Markup:
    if not letter:
        return Markup('')
    return section('Dead letter', Markup(
        '<p>Dead since {}.</p><pre class="error">{}</pre>').format(
            when(letter.get('dead_at'), now), text(letter.get('error'))))
