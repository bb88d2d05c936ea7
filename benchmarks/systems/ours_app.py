"""The WSGI app of our rows: as small as an app on WebOb gets.

``/job?i=I&sent=S`` is the task every ``ours*`` row dispatches: its view
records job ``I`` in the probe, like the peers' no-op jobs.
``/enqueue?tasks=K`` is the web request of the commit-overhead table: it
adds ``K`` tasks to the request's transaction.

Worker processes import this module, not :mod:`systems.ours`, which
registers the harness's queue: theirs comes from their ini file.
"""
from __future__ import annotations

import logging

import webob

from wsgi_taskqueue import taskqueue

from systems import probe


def add(i: int, sent: float, **options) -> None:
    """Add the task of job ``i`` to the current transaction, with task
    ``options`` if any."""
    taskqueue.add('/job', params={'i': i, 'sent': sent}, payload=None,
                  **options)


def app(environ, start_response):
    request = webob.Request(environ)
    if request.path_info == '/job':
        probe.record(int(request.GET['i']), float(request.GET['sent']))
    else:
        for i in range(int(request.GET['tasks'])):
            add(i, 0.0)
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', '0')])
    return []


def app_factory(global_conf, **settings):
    """PasteDeploy factory (``use = call:systems.ours_app:app_factory``).

    The peers' workers log at warning level, so that no per-job log line
    is measured; ``wsgi-taskqueue`` logs each task at info level and has no
    option to log less, hence this.
    """
    logging.getLogger('wsgi_taskqueue').setLevel(logging.WARNING)
    return app
