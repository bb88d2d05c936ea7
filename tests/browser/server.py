"""An app, its consumer and the management app (mounted at /manage), served
by waitress on a Redis queue: what the browser test looks at.

    python server.py REDIS_URL PORT API_KEY [QUEUE ...]

With QUEUE names (a Cluster's queues spread over its primaries), one queue
and one consumer (``browser-test-QUEUE``) each, instead of ``default``.

The app's views, run as tasks:

=============  =============================================================
/job           waits until /open was called, then answers 200
/fail-once     answers 410 Gone the first time (dead-lettered at once), 200
               after that
=============  =============================================================

and, for the test: ``/open`` opens /job's gate, ``/runs`` lists what ran.
"""
from __future__ import annotations

import json
import sys
import threading

import waitress

import wsgi_taskqueue
from wsgi_taskqueue.management import make_app

#: Long enough for any test, short enough that a forgotten gate does not
#: hang the server's shutdown.
GATE_TIMEOUT = 60


class App:
    def __init__(self):
        self.gate = threading.Event()
        self.runs: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ['PATH_INFO']
        if path == '/open':
            self.gate.set()
            return _json(start_response, '200 OK', {'open': True})
        if path == '/runs':
            with self.lock:
                return _json(start_response, '200 OK', list(self.runs))
        task = environ.get(wsgi_taskqueue.ENVIRON_KEY)
        if task is None or path not in ('/job', '/fail-once'):
            return _json(start_response, '404 Not Found', {})
        with self.lock:
            earlier = sum(1 for run in self.runs if run['task'] == task.id)
            self.runs.append({'task': task.id, 'path': path,
                              'attempt': task.attempt})
        if path == '/job':
            self.gate.wait(GATE_TIMEOUT)
        if path == '/fail-once' and not earlier:
            return _json(start_response, '410 Gone',
                         {'error': 'gone <b>for now</b>'})
        return _json(start_response, '200 OK', {'ran': path})


def _json(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'),
                            ('Content-Length', str(len(data)))])
    return [data]


def mounted(app, management, prefix='/manage'):
    """``management`` under ``prefix``, ``app`` everywhere else."""
    def site(environ, start_response):
        path = environ.get('PATH_INFO', '')
        if path == prefix or path.startswith(prefix + '/'):
            environ['SCRIPT_NAME'] = environ.get('SCRIPT_NAME', '') + prefix
            environ['PATH_INFO'] = path[len(prefix):]
            return management(environ, start_response)
        return app(environ, start_response)
    return site


def main(redis_url: str, port: str, api_key: str, *queues: str) -> None:
    app = App()
    consumers = []
    for name in queues or ['default']:
        wsgi_taskqueue.register_queue(name, wsgi_taskqueue.RedisQueue(
            url=redis_url, secrets=['browser-test-secret']))
        consumers.append(wsgi_taskqueue.Consumer(
            app, queue=name, poll_interval=0.2,
            name='browser-test' + (f'-{name}' if queues else '')))
    for consumer in consumers:
        consumer.start()
    try:
        waitress.serve(mounted(app, make_app(api_key)),
                       listen=f'127.0.0.1:{port}', threads=4)
    finally:
        app.gate.set()
        for consumer in consumers:
            consumer.stop(5)


if __name__ == '__main__':
    main(*sys.argv[1:])
