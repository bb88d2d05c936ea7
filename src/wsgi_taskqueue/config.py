"""Settings: one table per kind of section, read from ini files.

Every setting is a ``(converter, default)`` pair in one table, which the
ini loader, the filter and the programmatic API share, so a bad value fails
once, in one place, with a message naming the file, section and key.

Sections (PasteDeploy ini, beside the app's own)::

    [taskqueue]              queue 'default' (or the name in its `queue` key)
    [taskqueue:NAME]         queue NAME
    [taskqueue-server]       a consumer
    [taskqueue-server:NAME]  a consumer named NAME (unless `name` is set)
"""
from __future__ import annotations

import configparser
import dataclasses
import os
import re
import threading

from .backends import BACKEND_TYPES
from .backends.base import (
    DEFAULT_DEAD_MAX,
    DEFAULT_DEAD_TTL,
    DEFAULT_MAX_TASK_SIZE,
)
from .consumer import Consumer, default_consumer_name
from .errors import ConfigurationError
from .registry import queue_names, register_queue
from .status import DEFAULT_STATUS_MAX, DEFAULT_STATUS_TTL

__all__ = ['configure', 'load', 'Configuration', 'filter_settings']

QUEUE_SECTION = 'taskqueue'
CONSUMER_SECTION = 'taskqueue-server'


def as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('true', 'yes', 'on', '1'):
        return True
    if text in ('false', 'no', 'off', '0'):
        return False
    raise ValueError(f'expected true or false, not {value!r}')


def _at_least(minimum, kind):
    def convert(value):
        number = kind(value)
        if number < minimum:
            raise ValueError(f'must be at least {minimum}, not {number}')
        return number
    return convert


def _positive(value) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(f'must be greater than 0, not {number}')
    return number


def _name(value) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() or c in '{}#' for c in text):
        raise ValueError(f'must be a non-empty name without spaces, braces '
                         f'or "#": {value!r}')
    return text


def _lines(value) -> list[str]:
    return [line.strip() for line in str(value).split() if line.strip()]


_HOST = re.compile(r'([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?')


def _host(value) -> str:
    """A Host header: a name or address, and an optional port."""
    text = str(value).strip()
    if not _HOST.fullmatch(text):
        raise ValueError(f'must be a host name or address with an optional '
                         f'port, such as www.example.com:8080: {value!r}')
    return text


#: Keys every [taskqueue] section understands, whatever its type.
QUEUE_SETTINGS = {
    'queue': (_name, 'default'),
    'type': (str, 'local'),
    'max_task_size': (_at_least(0, int), DEFAULT_MAX_TASK_SIZE),
    # One secret or several (whitespace-separated): the first signs, all
    # are accepted, so a secret can be rotated without losing tasks.
    'secret': (_lines, []),
    'credentials': (str, 'copy'),
    # Header names that travel with credentials = user-id, beside the
    # allow-list (backends.base.USER_ID_HEADERS).
    'copy_headers': (_lines, []),
    'http_host': (_host, None),
    'max_age': (_at_least(0, float), 0.0),
    'status_ttl': (_at_least(0, int), DEFAULT_STATUS_TTL),
    'status_max': (_at_least(1, int), DEFAULT_STATUS_MAX),
    'dead_ttl': (_at_least(1, int), DEFAULT_DEAD_TTL),
    'dead_max': (_at_least(1, int), DEFAULT_DEAD_MAX),
    'dead_credentials': (as_bool, False),
}

#: Keys of ``type = redis``, beside QUEUE_SETTINGS.  host, port, db,
#: password and unix_socket_path are collective.taskqueue's.
REDIS_SETTINGS = {
    'url': (str, None),
    'host': (str, '127.0.0.1'),
    'port': (_at_least(1, int), 6379),
    'db': (_at_least(0, int), 0),
    'username': (str, None),
    'password': (str, None),
    'unix_socket_path': (str, None),
    'socket_timeout': (_positive, 5.0),
    'key_prefix': (_name, 'wsgi-taskqueue'),
}

def _dotted_name(value) -> str:
    text = str(value).strip()
    if '.' not in text or not all(part.isidentifier()
                                  for part in text.split('.')):
        raise ValueError(f'must be a dotted name (package.module.name), '
                         f'not {value!r}')
    return text


def _table_prefix(value) -> str:
    text = str(value).strip()
    if not text.replace('_', '').isalnum() or not text.isascii():
        raise ValueError(f'must be letters, digits and "_": {value!r}')
    return text


#: Keys of ``type = sql`` (or postgresql, sqlite, mysql), beside
#: QUEUE_SETTINGS.  ``url`` is a SQLAlchemy URL (postgresql+psycopg://...,
#: mysql+pymysql://..., sqlite:///path/to/tasks.db).
SQL_SETTINGS = {
    'url': (str, None),
    'schema': (_name, None),
    'table_prefix': (_table_prefix, 'taskqueue_'),
    'timeout': (_positive, 5.0),
    'poll_interval': (_positive, 0.5),
    # Tasks are written in the app's own transaction when one of its
    # zope.sqlalchemy sessions (that of `session`, a dotted name, if set)
    # is on the queue's database: the outbox.
    'outbox': (as_bool, True),
    'session': (_dotted_name, None),
}

#: Keys of ``type = sync`` (tasks run in the committing process).
SYNC_SETTINGS = {
    'retry_max_count': (_at_least(0, int), 10),
}

BACKEND_SETTINGS = {'local': {}, 'sync': SYNC_SETTINGS,
                    'redis': REDIS_SETTINGS,
                    **dict.fromkeys(('sql', 'postgresql', 'sqlite', 'mysql'),
                                    SQL_SETTINGS)}

#: Keys of [taskqueue-server] sections; name, queue, concurrent_limit and
#: retry_max_count are collective.taskqueue's.
CONSUMER_SETTINGS = {
    'name': (_name, None),
    'queue': (_name, None),
    'concurrent_limit': (_at_least(1, int), 1),
    'retry_max_count': (_at_least(0, int), 10),
    'retry_delay': (_positive, 1.0),
    'retry_delay_max': (_positive, 300.0),
    'poll_interval': (_positive, 1.0),
    'prefetch': (_at_least(1, int), 1),
    'lease_timeout': (_positive, 15.0),
    'max_deliveries': (_at_least(0, int), 5),
    'staged_grace': (_positive, 60.0),
    'stop_timeout': (_at_least(0, float), 30.0),
}

#: Keys of the [filter:...] section using egg:wsgi-taskqueue#taskqueue.
FILTER_SETTINGS = {
    'manage_transaction': (as_bool, False),
}


def convert(table: dict, values: dict, filename=None, section=None,
            known=()) -> dict:
    """Check ``values`` against ``table``; return converted values with
    defaults filled in.  ``known``: more keys the section accepts (named
    in the error about an unknown key)."""
    result = {key: default for key, (_, default) in table.items()}
    for key, value in values.items():
        if key not in table:
            keys = sorted({*table, *known})
            raise ConfigurationError(
                f'unknown key; known keys: {", ".join(keys)}',
                filename, section, key)
        converter = table[key][0]
        try:
            result[key] = converter(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f'bad value {value!r}: {exc}',
                                     filename, section, key) from None
    return result


def filter_settings(values: dict, filename: str | None = None) -> dict:
    return convert(FILTER_SETTINGS, values, filename, 'filter:taskqueue')


@dataclasses.dataclass
class ConsumerSpec:
    """A [taskqueue-server] section, ready to become a Consumer."""

    section: str
    settings: dict

    def build(self, app) -> Consumer:
        return Consumer(app, **self.settings)


@dataclasses.dataclass
class Configuration:
    filename: str
    queues: dict
    consumers: list

    def build_consumers(self, app) -> list[Consumer]:
        return [spec.build(app) for spec in self.consumers]


_configured: dict[str, Configuration] = {}
_configure_lock = threading.Lock()


def configure(filename: str) -> Configuration:
    """Register the queues of an ini file, once per file and process (the
    filter and the server runner both load the same file)."""
    path = os.path.abspath(filename)
    with _configure_lock:
        if path not in _configured:
            configuration = load(path)
            for name, queue in configuration.queues.items():
                register_queue(name, queue)
            _configured[path] = configuration
        return _configured[path]


def load(filename: str) -> Configuration:
    """Read and check the [taskqueue*] sections of ``filename``."""
    sections = _read_sections(filename)
    queues = {}
    for section, values in sections:
        if section == QUEUE_SECTION or section.startswith(QUEUE_SECTION + ':'):
            name, queue = _build_queue(filename, section, values)
            if name in queues:
                raise ConfigurationError(f'queue {name!r} is defined twice',
                                         filename, section, 'queue')
            queues[name] = queue
    consumers = []
    names = set()
    known_queues = set(queues) | set(queue_names())
    for section, values in sections:
        if section == CONSUMER_SECTION or section.startswith(
                CONSUMER_SECTION + ':'):
            spec = _consumer_spec(filename, section, values, known_queues)
            if spec.settings['name'] in names:
                raise ConfigurationError(
                    f'two consumers are named {spec.settings["name"]!r}',
                    filename, section, 'name')
            names.add(spec.settings['name'])
            consumers.append(spec)
    return Configuration(filename, queues, consumers)


def _read_sections(filename: str) -> list[tuple[str, dict]]:
    """The [taskqueue*] sections with their own keys (not [DEFAULT]'s),
    values interpolated as PasteDeploy does (``%(here)s``)."""
    if not os.path.exists(filename):
        raise ConfigurationError('no such file', filename)
    here = os.path.dirname(os.path.abspath(filename))
    parser = configparser.ConfigParser(
        defaults={'here': here, '__file__': os.path.abspath(filename)})
    own_keys = configparser.RawConfigParser(default_section='\0')
    try:
        parser.read(filename)
        own_keys.read(filename)
    except configparser.Error as exc:
        raise ConfigurationError(str(exc), filename) from None
    sections = []
    for section in parser.sections():
        if section.split(':', 1)[0] not in (QUEUE_SECTION, CONSUMER_SECTION):
            continue
        try:
            values = {key: parser.get(section, key)
                      for key in own_keys.options(section)}
        except configparser.Error as exc:
            raise ConfigurationError(str(exc), filename, section) from None
        sections.append((section, values))
    return sections


def _suffix(section: str) -> str | None:
    return section.partition(':')[2] or None


def _build_queue(filename, section, values):
    common = {k: v for k, v in values.items() if k in QUEUE_SETTINGS}
    common.setdefault('queue', _suffix(section) or 'default')
    common = convert(QUEUE_SETTINGS, common, filename, section)
    own = {k: v for k, v in values.items() if k not in QUEUE_SETTINGS}
    kind = common['type']
    if kind in BACKEND_SETTINGS:
        factory = BACKEND_TYPES[kind]
        options = convert(BACKEND_SETTINGS[kind], own, filename, section,
                          known=QUEUE_SETTINGS)
        options = {k: v for k, v in options.items() if v is not None}
        if BACKEND_SETTINGS[kind] is SQL_SETTINGS and 'url' not in options:
            raise ConfigurationError(
                'a SQL queue needs a SQLAlchemy URL, e.g. '
                'sqlite:///%(here)s/tasks.db', filename, section, 'url')
    elif '.' in kind:
        factory = _resolve(kind, filename, section)
        options = own
    else:
        raise ConfigurationError(
            f'unknown queue type {kind!r}; use local, sync, redis, sql '
            f'(postgresql, sqlite, mysql) or the dotted name of a class',
            filename, section, 'type')
    name = common.pop('queue')
    del common['type']
    common['secrets'] = common.pop('secret')
    try:
        queue = factory(name, **common, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(str(exc), filename, section) from None
    return name, queue


def _resolve(dotted: str, filename, section):
    import importlib
    module_name, _, attribute = dotted.rpartition('.')
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f'cannot import {dotted!r}: {exc}',
                                 filename, section, 'type') from None


def _consumer_spec(filename, section, values, known_queues) -> ConsumerSpec:
    settings = convert(CONSUMER_SETTINGS, values, filename, section)
    if settings['queue'] is None:
        settings['queue'] = 'default'
    if settings['queue'] not in known_queues:
        raise ConfigurationError(
            f'consumer of undefined queue {settings["queue"]!r}; defined '
            f'queues: {", ".join(sorted(known_queues)) or "none"}',
            filename, section, 'queue')
    if settings['name'] is None:
        settings['name'] = default_consumer_name(
            _suffix(section) or settings['queue'])
    return ConsumerSpec(section, settings)
