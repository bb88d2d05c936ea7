"""Settings: one table per kind of section, read from ini files and
zope.conf (``zope/zconfig.py``).

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
import functools
import os
import re
import threading

from .backends import BACKEND_TYPES
from .backends.base import (
    DEFAULT_DEAD_MAX,
    DEFAULT_DEAD_TTL,
    DEFAULT_MAX_TASK_SIZE,
)
from .backends.redis.sharded import ShardedRedisQueue
from .consumer import Consumer, default_consumer_name
from .errors import ConfigurationError
from .registry import queue_names, register_queue
from .status import DEFAULT_STATUS_MAX, DEFAULT_STATUS_TTL

__all__ = ['configure', 'load', 'build', 'register', 'from_mappings',
           'configuration_of', 'Configuration', 'filter_settings']

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


def _addresses(value) -> list[str]:
    """host:port pairs, separated by whitespace or commas."""
    addresses = str(value).replace(',', ' ').split()
    for address in addresses:
        host, _, port = address.rpartition(':')
        if not host or not port.isdigit():
            raise ValueError(f'expected host:port, not {address!r}')
    if not addresses:
        raise ValueError('expected host:port, ...')
    return addresses


_HOST = re.compile(r'([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?')


def _host(value) -> str:
    """A Host header: a name or address, and an optional port."""
    text = str(value).strip()
    if not _HOST.fullmatch(text):
        raise ValueError(f'must be a host name or address with an optional '
                         f'port, such as www.example.com:8080: {value!r}')
    return text


def _queue_type(value) -> str:
    """A type of BACKEND_SETTINGS or the dotted name of a class."""
    kind = str(value).strip()
    if kind not in BACKEND_SETTINGS and '.' not in kind:
        raise ValueError(f'unknown queue type {kind!r}; use '
                         f'{", ".join(BACKEND_SETTINGS)} or the dotted name '
                         f'of a class')
    return kind


#: Keys every [taskqueue] section understands, whatever its type.
QUEUE_SETTINGS = {
    'queue': (_name, 'default'),
    'type': (_queue_type, 'local'),
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
    # A Sentinel group (also: url = redis+sentinel://h:p,h:p/service/db):
    # the Sentinels' host:port (whitespace- or comma-separated), the name
    # they watch the primary under, and their own password if any.
    'sentinels': (_addresses, None),
    'service_name': (_name, None),
    'sentinel_password': (str, None),
    # A Redis Cluster reached through the node of url or host/port (also:
    # url = redis+cluster://h:p,h:p).
    'cluster': (as_bool, False),
    # Replicas that must have a transaction's tasks before its vote says
    # yes (WAIT, at most half of socket_timeout); see docs/scale.rst.
    'min_replicas': (_at_least(0, int), 0),
    # Hash tags the queue spreads over (a Cluster: over its primaries).
    'shards': (_at_least(1, int), 1),
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
    filename: str | None
    queues: dict
    consumers: list

    def build_consumers(self, app) -> list[Consumer]:
        return [spec.build(app) for spec in self.consumers]

    def joined(self, *others: Configuration) -> Configuration:
        """This configuration and ``others`` as one (an ini's sections
        and an app's settings, run by one worker)."""
        if not others:
            return self
        names = {spec.settings['name'] for spec in self.consumers}
        consumers = list(self.consumers)
        queues = dict(self.queues)
        for other in others:
            for spec in other.consumers:
                if spec.settings['name'] in names:
                    raise ConfigurationError(
                        f'two consumers are named '
                        f'{spec.settings["name"]!r}', other.filename,
                        spec.section, 'name')
                names.add(spec.settings['name'])
                consumers.append(spec)
            queues.update(other.queues)
        return Configuration(self.filename, queues, consumers)


_configured: dict[str, Configuration] = {}
_configure_lock = threading.Lock()


def configure(filename: str, variables: dict | None = None) -> Configuration:
    """Register the queues of an ini file, once per file and process (the
    filter and the server runner both load the same file).

    ``variables`` (``NAME=VALUE`` arguments of ``serve`` and ``worker``)
    are interpolated as ``%(NAME)s`` and win over the file's [DEFAULT].
    """
    path = os.path.abspath(filename)
    with _configure_lock:
        if path not in _configured:
            configuration = load(path, variables)
            register(configuration)
            _configured[path] = configuration
        return _configured[path]


def configuration_of(source) -> Configuration:
    """``source`` itself when it is a Configuration (built from Python
    mappings), else the configuration of the ini file it names."""
    if isinstance(source, Configuration):
        return source
    return configure(source)


def load(filename: str, variables: dict | None = None) -> Configuration:
    """Read and check the [taskqueue*] sections of ``filename``, or the
    ``<taskqueue*>`` sections of a zope.conf (one that says ``%import
    wsgi_taskqueue``; reading it takes Zope)."""
    if _imports_this_package(filename):
        from .zope.zconfig import load_zope_conf
        return load_zope_conf(filename)
    sections = [(section.partition(':')[0], _suffix(section), section, values)
                for section, values in _read_sections(filename, variables)]
    return build(sections, filename)


def from_mappings(queues: dict, consumers: dict,
                  source: str | None = None) -> Configuration:
    """A Configuration from Python mappings (Flask's ``app.config``,
    Pyramid's settings): ``queues`` maps a queue name to the keys of its
    [taskqueue] section, ``consumers`` a consumer name to the keys of its
    [taskqueue-server] section.

    Values may be the ini's strings or Python values (numbers, booleans, a
    list of secrets); they go through the same tables, so a wrong key or
    value fails with the ini's message, naming ``source`` as the file.
    """
    sections = []
    for kind, mapping in ((QUEUE_SECTION, queues),
                          (CONSUMER_SECTION, consumers)):
        if not isinstance(mapping, dict):
            raise ConfigurationError(
                f'expected a dict of {kind} sections by name, not '
                f'{type(mapping).__name__}', source, kind)
        for name, values in mapping.items():
            section = f'{kind}:{name}'
            if not isinstance(values, dict):
                raise ConfigurationError(
                    f'expected a dict of keys, not {type(values).__name__}',
                    source, section)
            sections.append((kind, str(name), section, {
                key: _as_text(value) for key, value in values.items()
                if value is not None}))
    return build(sections, source)


def _as_text(value):
    """A list of lines (``secret``) as the ini writes it; other values
    pass as they are, which every converter accepts."""
    if isinstance(value, (list, tuple)):
        return ' '.join(str(item) for item in value)
    return value


def build(sections, source: str | None = None) -> Configuration:
    """Check and build the queues and consumers of ``sections``.

    Every configuration reader (ini, zope.conf, Python mappings) comes
    here: ``sections`` are ``(kind, name, label, values)``, ``kind``
    QUEUE_SECTION or CONSUMER_SECTION, ``name`` the section's own name (or
    None), ``label`` how errors name the section, ``values`` its keys.
    ``source`` names the file in errors.
    """
    queues = {}
    for kind, name, label, values in sections:
        if kind == QUEUE_SECTION:
            queue_name, queue = _build_queue(source, label, name, values)
            if queue_name in queues:
                raise ConfigurationError(
                    f'queue {queue_name!r} is defined twice', source, label,
                    'queue')
            queues[queue_name] = queue
    consumers = []
    names = set()
    known_queues = set(queues) | set(queue_names())
    for kind, name, label, values in sections:
        if kind == CONSUMER_SECTION:
            spec = _consumer_spec(source, label, name, values, known_queues)
            if spec.settings['name'] in names:
                raise ConfigurationError(
                    f'two consumers are named {spec.settings["name"]!r}',
                    source, label, 'name')
            names.add(spec.settings['name'])
            consumers.append(spec)
    return Configuration(source, queues, consumers)


def register(configuration: Configuration) -> None:
    """Make the queues of ``configuration`` known to ``taskqueue.add``."""
    for name, queue in configuration.queues.items():
        register_queue(name, queue)


def _read_sections(filename: str, variables: dict | None = None
                   ) -> list[tuple[str, dict]]:
    """The [taskqueue*] sections with their own keys (not [DEFAULT]'s),
    values interpolated as PasteDeploy does (``%(here)s``), ``variables``
    winning over [DEFAULT]."""
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
    parser.read_dict({parser.default_section: {
        name: str(value) for name, value in (variables or {}).items()
        if name not in ('here', '__file__')}})
    sections = []
    for section in parser.sections():
        if section.split(':', 1)[0] not in (QUEUE_SECTION, CONSUMER_SECTION):
            continue
        try:
            values = {key: parser.get(section, key)
                      for key in own_keys.options(section)}
        except configparser.InterpolationError as exc:
            raise ConfigurationError(
                interpolation_problem(exc), filename, section,
                exc.option) from None
        except configparser.Error as exc:
            raise ConfigurationError(str(exc), filename, section) from None
        sections.append((section, values))
    return sections


def _imports_this_package(filename: str) -> bool:
    """Whether ``filename`` is a ZConfig file with our sections."""
    try:
        with open(filename, encoding='utf-8', errors='replace') as file:
            return any(line.split() == ['%import', 'wsgi_taskqueue']
                       for line in file)
    except OSError:
        return False  # _read_sections says what is wrong


def interpolation_problem(exc: configparser.InterpolationError) -> str:
    """What is wrong with a ``%(NAME)s``, said for a person who can pass
    ``NAME=VALUE`` on the command line."""
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return (f'%({exc.reference})s is not defined: set {exc.reference} '
                f'in [DEFAULT] or pass {exc.reference}=VALUE to the command')
    return exc.message.splitlines()[0]


def _suffix(section: str) -> str | None:
    return section.partition(':')[2] or None


def _build_queue(filename, section, section_name, values):
    common = {k: v for k, v in values.items() if k in QUEUE_SETTINGS}
    common.setdefault('queue', section_name or 'default')
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
        shards = options.pop('shards', 1)
        if shards > 1:  # one queue over several hash tags
            factory = functools.partial(ShardedRedisQueue, shards=shards)
    else:  # a dotted name (_queue_type)
        factory = _resolve(kind, filename, section)
        options = own
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


def _consumer_spec(filename, section, section_name, values,
                   known_queues) -> ConsumerSpec:
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
            section_name or settings['queue'])
    return ConsumerSpec(section, settings)

