"""The app the fault tests serve and run tasks of, and its ledger.

==============  ==============================================================
POST /enqueue   adds ``count`` tasks for /task in the request's transaction
                (the filter manages it: ``manage_transaction = true``);
                answers ``{"request": ..., "tasks": [ids]}`` only once the
                transaction committed (a failed commit is a 500).
                Parameters: ``request`` (the client's name for the request),
                ``count``, and for the tasks ``block`` (a flag name),
                ``work`` (seconds), ``die`` and ``mark`` (ignored: bytes
                by which proxy.py recognizes the task's message), ``fail=1``
                (the task answers 400: dead-lettered at once).  With
                ``copy=1`` the tasks copy the request's body (else they
                have none); a task ``add`` refuses answers 400 with why.
                ``join=1`` joins a second resource that does nothing (as
                an SQL session would), so that both shapes of transaction
                are exercised: tasks alone, and tasks beside another
                resource.  ``crash=1`` SIGKILLs
                this process after every resource voted yes, before the
                staged batch is promoted (see CrashAfterVote).
POST /task      the task; 404 unless it runs as a task.  With ``block`` it
                records a start, then waits until the test raises the flag
                (creates the file ``<flags>/<block>``); with ``work`` it
                works that long; then it records its run.  With ``die=1``
                it records a start and SIGKILLs the process running it.
                Every run records what the request carried in ``seen``.
POST /plan      a task of a job (``X-Task-Job-Id``) planning chunk ``chunk``
                of ``chunks``: it adds ``size`` tasks for /jobtask and the
                planner of the next chunk to the job, or closes the job
                after the last chunk; every task it adds is named after
                the job and its place, so a planner run again adds nothing
                new.  Records its run.
POST /jobtask   a task of a job: records its run.
GET /jobdone    a job's on_complete task: records the counts it carries in
                ``completions``.
==============  ==============================================================

Everything that happens is counted in a SQLite file (WAL mode) that every
process of a test shares; see Ledger.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time

import transaction
import webob
import webob.dec
import webob.exc

from wsgi_taskqueue import InvalidTask, current_task, taskqueue

#: How long a blocked task waits for its flag before it gives up (a test
#: that forgets to raise it fails long before).
BLOCK_LIMIT = 120.0
#: The flag that releases every blocked task (raised at a test's end, so
#: that stopping its workers does not wait for tasks nobody released).
RELEASE_ALL = 'ALL'

SCHEMA = """
CREATE TABLE IF NOT EXISTS added (
    request TEXT NOT NULL, task_id TEXT NOT NULL, pid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS committed (
    request TEXT NOT NULL, task_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS starts (
    task_id TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL,
    at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    task_id TEXT NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL,
    at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS callbacks (
    parent TEXT NOT NULL, outcome TEXT NOT NULL, status TEXT NOT NULL,
    user TEXT, pid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS completions (
    job TEXT NOT NULL, total TEXT, done TEXT, failed TEXT,
    pid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seen (
    task_id TEXT NOT NULL, queue TEXT NOT NULL, user TEXT,
    headers TEXT NOT NULL);
"""


class Ledger:
    """What happened, in a SQLite file shared by every process of a test.

    ``added``: each task id an enqueue request added, written at once
    (outside the transaction), so a test knows the ids of a request that
    died or failed.  ``committed``: written by an after-commit hook, only
    when the request's transaction committed.  ``starts``: a blocking task
    began.  ``runs``: a task finished (one row per run, with the pid of the
    process that ran it).
    """

    def __init__(self, path: str):
        self.path = path
        self._local = threading.local()
        db = self._db()
        db.execute('PRAGMA journal_mode=WAL')
        db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode: each INSERT is a
        transaction of its own.  A long busy timeout, so that concurrent
        writers of several processes queue up instead of failing."""
        db = getattr(self._local, 'db', None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            # WAL with NORMAL is durable against a killed process (only an
            # OS crash may lose the last commits), and much faster.
            db.execute('PRAGMA synchronous=NORMAL')
            self._local.db = db
        return db

    def write(self, sql: str, rows) -> None:
        db = self._db()
        db.execute('BEGIN IMMEDIATE')
        try:
            db.executemany(sql, rows)
        except BaseException:
            db.execute('ROLLBACK')
            raise
        db.execute('COMMIT')

    def query(self, sql: str, *args) -> list:
        return self._db().execute(sql, args).fetchall()

    def close(self) -> None:
        db = getattr(self._local, 'db', None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- for the tests ---------------------------------------------------

    def added(self, request: str | None = None) -> list[str]:
        if request is None:
            return [r[0] for r in self.query('SELECT task_id FROM added')]
        return [r[0] for r in self.query(
            'SELECT task_id FROM added WHERE request = ?', request)]

    def committed(self) -> set[str]:
        return {r[0] for r in self.query('SELECT task_id FROM committed')}

    def runs(self, task_id: str | None = None) -> list[tuple]:
        """(task_id, attempt, pid) of each run, oldest first."""
        if task_id is None:
            return self.query('SELECT task_id, attempt, pid FROM runs'
                              ' ORDER BY rowid')
        return self.query('SELECT task_id, attempt, pid FROM runs'
                          ' WHERE task_id = ? ORDER BY rowid', task_id)

    def seen(self, task_id: str) -> list[tuple]:
        """(queue, user, headers) of each run of ``task_id``: the queue it
        ran from, its REMOTE_USER, and its HTTP_* environ keys and
        values."""
        return [(queue, user, json.loads(headers)) for queue, user, headers
                in self.query('SELECT queue, user, headers FROM seen'
                              ' WHERE task_id = ? ORDER BY rowid', task_id)]

    def callbacks(self) -> list[tuple]:
        """(parent task id, outcome, status line, user) of each run of a
        completion callback, oldest first."""
        return self.query('SELECT parent, outcome, status, user'
                          ' FROM callbacks ORDER BY rowid')

    def completions(self) -> list[tuple]:
        """(job id, total, done, failed) of each run of a job's
        on_complete task, oldest first."""
        return self.query('SELECT job, total, done, failed FROM completions'
                          ' ORDER BY rowid')

    def starts(self, task_id: str) -> list[tuple]:
        return self.query('SELECT task_id, attempt, pid FROM starts'
                          ' WHERE task_id = ? ORDER BY rowid', task_id)

    def pids_since(self, since: float) -> set[int]:
        """The processes that finished a task after ``since``."""
        return {r[0] for r in self.query(
            'SELECT DISTINCT pid FROM runs WHERE at > ?', since)}

    def ran_count(self) -> int:
        """How many distinct tasks ran."""
        return self.query('SELECT COUNT(DISTINCT task_id) FROM runs')[0][0]


class Bystander:
    """A transaction resource that commits nothing, as an SQL session
    with nothing to write: the tasks share their transaction with it (a
    transaction of tasks alone must be just as safe: an earlier design
    pushed those in the vote, and lost replies made phantoms of them)."""

    transaction_manager = transaction.manager

    def sortKey(self) -> str:
        return '~~bystander'

    def abort(self, txn) -> None:
        pass

    def tpc_begin(self, txn) -> None:
        pass

    def commit(self, txn) -> None:
        pass

    def tpc_vote(self, txn) -> None:
        pass

    def tpc_finish(self, txn) -> None:
        pass

    def tpc_abort(self, txn) -> None:
        pass


class CrashAfterVote(Bystander):
    """A transaction resource whose ``tpc_finish`` SIGKILLs the process.

    Its sort key sorts after the task data manager's
    (``wsgi_taskqueue:<batch>``), so by then every resource voted yes (the
    tasks are staged in Redis) and finished; the after-commit hook that
    promotes the staged batch never runs.
    """

    def sortKey(self) -> str:
        return '~~crash'

    def tpc_finish(self, txn) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


class FaultApp:

    def __init__(self, ledger: Ledger, flags: str):
        self.ledger = ledger
        self.flags = flags

    @webob.dec.wsgify
    def __call__(self, request: webob.Request):
        if request.method == 'POST' and request.path_info == '/enqueue':
            return self.enqueue(request)
        if request.method == 'POST' and request.path_info == '/task':
            return self.task(request)
        if request.method == 'GET' and request.path_info == '/callback':
            return self.callback(request)
        if request.method == 'POST' and request.path_info == '/plan':
            return self.plan(request)
        if request.method == 'POST' and request.path_info == '/jobtask':
            return self.job_task(request)
        if request.method == 'GET' and request.path_info == '/jobdone':
            return self.job_done(request)
        return webob.exc.HTTPNotFound()

    def enqueue(self, request):
        name = request.GET['request']
        count = int(request.GET.get('count', '1'))
        params = {key: request.GET[key] for key in ('block', 'work', 'die',
                                                    'mark', 'fail')
                  if key in request.GET}
        body = {} if request.GET.get('copy') == '1' else {'payload': None}
        if request.GET.get('keep_result') == '1':
            body['keep_result'] = True
        try:
            ids = [taskqueue.add('/task', method='POST', params=params, **body)
                   for _ in range(count)]
        except InvalidTask as exc:
            return webob.exc.HTTPBadRequest(str(exc))
        pid = os.getpid()
        self.ledger.write('INSERT INTO added VALUES (?, ?, ?)',
                          [(name, task_id, pid) for task_id in ids])
        txn = transaction.get()
        # Added after the task data manager's promotion hook: runs after it.
        txn.addAfterCommitHook(self._committed, args=(name, ids))
        if request.GET.get('join') == '1':
            txn.join(Bystander())
        if request.GET.get('crash') == '1':
            txn.join(CrashAfterVote())
        return webob.Response(json_body={'request': name, 'tasks': ids})

    def _committed(self, committed: bool, name: str, ids: list) -> None:
        if committed:
            self.ledger.write('INSERT INTO committed VALUES (?, ?)',
                              [(name, task_id) for task_id in ids])

    def task(self, request):
        task = current_task(request)
        if task is None:
            return webob.exc.HTTPNotFound()
        row = (task.id, task.attempt, os.getpid(), time.time())
        if request.GET.get('die') == '1':
            self.ledger.write('INSERT INTO starts VALUES (?, ?, ?, ?)', [row])
            os.kill(os.getpid(), signal.SIGKILL)
        # Killed between the task's end and its acknowledgement, on its
        # first delivery: the response's close() is the last the
        # dispatcher does before the consumer settles the task.
        ends_in_death = request.GET.get('die_after') == '1' and not \
            self.ledger.starts(task.id)
        if request.GET.get('die_after') == '1':
            self.ledger.write('INSERT INTO starts VALUES (?, ?, ?, ?)', [row])
        block = request.GET.get('block')
        if block:
            self.ledger.write('INSERT INTO starts VALUES (?, ?, ?, ?)', [row])
            flag = os.path.join(self.flags, block)
            deadline = time.monotonic() + BLOCK_LIMIT
            while not (os.path.exists(flag) or os.path.exists(
                    os.path.join(self.flags, RELEASE_ALL))):
                if time.monotonic() > deadline:
                    return webob.exc.HTTPInternalServerError(
                        f'flag {block} never raised')
                time.sleep(0.01)
        work = float(request.GET.get('work', '0'))
        if work:
            time.sleep(work)  # the task's "work"
        self.ledger.write('INSERT INTO seen VALUES (?, ?, ?, ?)', [(
            task.id, request.headers['X-Task-Queue'], request.remote_user,
            json.dumps({key: value for key, value in request.environ.items()
                        if key.startswith('HTTP_')}))])
        if request.GET.get('fail') == '1':
            response = webob.exc.HTTPBadRequest('failed on purpose')
        else:
            self.ledger.write('INSERT INTO runs VALUES (?, ?, ?, ?)', [
                (task.id, task.attempt, os.getpid(), time.time())])
            response = webob.Response('done', content_type='text/plain')
        if ends_in_death:
            response = _DyingOnClose(response)
        return response

    def callback(self, request):
        task = current_task(request)
        if task is None:
            return webob.exc.HTTPNotFound()
        self.ledger.write('INSERT INTO callbacks VALUES (?, ?, ?, ?, ?)', [(
            request.headers['X-Task-Parent-Id'],
            request.headers['X-Task-Parent-Outcome'],
            request.headers['X-Task-Parent-Status'], request.remote_user,
            os.getpid())])
        return webob.Response('noted', content_type='text/plain')


    def plan(self, request):
        task = current_task(request)
        if task is None:
            return webob.exc.HTTPNotFound()
        job = request.headers['X-Task-Job-Id']
        chunk, chunks, size = (int(request.GET[key])
                               for key in ('chunk', 'chunks', 'size'))
        for number in range(size):
            taskqueue.add('/jobtask', method='POST', payload=None, job=job,
                          name=f'{job}-{chunk}-{number}')
        if chunk + 1 < chunks:
            taskqueue.add('/plan', method='POST', payload=None, job=job,
                          name=f'{job}-plan-{chunk + 1}',
                          params=dict(request.GET, chunk=chunk + 1))
        else:
            taskqueue.close_job(job)
        return self.job_task(request)

    def job_task(self, request):
        task = current_task(request)
        if task is None:
            return webob.exc.HTTPNotFound()
        self.ledger.write('INSERT INTO runs VALUES (?, ?, ?, ?)', [
            (task.id, task.attempt, os.getpid(), time.time())])
        return webob.Response('done', content_type='text/plain')

    def job_done(self, request):
        if current_task(request) is None:
            return webob.exc.HTTPNotFound()
        self.ledger.write('INSERT INTO completions VALUES (?, ?, ?, ?, ?)', [(
            request.headers['X-Task-Job-Id'],
            request.headers.get('X-Task-Job-Total'),
            request.headers.get('X-Task-Job-Done'),
            request.headers.get('X-Task-Job-Failed'), os.getpid())])
        return webob.Response('noted', content_type='text/plain')


class _DyingOnClose:
    """A WSGI app answering as ``response`` does, whose body's close()
    kills the process."""

    def __init__(self, response):
        self.response = response

    def __call__(self, environ, start_response):
        return _KillOnClose(self.response(environ, start_response))


class _KillOnClose:
    def __init__(self, body):
        self.body = body

    def __iter__(self):
        return iter(self.body)

    def close(self):
        os.kill(os.getpid(), signal.SIGKILL)


def app_factory(global_conf, db: str, flags: str):
    """``paste.app_factory`` (``use = call:faults.faultapp:app_factory``)."""
    return FaultApp(Ledger(db), flags)
