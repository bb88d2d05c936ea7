"""Operating the queues over HTTP: a JSON API and a live dashboard.

One WSGI app, protected by an API key (see ``auth``): mount it in the
application's pipeline, serve it with ``wsgi-taskqueue dashboard``, or load
it from an ini file::

    [app:management]
    use = egg:wsgi-taskqueue#management
    api_key = a-long-random-string  ; 16 characters at least
    ; queues = default mailhost     ; default: every configured queue
    ; metrics = true                ; GET /metrics for Prometheus
    ; max_body_size = 16777216      ; bytes of a request body, at most
    ; drain_max_runtime = 60        ; seconds a drain over HTTP runs, at most
    ; app = myapp.wsgi.application  ; the app drains run tasks in (default:
    ;                               ; that of the taskqueue filter in front)

The JSON API is documented in ``openapi.yaml``, shipped beside this module
and served at ``GET openapi.yaml``.
"""
from __future__ import annotations

import pkgutil

from ..config import configure
from ..errors import ConfigurationError
from ..settings import as_bool, at_least, convert, positive
from .api import DEFAULT_DRAIN_MAX_RUNTIME, DEFAULT_MAX_BODY_SIZE
from .app import ManagementApp
from .auth import Guard

__all__ = ['make_app', 'app_factory', 'ManagementApp', 'SETTINGS']


def make_app(api_key: str, queues: list[str] | None = None, *,
             max_body_size: int = DEFAULT_MAX_BODY_SIZE, app=None,
             drain_max_runtime: float = DEFAULT_DRAIN_MAX_RUNTIME
             ) -> ManagementApp:
    """The management app over ``queues`` (None: every queue registered in
    this process, at each request), for holders of ``api_key`` (at least
    ``auth.MIN_KEY_LENGTH`` characters: ValueError otherwise), refusing
    request bodies over ``max_body_size`` bytes.  Its drains (``POST
    queues/{queue}/drain``) run tasks in ``app``, the WSGI app a worker
    would dispatch into (None: the app of the taskqueue filter or Pyramid
    tween in front of the management app), ``drain_max_runtime`` seconds
    at most."""
    return ManagementApp(api_key, queues, max_body_size, app=app,
                         drain_max_runtime=drain_max_runtime)


def _names(text: str) -> list[str] | None:
    return text.split() or None


def _wsgi_app(dotted: str):
    """The object a dotted name (``package.module.name`` or
    ``package.module:name``) names, imported: a WSGI app."""
    try:
        app = pkgutil.resolve_name(str(dotted).strip())
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f'cannot import it: {exc}') from None
    if not callable(app):
        raise ValueError('it is not a WSGI app (not callable)')
    return app


#: The keys of the app's ini section: (converter, default).
SETTINGS = {
    'api_key': (str, None),
    'queues': (_names, None),
    'metrics': (as_bool, False),
    'max_body_size': (at_least(1, int), DEFAULT_MAX_BODY_SIZE),
    'drain_max_runtime': (positive, DEFAULT_DRAIN_MAX_RUNTIME),
    'app': (_wsgi_app, None),
}


def app_factory(global_conf, **settings) -> ManagementApp:
    """``paste.app_factory``: ``api_key`` (required, at least 16
    characters), ``queues`` (whitespace-separated names), ``metrics``
    (true: record Prometheus metrics in this process and serve them at
    ``/metrics``), ``max_body_size``, ``drain_max_runtime`` and ``app``
    (the dotted name of the WSGI app drains run tasks in); the ini's
    ``[taskqueue*]`` queues are registered first."""
    from .. import metrics

    filename = global_conf.get('__file__')
    options = convert(SETTINGS, settings, filename)
    if not (options['api_key'] or '').strip():
        raise ConfigurationError(
            'the management app needs an api_key (a long random string)',
            filename, key='api_key')
    try:
        Guard(options['api_key'])  # before configure() registers queues
    except ValueError as exc:
        raise ConfigurationError(str(exc), filename, key='api_key') from None
    if filename:
        configure(filename)
    if options['metrics']:
        metrics.enable()
    try:
        return make_app(options['api_key'], options['queues'],
                        max_body_size=options['max_body_size'],
                        app=options['app'],
                        drain_max_runtime=options['drain_max_runtime'])
    except LookupError as exc:
        raise ConfigurationError(str(exc), filename, key='queues') from None
    except ValueError as exc:  # an infinite drain_max_runtime
        raise ConfigurationError(str(exc), filename,
                                 key='drain_max_runtime') from None
