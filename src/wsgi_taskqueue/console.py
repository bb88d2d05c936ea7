"""How the ``wsgi-taskqueue`` command shows things: tables for people,
JSON for scripts, a progress bar on terminals, confirmation prompts.

Renderers return text; ``Progress`` and ``confirm`` talk to the terminal
through ``sys.stderr`` and ``sys.stdin``, so stdout carries only results.
"""
from __future__ import annotations

import json
import sys
import time

from .options import STORED

__all__ = ['table', 'render_status', 'render_task', 'task_options',
           'render_tasks',
           'render_dead', 'to_json', 'Progress', 'bar', 'confirm', 'when',
           'age', 'isatty']


def when(timestamp: float | None) -> str:
    """An epoch time as local time, to the second."""
    if timestamp is None:
        return '-'
    return time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(timestamp))


def age(seconds: float | None) -> str:
    """A duration, short: 0.4s, 12s, 5m, 3h, 2d."""
    if seconds is None:
        return '-'
    if seconds < 10:
        return f'{seconds:.1f}s'
    for size, unit in ((86400, 'd'), (3600, 'h'), (60, 'm')):
        if seconds >= size:
            return f'{seconds // size:.0f}{unit}'
    return f'{seconds:.0f}s'


def table(headers: list[str], rows: list[list], indent: str = '') -> str:
    """Left-aligned columns two spaces apart, headers in capitals."""
    cells = [[str(h).upper() for h in headers]] + [
        ['-' if value is None else str(value) for value in row]
        for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return '\n'.join(
        indent + '  '.join(cell.ljust(width) for cell, width
                           in zip(row, widths, strict=True)).rstrip()
        for row in cells)


def _bound(max_connections) -> str:
    if max_connections is None:
        return ''
    return (f' (each process at most {max_connections} pool and '
            f'{max_connections} thread: max_connections)')


def render_status(statuses: list[dict]) -> str:
    blocks = []
    for status in statuses:
        outcomes = status['outcomes']
        lines = [
            f"queue {status['queue']}  ({status['type']}, {status['where']})",
            f"  pending {status['pending']}  in flight {status['in_flight']}"
            f"  delayed {status['delayed']}  dead {status['dead']}"
            f"  staged {status['staged']}",
            f"  last {outcomes['minutes']} min: {outcomes['done']} done, "
            f"{outcomes['retried']} retried, {outcomes['dead']} dead",
            f"  dead letters kept {age(status['dead_ttl'])}, "
            f"{status['dead_max']} at most",
        ]
        if status['connections']:
            lines.append('  connections to its Redis: ' + ', '.join(
                f'{count} {use}'
                for use, count in sorted(status['connections'].items()))
                + _bound(status.get('max_connections')))
        if status['consumers']:
            lines.append(table(
                ['consumer', 'state', 'heartbeat', 'in flight',
                 'concurrency', 'host:pid', 'processed'],
                [[c['name'], _consumer_state(c),
                  age(c['heartbeat_age']) + ' ago'
                  if c['heartbeat_age'] is not None else None,
                  c['in_flight'], c['concurrency'],
                  f"{c['host']}:{c['pid']}" if c['host'] else None,
                  c['processed']] for c in status['consumers']],
                indent='  '))
        if not status['live_consumers']:
            lines.append('  no live consumer')
        blocks.append('\n'.join(lines))
    return '\n\n'.join(blocks)


def _consumer_state(consumer: dict) -> str:
    if not consumer['alive']:
        return 'gone'
    return 'paused' if consumer['paused'] else 'live'


def task_options(record: dict) -> list[tuple[str, str]]:
    """(name, text) of each option a status record shows as set."""
    shown = []
    for option in STORED:
        value = record.get(option.field)
        if value is not None:
            shown.append((option.field, when(value) if option.field == 'due'
                          else str(value)))
    return shown


def render_task(record: dict) -> str:
    fields = [
        ('task', record['id']), ('queue', record['queue']),
        ('state', record['state']),
        ('request', f"{record['method']} {record['path']}"),
        ('user', record['user']), ('created', when(record['created'])),
        ('updated', when(record['updated'])),
        ('consumer', record['consumer']), ('attempt', record['attempt']),
    ]
    if record['next_attempt']:
        fields.append(('next attempt', when(record['next_attempt'])))
    fields += task_options(record)
    fields.append(('status', record['status']))
    if record.get('problem'):
        fields.append(('malformed', record['problem']))
    lines = [f'{name + ":":<14}{"-" if value is None else value}'
             for name, value in fields]
    if record['attempts']:
        lines.append('attempts:')
        lines.append(table(
            ['#', 'status', 'at', 'duration'],
            [[a['attempt'], a['status'], when(a['at']),
              f"{a['duration_ms']:.1f} ms"
              if a['duration_ms'] is not None else None]
             for a in record['attempts']], indent='  '))
    result = record.get('result')
    if result:
        lines += render_result(result)
    letter = record.get('dead_letter')
    if letter:
        lines.append(f"dead since:   {when(letter['dead_at'])}")
        lines.append('error:')
        lines += ['  ' + line for line in
                  (letter['error'] or '-').rstrip().splitlines()]
    return '\n'.join(lines)


def render_result(result: dict) -> list[str]:
    """The lines of a kept result (``results.as_json``)."""
    size = f"{result.get('size')} bytes" + (
        f", {_kept(result)} kept" if result.get('truncated') else '')
    lines = [f"{'result:':<14}{result.get('status')} ({size})"]
    for name, value in (result.get('headers') or {}).items():
        lines.append(f'  {name}: {value}')
    body = result.get('body') or ''
    if result.get('encoding') == 'base64':
        lines.append(f'  (binary body, base64) {_clip(body, 60)}')
    elif body:
        lines += ['  ' + line for line in body.rstrip().splitlines()[:40]]
    return lines


def _kept(result: dict) -> int:
    body = result.get('body') or ''
    return (len(body) * 3 // 4 if result.get('encoding') == 'base64'
            else len(body.encode()))


def render_tasks(records: list[dict]) -> str:
    return table(
        ['task', 'queue', 'state', 'attempt', 'request', 'status', 'updated'],
        [[r['id'], r['queue'], r['state'], r['attempt'],
          _clip(f"{r['method']} {r['path']}", 40), r['status'],
          when(r['updated'])] for r in records])


def render_dead(letters: list[dict]) -> str:
    return table(
        ['task', 'queue', 'died', 'attempt', 'request', 'status', 'error'],
        [[letter['task_id'], letter['queue'], when(letter['dead_at']),
          letter['attempt'],
          _clip(f"{letter['method']} {letter['url']}", 40)
          if letter['url'] else '(not a task)',
          letter['status'], _clip(_summary(letter['error']), 50)
          if not letter.get('problem')
          else _clip(f"malformed: {letter['problem']}", 50)]
         for letter in letters])


def _summary(error: str | None) -> str:
    """One line of an error: a traceback's last, else the first."""
    lines = [line.strip() for line in (error or '').splitlines()
             if line.strip()]
    if not lines:
        return '-'
    return lines[-1] if lines[0].startswith('Traceback') else lines[0]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + '...'


def to_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


class Progress:
    """A one-line bar on stderr, redrawn in place, when stderr is a
    terminal; otherwise silent (logs and pipes get no ``\\r`` noise).
    Call it with (done, total) as ``admin`` does; ``close()`` ends it."""

    WIDTH = 30
    #: Redraws per second at most: a bar must not cost what it measures.
    RATE = 10

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = isatty(self.stream)
        self.shown = False
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or not total:
            return
        now = time.monotonic()
        if done < total and now - self._last < 1 / self.RATE:
            return
        self._last = now
        self.stream.write(f'\r{self.label} {bar(done, 0, total, self.WIDTH)} '
                          f'{done}/{total} {100 * done // total:3d}%')
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write('\n')
            self.stream.flush()
            self.shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def bar(done: int, failed: int, total: int, width: int) -> str:
    """``[###!!.....]``: of ``total`` things, ``done`` (``#``), ``failed``
    (``!``) and the rest (``.``), ``width`` characters between brackets."""
    if total <= 0:
        return f'[{"." * width}]'
    ok = width * min(done, total) // total
    bad = width * min(done + failed, total) // total - ok
    return f'[{"#" * ok}{"!" * bad}{"." * (width - ok - bad)}]'


def confirm(question: str) -> bool:
    """Ask on stderr, read one line from stdin: yes only for y or yes.
    End of input (a script, cron, ``< /dev/null``) is a no, never a
    hang."""
    sys.stderr.write(f'{question} [y/N] ')
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ''
    if not (answer.endswith('\n') and isatty(sys.stdin)):
        sys.stderr.write('\n')  # nobody's Enter key ended the line
    return answer.strip().lower() in ('y', 'yes')


def isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
