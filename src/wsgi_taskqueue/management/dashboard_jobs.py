"""The dashboard's Jobs panel: the newest jobs of many tasks of each queue
(``jobs.py``), each with a bar of its progress, and a *Close* button on
each open one (``dashboard.js`` posts it to ``POST
queues/Q/jobs/ID/close``, as it posts the dead letters' buttons).

The bar is inline SVG made of attributes only (the page's
Content-Security-Policy allows no inline style): a rectangle each for the
tasks done, failed and pending, in the colours of the throughput chart,
with the numbers in its title and label.  Every value goes through
``Markup(...).format`` (``dashboard``'s docstring).
"""
from __future__ import annotations

import urllib.parse

from markupsafe import Markup

from .fragments import table, text, when

__all__ = ['JOBS', 'jobs_panel', 'progress_bar']

#: Jobs read and shown per queue: the most recently created.
JOBS = 10


def jobs_panel(views, now: float) -> Markup:
    """The panel: every queue's newest jobs (``view.jobs``), newest
    first."""
    found = sorted((job for view in views for job in view.jobs),
                   key=lambda job: job.get('created') or 0, reverse=True)
    return table(['Created', 'Queue', 'Job', 'Label', 'State', 'Progress',
                  'Done', 'Failed', 'Pending', 'Total', ''],
                 [_row(job, now) for job in found],
                 'No job of many tasks lately.', 'jobs')


def _row(job: dict, now: float) -> Markup:
    state = job.get('state') or 'malformed'
    shown = f"malformed record: {job['problem']}" if job.get('problem') \
        else state
    quoted_queue = urllib.parse.quote(job['queue'], safe='')
    return Markup(
        '<tr data-job="{id}" data-state="{state}"><td>{created}</td>'
        '<td>{queue}</td>'
        # The id opens the job's status (GET queues/Q/jobs/ID of the API,
        # which the dashboard's session may read).
        '<td class="id"><a href="queues/{quoted_queue}/jobs/{id}">{id}</a>'
        '</td><td>{label}</td><td class="job-{state}">{shown}</td>'
        '<td>{bar}</td><td class="number" data-count="done">{done}</td>'
        '<td class="number" data-count="failed">{failed}</td>'
        '<td class="number" data-count="pending">{pending}</td>'
        '<td class="number" data-count="total">{total}</td><td>{close}</td>'
        '</tr>').format(
            id=job['id'], state=state, shown=shown,
            created=when(job.get('created'), now), queue=job['queue'],
            quoted_queue=quoted_queue, label=text(job.get('label')),
            bar=progress_bar(job), done=job['done'], failed=job['failed'],
            pending=job['pending'], total=job['total'],
            close=_close_button(job, quoted_queue)
            if job.get('state') == 'open' else '')


def _close_button(job: dict, quoted_queue: str) -> Markup:
    """Asks first: a closed job takes no task any more, and a planner
    still adding to it fails its commits."""
    return Markup(
        '<button type="button" data-action="close" '
        'data-url="queues/{quoted_queue}/jobs/{id}/close" '
        'data-confirm="Close job {id} of queue {queue}? No task may be '
        'added to it after that.">Close</button>').format(
            quoted_queue=quoted_queue, id=job['id'], queue=job['queue'])


def progress_bar(job: dict) -> Markup:
    """Done, failed and pending tasks of ``job`` as one bar, 100 units
    wide (the SVG scales it), then the share of its tasks finished."""
    width, height = 160, 12
    total = job['total']
    # Pending is what the slot behind them leaves showing.
    parts = (('done', job['done']), ('dead', job['failed']))
    x = 0.0
    rects = []
    for kind, count in parts:
        if count and total:
            size = round(100 * min(count, total) / total, 2)
            rects.append(Markup(
                '<rect class="bar-{}" x="{:g}" y="0" width="{:g}" '
                'height="{}"/>').format(kind, x, size, height))
            x += size
    summary = (f"{job['done']} done, {job['failed']} failed, "
               f"{job['pending']} pending of {total}")
    finished = job['done'] + job['failed']
    share = f'{100 * finished // total}%' if total else 'no task yet'
    return Markup(
        '<svg class="progress" viewBox="0 0 100 {height}" '
        'preserveAspectRatio="none" width="{width}" height="{height}" '
        'role="img" aria-label="{summary}"><title>{summary}</title>'
        '<rect class="bar-slot" x="0" y="0" width="100" height="{height}"/>'
        '{rects}</svg> <span class="share">{share}</span>').format(
            width=width, height=height, summary=summary,
            rects=Markup('').join(rects), share=share)
