"""Replays a task as a WSGI request against the app.

The environ is built directly (it is the WSGI spec's dict, and building it
by hand keeps the per-task cost small); the response body is read to the
end and closed, as WSGI requires, before the outcome is decided.
"""
from __future__ import annotations

import dataclasses
import io
import sys
import traceback
import urllib.parse

from . import __version__
from .options import NO_OPTIONS, dispatch_headers
from .registry import get_queue

__all__ = ['Dispatcher', 'Result', 'ENVIRON_KEY', 'USER_AGENT']

#: The environ key holding the running Task; only the dispatcher sets it.
ENVIRON_KEY = 'wsgi_taskqueue.task'
USER_AGENT = f'wsgi-taskqueue/{__version__}'

#: How much of a failing response's body a dead letter keeps.
_BODY_EXCERPT = 2048


@dataclasses.dataclass
class Result:
    """What the app answered to one task."""

    #: The status line, e.g. ``'200 OK'``; None when the app raised or
    #: never called start_response.
    status: str | None
    headers: list = dataclasses.field(default_factory=list)
    #: Traceback or a body excerpt that explains a failure.
    error: str | None = None
    #: The beginning of the body, when the caller asked to keep it, and
    #: the size of the whole body.
    body: bytes = b''
    size: int = 0

    @property
    def status_code(self) -> int | None:
        try:
            return int(self.status.split(None, 1)[0]) if self.status else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class Dispatcher:
    """Calls ``app`` with the request a task describes."""

    def __init__(self, app):
        self.app = app

    def environ(self, task) -> dict:
        path, _, query = task.url.partition('?')
        host = task.environ.get('HTTP_HOST', 'localhost')
        server_name, _, server_port = host.rpartition(':')
        if not server_name or not server_port.isdigit():
            server_name = host
            server_port = '443' if task.url_scheme == 'https' else '80'
        environ = dict(task.environ)
        environ.update({
            'REQUEST_METHOD': task.method,
            'SCRIPT_NAME': task.script_name,
            'PATH_INFO': urllib.parse.unquote_to_bytes(path).decode('latin-1'),
            'QUERY_STRING': query,
            'SERVER_NAME': server_name,
            'SERVER_PORT': server_port,
            'SERVER_PROTOCOL': 'HTTP/1.1',
            'REMOTE_ADDR': '127.0.0.1',
            'CONTENT_LENGTH': str(len(task.payload)),
            'HTTP_USER_AGENT': USER_AGENT,
            'HTTP_X_TASK_ID': task.id,
            'HTTP_X_TASK_QUEUE': task.queue,
            'HTTP_X_TASK_RETRY_COUNT': str(task.attempt - 1),
            'wsgi.version': (1, 0),
            'wsgi.url_scheme': task.url_scheme,
            'wsgi.input': io.BytesIO(task.payload),
            'wsgi.errors': sys.stderr,
            'wsgi.multithread': True,
            'wsgi.multiprocess': True,
            'wsgi.run_once': False,
            ENVIRON_KEY: task,
        })
        if task.options is not NO_OPTIONS:
            environ.update(dispatch_headers(task.options))
        if task.parent is not None:
            # A completion callback: what it reports on (signed, and
            # X-Task-* cannot come from the network: trustworthy).
            environ['HTTP_X_TASK_PARENT_ID'] = task.parent['id']
            environ['HTTP_X_TASK_PARENT_OUTCOME'] = task.parent['outcome']
            environ['HTTP_X_TASK_PARENT_STATUS'] = task.parent['status']
        if task.job_marker is not None:
            environ.update(_job_counts(task))
        if task.user_id is not None:
            environ['REMOTE_USER'] = task.user_id
            # collective.taskqueue's header; trustworthy because the user
            # id is signed in the message and the filter (or the Zope
            # hooks) strip X-Task-* from network requests.
            environ['HTTP_X_TASK_USER_ID'] = task.user_id
        return environ

    def __call__(self, task, keep: int | None = None) -> Result:
        """Run ``task``; keep up to ``keep`` bytes of its body in the
        Result (None: none)."""
        result = Result(None)

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and result.status is not None:
                raise exc_info[1].with_traceback(exc_info[2])
            result.status = status
            result.headers = headers
            return _discard

        try:
            body = self.app(self.environ(task), start_response)
            try:
                excerpt = 0 if _succeeded(result) else _BODY_EXCERPT
                kept, result.size = _read(body, max(excerpt, keep or 0))
            finally:
                close = getattr(body, 'close', None)
                if close is not None:
                    close()
        except Exception:
            result.error = traceback.format_exc()
            result.status = None
            return result
        if keep is not None:
            result.body = bytes(kept[:keep])
        if result.status is None:
            result.error = 'the app never called start_response'
        elif excerpt and kept:
            result.error = kept[:excerpt].decode('utf-8', 'replace')
        return result


def _job_counts(task) -> dict:
    """What the on_complete task of a job sees of it: the counts of its
    record, final since it completed (``jobs.py``)."""
    status = get_queue(task.queue).job_status(task.options.job)
    if status is None:
        return {}
    return {'HTTP_X_TASK_JOB_TOTAL': str(status['total']),
            'HTTP_X_TASK_JOB_DONE': str(status['done']),
            'HTTP_X_TASK_JOB_FAILED': str(status['failed'])}


def _discard(data) -> None:
    """The ``write`` callable of start_response: the body is not kept."""


def _succeeded(result: Result) -> bool:
    return result.status is not None and result.status.startswith('2')


def _read(body, keep: int) -> tuple[bytearray, int]:
    """Read ``body`` to the end; return its first ``keep`` bytes and its
    size."""
    kept = bytearray()
    size = 0
    for chunk in body:
        size += len(chunk)
        if len(kept) < keep:
            kept += chunk[:keep - len(kept)]
    return kept, size
