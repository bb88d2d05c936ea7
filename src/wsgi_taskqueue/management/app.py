"""The management WSGI app: routing, credentials, answers.

Mount it anywhere in a pipeline (it works under any ``SCRIPT_NAME``) or
serve it alone.  Routes are relative to where it is mounted; the JSON ones
are documented in ``openapi.yaml``.
"""
from __future__ import annotations

import json
import logging
import re
from importlib import resources

import webob

from .. import metrics
from ..errors import BackendUnavailable, UnknownQueue
from ..middleware import APP_ENVIRON_KEY
from ..registry import get_queue, queue_names
from . import api, dashboard, taskpage
from .auth import SESSION_COOKIE, Guard

__all__ = ['ManagementApp', 'SECURITY_HEADERS', 'CONTENT_SECURITY_POLICY']

log = logging.getLogger('wsgi_taskqueue.management')

_NOT_FOUND = json.dumps({'error': 'not found'}).encode()

#: The dashboard's own files are all a page of this app may load, run or
#: talk to; nothing inline runs, nothing may frame it, no form posts.  So
#: even markup that slipped into a page could not run a script.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'")

#: On every answer, HTML or not (an error, a JSON body opened in a tab):
#: nothing is cached, sniffed, framed, run but the dashboard's files, or
#: told where the user came from.
SECURITY_HEADERS = [
    ('Content-Security-Policy', CONTENT_SECURITY_POLICY),
    ('Cache-Control', 'no-store'),
    ('X-Content-Type-Options', 'nosniff'),
    ('X-Frame-Options', 'DENY'),
    ('Referrer-Policy', 'no-referrer'),
    ('Cross-Origin-Resource-Policy', 'same-origin'),
]


def _route(methods: str, pattern: str, handler):
    return (frozenset(methods.split()), re.compile(pattern + r'\Z'), handler)


class ManagementApp:
    """The HTTP API and dashboard over ``queues`` (None: every queue
    registered in this process, looked up at each request), for holders
    of ``api_key``; request bodies larger than ``max_body_size`` bytes are
    refused (413).  Drains run tasks in ``app`` (None: the app of the
    taskqueue filter or Pyramid tween the request came through) for
    ``drain_max_runtime`` seconds at most."""

    def __init__(self, api_key: str, queues: list[str] | None = None,
                 max_body_size: int = api.DEFAULT_MAX_BODY_SIZE, *,
                 app=None,
                 drain_max_runtime: float = api.DEFAULT_DRAIN_MAX_RUNTIME):
        self.guard = Guard(api_key)
        if isinstance(max_body_size, bool) \
                or not isinstance(max_body_size, int) or max_body_size < 1:
            raise ValueError(f'max_body_size must be a positive number of '
                             f'bytes, not {max_body_size!r}')
        self.max_body_size = max_body_size
        if isinstance(drain_max_runtime, bool) \
                or not isinstance(drain_max_runtime, (int, float)) \
                or not 0 < drain_max_runtime < float('inf'):
            raise ValueError(f'drain_max_runtime must be a positive number '
                             f'of seconds, not {drain_max_runtime!r}')
        self.drain_max_runtime = float(drain_max_runtime)
        if app is not None and not callable(app):
            raise ValueError(f'app must be a WSGI app, not {app!r}')
        self.app = app
        if queues is not None:
            queues = sorted(set(queues))
            for name in queues:
                get_queue(name)  # UnknownQueue now rather than at a request
        self.queues = queues
        self.routes = [
            _route('GET HEAD', '/', dashboard.page),
            _route('GET HEAD', '/panels', dashboard.panels),
            _route('GET HEAD', '/task/(?P<task_id>[^/]+)',
                   taskpage.task_page),
            _route('GET HEAD', r'/static/(?P<name>dashboard\.(?:js|css|svg))',
                   dashboard.static),
            _route('GET HEAD', '/openapi.yaml', _openapi),
            _route('GET HEAD', '/metrics', _metrics),
            _route('GET HEAD', '/status', _json(api.status)),
            _route('GET HEAD', '/tasks', _json(api.list_tasks)),
            _route('POST', '/tasks', _added),
            _route('GET HEAD', '/tasks/(?P<task_id>[^/]+)',
                   _json(api.get_task)),
            _route('GET HEAD', '/queues/(?P<queue>.+)/jobs',
                   _json(api.list_jobs)),
            _route('GET HEAD', '/queues/(?P<queue>.+)/jobs/(?P<job_id>[^/]+)',
                   _json(api.get_job)),
            _route('POST', '/queues/(?P<queue>.+)/jobs/(?P<job_id>[^/]+)/close',
                   _json(api.close_job, 'closed')),
            _route('GET HEAD', '/dead-letters', _json(api.list_dead_letters)),
            _route('POST', '/dead-letters/(?P<queue>.+)/(?P<letter>[0-9a-f]{32})'
                           '/requeue', _json(api.requeue_letter, 'requeued')),
            _route('POST', '/dead-letters/(?P<queue>.+)/purge',
                   _json(api.purge_letters, 'purged')),
            _route('POST', '/queues/(?P<queue>.+)/drain',
                   _json(api.drain, 'drained')),
        ]

    # -- what the handlers ask of the app ---------------------------------

    def queue_names(self) -> list[str]:
        return list(self.queues) if self.queues is not None \
            else queue_names()

    def default_queue(self) -> str | None:
        names = self.queue_names()
        return names[0] if names else None

    def backend(self, name: str | None, status: int = 404):
        """The queue ``name``, if this app shows it; else an APIError."""
        names = self.queue_names()
        if name not in names:
            raise api.APIError(status, str(UnknownQueue(name, names)))
        return get_queue(name)

    def task_app(self, request):
        """The app a drain runs tasks in; else an APIError (409)."""
        app = self.app or request.environ.get(APP_ENVIRON_KEY)
        if app is None:
            raise api.APIError(409, (
                'this management app does not know the app to run tasks '
                'in: give it to make_app(..., app=WSGI_APP) or as `app = '
                'package.module.name` in its ini section, or mount the '
                'management app behind the taskqueue filter (in Pyramid: '
                'in an app that includes wsgi_taskqueue; in Flask: in '
                'app.wsgi_app before TaskQueue(app) wraps it)'))
        return app

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = webob.Request(environ)
        response = self.respond(request)
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        return response(environ, start_response)

    def respond(self, request) -> webob.Response:
        path = request.path_info
        if path in ('', '/') and 'key' in request.GET \
                and request.method == 'GET':
            return self._sign_in(request)
        access = self.guard.check(request)
        if access is None:
            return not_found()
        if path == '':
            return _redirect(request.script_name + '/')
        allowed = set()
        for methods, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            if request.method not in methods:
                allowed |= methods
                continue
            if not access.may(request):
                return json_response(403, {
                    'error': 'missing or wrong X-CSRF-Token header (the '
                             'dashboard page holds the token)'})
            try:
                return handler(self, request, access, **match.groupdict())
            except api.APIError as exc:
                return json_response(exc.status, {'error': exc.message})
            except BackendUnavailable as exc:
                log.error('management %s %s: %s', request.method, path, exc)
                return json_response(503, {'error': str(exc)})
        if allowed:
            response = json_response(405, {'error': 'method not allowed'})
            response.allow = sorted(allowed)
            return response
        return not_found()

    def _sign_in(self, request) -> webob.Response:
        """``?key=KEY`` on the dashboard URL: a session cookie, and the
        same URL without the key (out of the address bar and history)."""
        if not self.guard.matches(request.GET['key']):
            return not_found()
        response = _redirect(request.script_name + '/')
        response.set_cookie(
            SESSION_COOKIE, self.guard.new_session(),
            path=request.script_name + '/', httponly=True,
            samesite='strict', secure=request.scheme == 'https')
        log.info('management: dashboard session started from %s',
                 request.remote_addr)
        return response


def json_response(status: int, body) -> webob.Response:
    return webob.Response(
        status=status, body=json.dumps(body).encode(),
        content_type='application/json', charset=None)


def not_found() -> webob.Response:
    """The one answer to anything unknown or unauthorized."""
    return webob.Response(status=404, body=_NOT_FOUND,
                          content_type='application/json', charset=None)


def _redirect(location: str) -> webob.Response:
    return webob.Response(status=303, location=location)


def _json(operation, action: str | None = None):
    def handler(app, request, access, **arguments):
        result = operation(app, request, **arguments)
        if action:
            log.info('management: %s %s (%s) from %s via %s', action,
                     arguments, result, request.remote_addr, access.via)
        return json_response(200, result)
    return handler


def _added(app, request, access):
    result, task_id = api.add_task(app, request)
    log.info('management: task %s queued on %r from %s via %s', task_id,
             result['queue'], request.remote_addr, access.via)
    response = json_response(201, result)
    response.location = f'{request.application_url}/tasks/{task_id}'
    return response


def _openapi(app, request, access):
    spec = resources.files(__package__).joinpath('openapi.yaml').read_bytes()
    return webob.Response(body=spec, content_type='application/yaml',
                          charset=None)


def _metrics(app, request, access):
    exposition = metrics.exposition(request.headers.get('Accept'))
    if exposition is None:
        raise api.APIError(404, 'metrics are not enabled in this process: '
                                'call wsgi_taskqueue.metrics.enable() or set '
                                '`metrics = true` in the app section')
    body, content_type = exposition
    response = webob.Response(body=body)
    response.headers['Content-Type'] = content_type
    return response
