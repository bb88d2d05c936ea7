"""Pyramid, as pyramid_tm does it: ``config.include('wsgi_taskqueue')``
(or ``pyramid.includes = wsgi_taskqueue``), with the queues and consumers
in the app's own settings.  No pipeline, so the app stays ``[app:main]``
and whatever reads its settings (``pserve``, alembic's
``get_appsettings``, tests) keeps working.

Settings, one key per ``[taskqueue]`` / ``[taskqueue-server]`` key::

    taskqueue.queue.NAME.KEY = VALUE       the queue NAME
    taskqueue.consumer.NAME.KEY = VALUE    a consumer NAME (a consumer
                                           with no other key: queue = default)
    taskqueue.start_consumers = true       false: build the app without
                                           starting them (pshell, tests,
                                           a web-only process)
    taskqueue.ini = PATH                   instead: the [taskqueue*]
                                           sections of an ini file

The include adds a tween at the top (over pyramid_tm) that does what the
filter does: binds the request for ``taskqueue.add``, strips
``X-Task-*`` headers from network requests and tells a management app
mounted in the Pyramid app the app its drains run tasks in; the ``task`` view predicate
(``task=True``: only as a task); and starts the consumers in this process
when the app is created (``ApplicationCreated``), so they run under
``pserve``, ``wsgi-taskqueue serve`` and any server, and stop at exit;
``wsgi-taskqueue worker`` runs them itself, whatever
``start_consumers`` says.
pyramid_tm manages the transaction that ``taskqueue.add`` joins.
"""
from __future__ import annotations

import atexit

from pyramid.events import ApplicationCreated
from pyramid.settings import asbool
from pyramid.tweens import INGRESS

from .config import configure, from_mappings
from .errors import ConfigurationError
from .middleware import APP_ENVIRON_KEY, bind, unbind
from .registry import register_queue
from .serve import hand_over

__all__ = ['includeme', 'configuration_from_settings', 'stop_consumers',
           'SETTINGS_SOURCE']

PREFIX = 'taskqueue.'
#: What error messages name as the file of settings.
SETTINGS_SOURCE = 'Pyramid settings'
_KINDS = {'queue': 0, 'consumer': 1}


def includeme(config) -> None:
    settings = config.get_settings()
    configuration = configuration_from_settings(settings)
    for name, queue in configuration.queues.items():
        register_queue(name, queue)
    config.registry['taskqueue.configuration'] = configuration
    config.include('wsgi_taskqueue.guard')
    config.add_tween('wsgi_taskqueue.pyramid.tween_factory', under=INGRESS)
    config.add_subscriber(_remember_app, ApplicationCreated)
    if hand_over(configuration):
        return  # `wsgi-taskqueue worker` runs them
    if asbool(settings.get(PREFIX + 'start_consumers', True)):
        config.add_subscriber(_start_consumers, ApplicationCreated)


def configuration_from_settings(settings: dict):
    """The Configuration of the ``taskqueue.*`` keys of ``settings``."""
    if settings.get(PREFIX + 'ini'):
        return configure(settings[PREFIX + 'ini'])
    sections: tuple[dict, dict] = ({}, {})
    for key, value in settings.items():
        if not key.startswith(PREFIX) or key in (
                PREFIX + 'start_consumers', PREFIX + 'ini'):
            continue
        parts = key.split('.')
        if len(parts) != 4 or parts[1] not in _KINDS:
            raise ConfigurationError(
                'unknown setting; expected taskqueue.queue.NAME.KEY, '
                'taskqueue.consumer.NAME.KEY, taskqueue.start_consumers or '
                'taskqueue.ini', SETTINGS_SOURCE, key=key)
        _, kind, name, option = parts
        sections[_KINDS[kind]].setdefault(name, {})[option] = value
    return from_mappings(*sections, SETTINGS_SOURCE)


def tween_factory(handler, registry):
    """The filter's work, as a tween."""
    def taskqueue_tween(request):
        app = registry.get('taskqueue.app')
        if app is not None:
            request.environ.setdefault(APP_ENVIRON_KEY, app)
        context, token = bind(request.environ)
        try:
            return handler(request)
        finally:
            unbind(context, token)
    return taskqueue_tween


def _remember_app(event) -> None:
    """The app the consumers dispatch into, for the tween to tell a
    management app mounted in this one (its drains run tasks in it)."""
    event.app.registry['taskqueue.app'] = event.app


def _start_consumers(event) -> None:
    registry = event.app.registry
    configuration = registry['taskqueue.configuration']
    consumers = configuration.build_consumers(event.app)
    for consumer in consumers:
        consumer.start()
    registry['taskqueue.consumers'] = consumers
    if consumers:
        atexit.register(stop_consumers, registry)


def stop_consumers(registry) -> None:
    """Stop the consumers started with the app of ``registry`` (done at
    exit), and log the tasks an in-process queue drops."""
    from .serve import report_dropped

    consumers = registry.get('taskqueue.consumers') or []
    registry['taskqueue.consumers'] = []
    for consumer in consumers:
        consumer.stop(consumer.stop_timeout)
    if consumers:
        report_dropped(registry['taskqueue.configuration'].queues.values())
