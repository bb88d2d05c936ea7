"""The ``jobs`` and ``job`` commands of ``wsgi-taskqueue``: the progress of
jobs of many tasks (``jobs.py``), and closing one.

As ``commands`` is for tasks: arguments in, ``admin_jobs`` called, text
(or JSON) out, an exit code back.  A job's progress is drawn as a bar
(``console.bar``: done ``#``, failed ``!``, pending ``.``) when stdout is
a terminal; a pipe or a file gets the numbers only.
"""
from __future__ import annotations

import argparse
import sys

from . import admin_jobs, console
from .commands import NOT_DONE, OK, complain, emit, page_note, selected_queues
from .errors import InvalidTask
from .validation import check_job

__all__ = ['add_parsers', 'JOB_OPERATIONS', 'render_jobs', 'render_job']

#: Characters of a bar between its brackets.
BAR_WIDTH = 20


def add_parsers(command, queues, page, json) -> None:
    """The commands' parsers, made with ``cli.build_parser``'s ``command``
    and its option makers."""
    command('jobs', 'jobs of many tasks, newest first, with their '
            'progress', queues, page, json)
    job = command('job', 'one job of many tasks: its progress; --close '
                  'closes it', queues, json)
    job.add_argument('job_id', metavar='JOB_ID', type=_job_id)
    job.add_argument('--close', action='store_true',
                     help='no task may be added to it any more (committed '
                          'at once, in a transaction of its own)')


def _job_id(text: str) -> str:
    try:
        return check_job(text)
    except InvalidTask:
        raise argparse.ArgumentTypeError(
            f'not a job id (hex digits): {text!r}') from None


def jobs(args) -> int:
    found = admin_jobs.list_jobs(selected_queues(args.config, args.queue),
                                 args.offset, args.limit)
    terminal = console.isatty(sys.stdout)
    emit(args, found, lambda found: page_note(
        render_jobs(found, terminal), found, args, 'jobs'))
    return OK


def job(args) -> int:
    names = selected_queues(args.config, args.queue)
    if args.close:
        closed = admin_jobs.close_job(args.job_id, names)
        found = closed and closed['job']
    else:
        closed, found = None, admin_jobs.find_job(args.job_id, names)
    if found is None:
        complain(f'no job {args.job_id} in queue(s) {", ".join(names)} '
                  f'(never created there, or its record expired)')
        return NOT_DONE
    terminal = console.isatty(sys.stdout)
    if closed is None:
        emit(args, found, lambda found: render_job(found, terminal))
    else:
        emit(args, closed, lambda closed: '\n'.join([
            f"closed job {found['id']} of queue {found['queue']}"
            if closed['closed'] else
            f"job {found['id']} of queue {found['queue']} was "
            f"{_state(found)} already", render_job(found, terminal)]))
    return OK


def render_jobs(found: list[dict], terminal: bool) -> str:
    """A table of jobs; with a PROGRESS column on a terminal."""
    headers = ['job', 'queue', 'label', 'state', 'done', 'failed',
               'pending', 'total', 'created']
    rows = [[job['id'], job['queue'], job['label'], _state(job),
             job['done'], job['failed'], job['pending'], job['total'],
             console.when(job['created'])] for job in found]
    if terminal:
        headers.append('progress')
        for row, job in zip(rows, found, strict=True):
            row.append(_progress(job))
    return console.table(headers, rows)


def render_job(job: dict, terminal: bool) -> str:
    fields = [
        ('job', job['id']), ('queue', job['queue']), ('label', job['label']),
        ('state', _state(job)),
    ]
    if terminal:
        fields.append(('progress', _progress(job)))
    fields += [
        ('total', job['total']), ('done', job['done']),
        ('failed', job['failed']), ('pending', job['pending']),
        ('created', console.when(job['created'])),
        ('closed', console.when(job['closed'])),
        ('completed', console.when(job['completed'])),
        ('on_complete', job['on_complete']),
    ]
    if job.get('problem'):
        fields.append(('malformed', job['problem']))
    return '\n'.join(f'{name + ":":<14}{"-" if value is None else value}'
                     for name, value in fields)


def _state(job: dict) -> str:
    """Its state; ``malformed`` for a record that does not parse (``job
    ID`` says what is wrong)."""
    return 'malformed' if job.get('problem') else job['state']


def _progress(job: dict) -> str:
    """The bar, then how many of the tasks finished."""
    finished = job['done'] + job['failed']
    share = f' {100 * finished // job["total"]:3d}%' if job['total'] else ''
    return (f"{console.bar(job['done'], job['failed'], job['total'], BAR_WIDTH)}"
            f" {finished}/{job['total']}{share}")


JOB_OPERATIONS = {'jobs': jobs, 'job': job}
