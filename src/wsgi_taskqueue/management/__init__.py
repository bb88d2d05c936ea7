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

The JSON API is documented in ``openapi.yaml``, shipped beside this module
and served at ``GET openapi.yaml``.
"""
from __future__ import annotations

from ..config import _at_least, as_bool, configure, convert
from ..errors import ConfigurationError
from .api import DEFAULT_MAX_BODY_SIZE
from .app import ManagementApp
from .auth import Guard

__all__ = ['make_app', 'app_factory', 'ManagementApp', 'SETTINGS']


def make_app(api_key: str, queues: list[str] | None = None, *,
             max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> ManagementApp:
    """The management app over ``queues`` (None: every queue registered in
    this process, at each request), for holders of ``api_key`` (at least
    ``auth.MIN_KEY_LENGTH`` characters: ValueError otherwise), refusing
    request bodies over ``max_body_size`` bytes."""
    return ManagementApp(api_key, queues, max_body_size)


def _names(text: str) -> list[str] | None:
    return text.split() or None


#: The keys of the app's ini section: (converter, default).
SETTINGS = {
    'api_key': (str, None),
    'queues': (_names, None),
    'metrics': (as_bool, False),
    'max_body_size': (_at_least(1, int), DEFAULT_MAX_BODY_SIZE),
}


def app_factory(global_conf, **settings) -> ManagementApp:
    """``paste.app_factory``: ``api_key`` (required, at least 16
    characters), ``queues`` (whitespace-separated names), ``metrics``
    (true: record Prometheus metrics in this process and serve them at
    ``/metrics``) and ``max_body_size``; the ini's ``[taskqueue*]`` queues
    are registered first."""
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
                        max_body_size=options['max_body_size'])
    except LookupError as exc:
        raise ConfigurationError(str(exc), filename, key='queues') from None
