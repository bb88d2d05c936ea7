"""The ``jobs`` and ``job`` commands: the progress of jobs of many tasks on
the queues of an ini file (Redis, SQLite, PostgreSQL, MariaDB), a bar on a
terminal, numbers elsewhere, and closing a job in a transaction of its
own.  Tasks are run synchronously (``work``)."""
import io
import json
import sys
import textwrap

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import console, taskqueue

from conftest import empty_sql_queue
from test_admin import pending_ids, work
from test_cli import INI


@pytest.fixture(params=['redis', 'sqlite', 'postgresql', 'mariadb'])
def ini(request, tmp_path):
    """The ini file of two queues (default, mail) on each shared
    backend."""
    url = request.getfixturevalue(f'{request.param}_url')
    if request.param != 'redis':
        empty_sql_queue(url).close()  # tables made, rows of others gone
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(INI.format(
        type='redis' if request.param == 'redis' else 'sql', url=url)))
    wsgi_taskqueue.configure(str(path))  # the same queues main() uses
    return str(path)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def new_job(*urls, label='monthly', queue=None, on_complete='/ok'):
    """A job of ``urls``' tasks, committed (open); its id."""
    with transaction.manager:
        job = taskqueue.job(on_complete=on_complete, label=label,
                            queue=queue)
        for url in urls:
            taskqueue.add(url, job=job, queue=queue)
    return str(job)


def rows(out: str) -> list[list[str]]:
    """The table's rows after its header, split on whitespace."""
    return [line.split() for line in out.splitlines()[1:]]


def test_jobs_lists_progress_newest_first_as_numbers_in_a_pipe(ini, run):
    older = new_job('/ok', '/ok', '/gone', '/ok')
    work(limit=3)  # two done, one dead, one pending
    newer = new_job(label='empty')
    code, out, err = run('jobs', ini)
    assert (code, err) == (0, '')
    assert out.splitlines()[0].split() == [
        'JOB', 'QUEUE', 'LABEL', 'STATE', 'DONE', 'FAILED', 'PENDING',
        'TOTAL', 'CREATED']
    [first, second] = rows(out)
    assert first[:8] == [newer, 'default', 'empty', 'open', '0', '0', '0',
                         '0']
    assert second[:8] == [older, 'default', 'monthly', 'open', '2', '1',
                          '1', '4']
    assert '[' not in out  # no bar outside a terminal


def test_jobs_draws_a_bar_on_a_terminal(ini, run, monkeypatch):
    job_id = new_job('/ok', '/ok', '/gone', '/ok')
    work(limit=3)
    terminal = Terminal()
    monkeypatch.setattr(sys, 'stdout', terminal)
    assert run('jobs', ini)[0] == 0
    assert terminal.getvalue().splitlines()[0].split()[-1] == 'PROGRESS'
    [row] = [line for line in terminal.getvalue().splitlines()
             if line.startswith(job_id)]
    # Of 20 characters: 2/4 done, 1/4 failed, 1/4 pending.
    assert row.endswith('[##########!!!!!.....] 3/4  75%')
    terminal.seek(0)
    terminal.truncate()
    assert run('job', ini, job_id)[0] == 0
    assert 'progress:     [##########!!!!!.....] 3/4  75%' in \
        terminal.getvalue().splitlines()


def test_jobs_of_every_queue_or_of_one(ini, run):
    mail = new_job('/ok', queue='mail', label='mailing')
    default = new_job('/ok')
    code, out, _ = run('jobs', ini, '--json')
    assert [(job['id'], job['queue']) for job in json.loads(out)] == [
        (default, 'default'), (mail, 'mail')]
    code, out, _ = run('jobs', ini, '-q', 'mail', '--json')
    [only] = json.loads(out)
    assert (only['id'], only['label'], only['total'], only['pending']) == (
        mail, 'mailing', 1, 1)


def test_jobs_in_pages(ini, run):
    ids = [new_job('/ok', label=f'job{number}') for number in range(3)]
    code, out, _ = run('jobs', ini, '-q', 'default', '--limit', '2')
    assert [row[0] for row in rows(out)[:2]] == ids[:0:-1]
    assert out.rstrip().endswith('(more with --offset 2)')
    code, out, _ = run('jobs', ini, '-q', 'default', '--offset', '2')
    assert [row[0] for row in rows(out)] == ids[:1]
    code, out, _ = run('jobs', ini, '-q', 'default', '--offset', '3')
    assert (code, out) == (0, 'no jobs from offset 3\n')


def test_job_shows_one_job(ini, run):
    job_id = new_job('/ok', '/gone', queue='mail')
    work('mail')
    code, out, err = run('job', ini, job_id)
    assert (code, err) == (0, '')
    fields = dict(line.split(':', 1) for line in out.splitlines())
    assert {name: value.strip() for name, value in fields.items()
            if name in ('job', 'queue', 'label', 'state', 'total', 'done',
                        'failed', 'pending', 'closed', 'completed')} == {
        'job': job_id, 'queue': 'mail', 'label': 'monthly', 'state': 'open',
        'total': '2', 'done': '1', 'failed': '1', 'pending': '0',
        'closed': '-', 'completed': '-'}
    assert 'progress' not in fields  # not on a terminal
    code, out, _ = run('job', ini, job_id, '--json')
    assert json.loads(out) == taskqueue.job_status(job_id)


def test_job_close_commits_on_its_own_and_completes_the_job(ini, run):
    job_id = new_job('/ok', '/ok')
    work()
    status = taskqueue.job_status(job_id)
    assert (status['state'], status['pending']) == ('open', 0)
    # A transaction the caller left open neither delays nor undoes it.
    transaction.begin()
    code, out, err = run('job', ini, job_id, '--close')
    transaction.abort()
    assert (code, err) == (0, '')
    assert out.splitlines()[0] == f'closed job {job_id} of queue default'
    assert 'state:        complete' in out.splitlines()
    status = taskqueue.job_status(job_id)
    assert (status['state'], status['done']) == ('complete', 2)
    # Its on_complete task is pending, once.
    queue = wsgi_taskqueue.get_queue('default')
    assert pending_ids(queue) == [status['on_complete']]
    code, out, _ = run('job', ini, job_id, '--close', '--json')
    assert code == 0
    assert json.loads(out) == {'closed': False, 'job': status}
    code, out, _ = run('job', ini, job_id, '--close')
    assert out.splitlines()[0] == \
        f'job {job_id} of queue default was complete already'


def test_closing_a_job_with_tasks_left_leaves_it_closed(ini, run):
    job_id = new_job('/ok', '/ok')
    code, out, _ = run('job', ini, job_id, '--close', '--json')
    answer = json.loads(out)
    assert (code, answer['closed'], answer['job']['state'],
            answer['job']['pending']) == (0, True, 'closed', 2)
    assert answer['job']['closed'] is not None
    work()
    assert taskqueue.job_status(job_id)['state'] == 'complete'


def test_an_unknown_job_exits_1_naming_the_queues(ini, run):
    job_id = new_job(queue='mail')
    for argv in (['job', ini, 'ab' * 16], ['job', ini, 'ab' * 16, '--close'],
                 ['job', ini, job_id, '-q', 'default']):
        code, out, err = run(*argv)
        assert (code, out) == (1, '')
        assert err.startswith(f'wsgi-taskqueue: no job {argv[2]} in queue(s) ')
        assert 'never created there, or its record expired' in err
    assert 'queue(s) default, mail ' in run('job', ini, 'ab' * 16)[2]


@pytest.mark.parametrize('bad', ['xyz', 'AB12', '1' * 65, '', '../etc'])
def test_a_job_id_that_is_none_exits_2(ini, run, bad):
    code, out, err = run('job', ini, bad)
    assert (code, out) == (2, '')
    assert f'not a job id (hex digits): {bad!r}' in err


def test_the_bar_shares_its_width_by_done_failed_and_pending():
    assert console.bar(2, 1, 4, 20) == '[##########!!!!!.....]'
    assert console.bar(0, 0, 0, 4) == '[....]'
    assert console.bar(3, 0, 3, 4) == '[####]'
    assert console.bar(0, 3, 3, 3) == '[!!!]'
    assert console.bar(1, 0, 3, 10) == '[###.......]'
    # A malformed record's counts never draw past the brackets.
    assert console.bar(9, 9, 3, 6) == '[######]'
