"""The demo app (``egg:wsgi-taskqueue#demo``): the queue at work, in a browser.

===============  =============================================================
GET /            a page to enqueue tasks and watch their runs (it refreshes
                 itself every second)
POST /enqueue    adds ``count`` tasks for /work in the request's transaction,
                 with the task options its other fields give (``priority``,
                 ``countdown``, ``name``, ``label``, ``eta``)
POST /lifecycle  adds a task that fails twice (503) before it succeeds, and
                 one the app refuses (400), which becomes a dead letter
POST /work       the task: records its run; 404 unless it runs as a task
GET /runs.json   the runs, newest first (``?limit=N``), for scripts and tests
/dashboard/      the management app (dashboard and JSON API) of this
                 process, when ``dashboard_key`` is set
===============  =============================================================

Runs go to a SQLite file (the ``runs_db`` setting), not to memory, so that
a separate worker process records them where the web process reads them.
Plain WSGI has no transaction manager: serve the demo behind the filter with
``manage_transaction = true``.
"""
from __future__ import annotations

import contextlib
import html
import os
import sqlite3
import string
import time

import webob
import webob.dec
import webob.exc

from . import taskqueue
from .errors import InvalidTask
from .guard import current_task
from .options import OPTIONS

__all__ = ['app_factory', 'DemoApp', 'RunLog']

#: Enough to see batches spread over the consumers; more is a load test,
#: which is what benchmarks/ is for.
MAX_COUNT = 1000

#: The cookie that remembers the name typed into the form.
USER_COOKIE = 'demo_user'

#: How many times the flaky task of /lifecycle fails before it succeeds.
FLAKY_FAILURES = 2


class RunLog:
    """The task runs, in a SQLite file every process of the demo shares."""

    def __init__(self, path: str):
        self.path = path
        with self._db() as db:
            # WAL: the page reads while consumer threads and worker
            # processes write, and none of them waits for the others.
            db.execute('PRAGMA journal_mode=WAL')
            db.execute('CREATE TABLE IF NOT EXISTS runs ('
                       ' id INTEGER PRIMARY KEY AUTOINCREMENT,'
                       ' task_id TEXT NOT NULL, attempt INTEGER NOT NULL,'
                       ' user TEXT, item TEXT, pid INTEGER NOT NULL,'
                       ' ran_at REAL NOT NULL)')

    @contextlib.contextmanager
    def _db(self):
        """A connection per use: cheap for SQLite, and safe in any thread.

        A busy timeout longer than any write takes, so concurrent writers
        queue up instead of failing.
        """
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # commits, or rolls back on an exception
                yield db
        finally:
            db.close()

    def record(self, task, user: str | None, item: str | None) -> None:
        with self._db() as db:
            db.execute('INSERT INTO runs (task_id, attempt, user, item, pid,'
                       ' ran_at) VALUES (?, ?, ?, ?, ?, ?)',
                       (task.id, task.attempt, user, item, os.getpid(),
                        time.time()))

    def summary(self, limit: int | None = None) -> dict:
        """The number of runs, per process too, and the newest ``limit``
        runs (all when None)."""
        with self._db() as db:
            count = db.execute('SELECT COUNT(*) FROM runs').fetchone()[0]
            processes = dict(db.execute(
                'SELECT pid, COUNT(*) FROM runs GROUP BY pid').fetchall())
            runs = db.execute(
                'SELECT task_id, attempt, user, item, pid, ran_at FROM runs'
                ' ORDER BY id DESC LIMIT ?',
                (-1 if limit is None else limit,)).fetchall()
        return {'count': count, 'processes': processes,
                'runs': [dict(run) for run in runs]}


class DemoApp:
    """The routes of the module docstring."""

    def __init__(self, runs: RunLog, dashboard_key: str | None = None):
        self.runs = runs
        self.dashboard_key = dashboard_key
        self.dashboard = None
        if dashboard_key:
            from .management import make_app
            self.dashboard = make_app(dashboard_key)
        self.routes = {
            ('GET', '/'): self.page,
            ('POST', '/enqueue'): self.enqueue,
            ('POST', '/lifecycle'): self.lifecycle,
            ('POST', '/work'): self.work,
            ('GET', '/runs.json'): self.runs_json,
        }

    @webob.dec.wsgify
    def __call__(self, request: webob.Request):
        if self.dashboard is not None and (
                request.path_info + '/').startswith('/dashboard/'):
            request.path_info_pop()
            return request.get_response(self.dashboard)
        route = self.routes.get((request.method, request.path_info))
        if route is None:
            return webob.exc.HTTPNotFound()
        return route(request)

    def page(self, request):
        user = request.cookies.get(USER_COOKIE, '')
        dashboard = ''
        if self.dashboard is not None:
            # The demo's key in its own page: fine for a demo on
            # 127.0.0.1, never for an app (see the operations guide).
            link = html.escape(f'dashboard/?key={self.dashboard_key}')
            dashboard = (f'<p><a href="{link}">The dashboard</a>: queues, '
                         f'consumers, tasks, retries and dead letters.</p>')
        page = PAGE.substitute(user=html.escape(user), max_count=MAX_COUNT,
                               dashboard=dashboard)
        return webob.Response(page, content_type='text/html',
                              charset='utf-8')

    def enqueue(self, request):
        try:
            count = int(request.POST.get('count', '1'))
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_COUNT:
            return webob.exc.HTTPBadRequest(
                f'count must be a number from 1 to {MAX_COUNT}')
        user = request.POST.get('user', '').strip()
        if user:
            # Stands in for an auth middleware: add() reads REMOTE_USER
            # and the task runs as the same user.
            request.remote_user = user
        try:
            options = {name: option.from_text(request.POST[name].strip())
                       for name, option in OPTIONS.items()
                       if request.POST.get(name, '').strip()}
            for item in range(1, count + 1):
                # payload=None: the form's body is of no use to the task.
                taskqueue.add('/work', method='POST', payload=None,
                              params={'item': f'{item}/{count}'}, **options)
        except InvalidTask as exc:
            # A 4xx: the filter aborts the transaction, and with it the
            # tasks added before.
            return webob.exc.HTTPBadRequest(str(exc))
        response = webob.exc.HTTPSeeOther(
            location=request.application_url + '/')
        response.set_cookie(USER_COOKIE, user or None)  # None: delete it
        return response

    def lifecycle(self, request):
        """A task that is retried, and one that is dead-lettered."""
        taskqueue.add('/work', method='POST', payload=None,
                      params={'item': 'flaky', 'fail': FLAKY_FAILURES})
        taskqueue.add('/work', method='POST', payload=None,
                      params={'item': 'refused', 'refuse': 'yes'})
        return webob.exc.HTTPSeeOther(location=request.application_url + '/')

    def work(self, request):
        task = current_task(request)
        if task is None:
            # Only the consumer may run it; the filter has stripped any
            # X-Task-* header, so a network request cannot pose as a task.
            return webob.exc.HTTPNotFound()
        item = request.GET.get('item')
        if request.GET.get('refuse'):
            # Another 4xx than 408, 409, 423 or 429: dead-lettered at once.
            self.runs.record(task, request.remote_user, f'{item}: 400, dead')
            return webob.Response('refused on purpose\n', status=400,
                                  content_type='text/plain')
        if task.attempt <= int(request.GET.get('fail', 0)):
            # 503: retried after a delay that doubles each time.
            self.runs.record(task, request.remote_user, f'{item}: 503, retried')
            return webob.Response('failing on purpose\n', status=503,
                                  content_type='text/plain')
        self.runs.record(task, request.remote_user, item)
        return webob.Response('recorded', content_type='text/plain')

    def runs_json(self, request):
        try:
            limit = int(request.GET['limit']) if 'limit' in request.GET else None
        except ValueError:
            return webob.exc.HTTPBadRequest('limit must be a number')
        return webob.Response(json_body=self.runs.summary(limit))


def app_factory(global_conf, runs_db: str | None = None,
                dashboard_key: str | None = None):
    """``paste.app_factory``: ``runs_db`` is the SQLite file of the runs,
    by default ``demo-runs.sqlite`` beside the ini file; ``dashboard_key``
    serves the management app at /dashboard/ with that API key."""
    here = global_conf.get('here', os.getcwd())
    return DemoApp(RunLog(runs_db or os.path.join(here, 'demo-runs.sqlite')),
                   dashboard_key)


PAGE = string.Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>wsgi-taskqueue demo</title>
<style>
 body { font-family: sans-serif; margin: 2em; }
 th, td { padding: .2em .8em; text-align: left; }
 td { font-family: monospace; }
</style></head>
<body>
<h1>wsgi-taskqueue demo</h1>
$dashboard
<form method="post" action="enqueue">
 <label>Tasks <input name="count" type="number" min="1" max="$max_count"
  value="10"></label>
 <label>as user <input name="user" value="$user"></label>
 <label>priority <input name="priority" type="number" min="0" max="9"
  placeholder="5"></label>
 <label>in <input name="countdown" type="number" min="0" placeholder="0">
  seconds</label>
 <button>Enqueue them in one transaction</button>
</form>
<form method="post" action="lifecycle">
 <button>Enqueue a task that fails twice, then succeeds, and one the app
  refuses</button> (retried with backoff; a dead letter)
</form>
<p><b id="count">0</b> runs recorded; by process id: <span id="processes">
</span></p>
<table><thead><tr><th>task id</th><th>item</th><th>attempt</th><th>user</th>
<th>process</th><th>ran at</th></tr></thead><tbody id="runs"></tbody></table>
<script>
function cell(row, text) {
  row.insertCell().textContent = text === null ? '-' : text;
}
async function refresh() {
  const data = await (await fetch('runs.json?limit=25')).json();
  document.getElementById('count').textContent = data.count;
  document.getElementById('processes').textContent = Object.entries(
    data.processes).map(([pid, n]) => pid + ': ' + n).join(', ');
  const body = document.getElementById('runs');
  body.replaceChildren();
  for (const run of data.runs) {
    const row = body.insertRow();
    for (const key of ['task_id', 'item', 'attempt', 'user', 'pid']) {
      cell(row, run[key]);
    }
    cell(row, new Date(run.ran_at * 1000).toLocaleTimeString());
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
""")
