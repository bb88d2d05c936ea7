"""Small WSGI apps the tests dispatch tasks into, and helpers around
them."""
import threading

import transaction

from wsgi_taskqueue import taskqueue


class RecordingApp:
    """Answers every request with ``status`` (or what ``respond`` says)
    and records the environ it saw."""

    def __init__(self, status='200 OK', headers=(), body=(b'ok',),
                 respond=None):
        self.status = status
        self.headers = list(headers)
        self.body = body
        self.respond = respond
        self.environs = []
        self.closed = 0
        self._changed = threading.Condition()

    def __call__(self, environ, start_response):
        environ['test.body'] = environ['wsgi.input'].read()
        with self._changed:
            self.environs.append(environ)
            self._changed.notify_all()
        status = self.respond(environ) if self.respond else self.status
        start_response(status, self.headers)
        return _ClosingIterable(self, self.body)

    def wait_for(self, count, timeout=10.0):
        """Wait until ``count`` requests were seen; return their environs."""
        with self._changed:
            if not self._changed.wait_for(
                    lambda: len(self.environs) >= count, timeout):
                raise AssertionError(
                    f'{len(self.environs)} requests seen, expected {count}')
            return list(self.environs)


class _ClosingIterable:
    def __init__(self, app, body):
        self.app = app
        self.body = body

    def __iter__(self):
        return iter(self.body)

    def close(self):
        self.app.closed += 1


def wait_until(condition, timeout=10.0, interval=0.01):
    """Poll ``condition`` until it is true; fail after ``timeout``."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'condition not met within {timeout}s')
        time.sleep(interval)


def add(*urls, **kwargs):
    """Add a task for each url in one committed transaction; their ids."""
    with transaction.manager:
        return [taskqueue.add(url, **kwargs) for url in urls]
