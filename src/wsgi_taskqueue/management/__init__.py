"""Operating the queues over HTTP: a JSON API and a live dashboard.

One WSGI app, protected by an API key (see ``auth``): mount it in the
application's pipeline, serve it with ``wsgi-taskqueue dashboard``, or load
it from an ini file::

    [app:management]
    use = egg:wsgi-taskqueue#management
    api_key = a-long-random-string
    ; queues = default mailhost     ; default: every configured queue
    ; metrics = true                ; GET /metrics for Prometheus

The JSON API is documented in ``openapi.yaml``, shipped beside this module
and served at ``GET openapi.yaml``.
"""
from __future__ import annotations

from .app import ManagementApp

__all__ = ['make_app', 'app_factory', 'ManagementApp']


def make_app(api_key: str, queues: list[str] | None = None) -> ManagementApp:
    """The management app over ``queues`` (None: every queue registered in
    this process, at each request), for holders of ``api_key``."""
    return ManagementApp(api_key, queues)


def app_factory(global_conf, **settings) -> ManagementApp:
    """``paste.app_factory``: ``api_key`` (required), ``queues``
    (whitespace-separated names) and ``metrics`` (true: record Prometheus
    metrics in this process and serve them at ``/metrics``); the ini's
    ``[taskqueue*]`` queues are registered first."""
    from .. import metrics
    from ..config import as_bool, configure, convert
    from ..errors import ConfigurationError

    filename = global_conf.get('__file__')
    options = convert({'api_key': (str, None), 'queues': (_names, None),
                       'metrics': (as_bool, False)}, settings, filename)
    if not (options['api_key'] or '').strip():
        raise ConfigurationError(
            'the management app needs an api_key (a long random string)',
            filename, key='api_key')
    if filename:
        configure(filename)
    if options['metrics']:
        metrics.enable()
    try:
        return make_app(options['api_key'], options['queues'])
    except LookupError as exc:
        raise ConfigurationError(str(exc), filename, key='queues') from None


def _names(text: str) -> list[str] | None:
    return text.split() or None
