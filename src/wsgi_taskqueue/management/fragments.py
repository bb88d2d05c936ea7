"""The markup the dashboard's panels are built of (``dashboard.py``,
``dashboard_jobs.py``): sections, tables, times.

Every fragment is a ``markupsafe.Markup`` made with
``Markup(template).format(...)``, which escapes each value it is given
(see ``dashboard``'s docstring).
"""
from __future__ import annotations

import time

from markupsafe import Markup

__all__ = ['text', 'section', 'table', 'when', 'clock', 'ago']


def text(value) -> str:
    """None as nothing."""
    return '' if value is None else str(value)


def section(title: str, body: Markup, note: Markup | str = '') -> Markup:
    return Markup('<section><h2>{}</h2>{}{}</section>').format(
        title, note, body)


def table(headings, rows, empty: str, name: str) -> Markup:
    head = Markup('').join(Markup('<th>{}</th>').format(heading)
                           for heading in headings)
    body = Markup('').join(rows) or Markup(
        '<tr class="empty"><td colspan="{}">{}</td></tr>').format(
            len(headings), empty)
    return Markup('<table data-panel="{}"><thead><tr>{}</tr></thead>'
                  '<tbody>{}</tbody></table>').format(name, head, body)


def when(at, now: float) -> Markup:
    if at is None:
        return Markup('')
    return Markup('<time title="{}">{}</time>').format(
        clock(at, '%Y-%m-%d %H:%M:%S'), ago(now - at))


def clock(at: float, layout: str) -> str:
    """``at`` as local time; as a number if it is none (out of range)."""
    try:
        return time.strftime(layout, time.localtime(at))
    except (OverflowError, OSError, ValueError):
        return f'{at:g}'


def ago(seconds) -> str:
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
