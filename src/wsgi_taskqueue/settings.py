"""The settings tables: every key of every kind of section, with the
converter that checks its value and its default.

One table per kind of section: ``[taskqueue]`` (QUEUE_SETTINGS, and the
keys of its backend type), ``[taskqueue-server]`` (CONSUMER_SETTINGS) and
the filter.  Every reader goes through them: ini files and Python mappings
(``config.py``), zope.conf (``zope/zconfig.py``, whose schema is generated
from them), Flask's and Pyramid's settings, and the documentation's
reference (``settings_help.py``).  So a bad value fails once, in one place
(``convert``), with a message naming the file, section and key.
"""
from __future__ import annotations

import re

from .backends.base import (
    DEFAULT_DEAD_MAX,
    DEFAULT_DEAD_TTL,
    DEFAULT_MAX_TASK_SIZE,
)
from .backends.names import DEFAULT_NAME_TTL
from .backends.redis.bounds import DEFAULT_MAX_CONNECTIONS
from .errors import ConfigurationError
from .prefetch import AUTO, prefetch_setting
from .results import DEFAULT_RESULT_MAX_SIZE, DEFAULT_RESULT_TTL
from .status import DEFAULT_STATUS_MAX, DEFAULT_STATUS_TTL

__all__ = ['QUEUE_SECTION', 'CONSUMER_SECTION', 'QUEUE_SETTINGS',
           'REDIS_SETTINGS', 'SQL_SETTINGS', 'SYNC_SETTINGS',
           'BACKEND_SETTINGS', 'CONSUMER_SETTINGS', 'FILTER_SETTINGS',
           'as_bool', 'at_least', 'positive', 'convert', 'filter_settings']

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


def at_least(minimum, kind):
    def convert(value):
        number = kind(value)
        if number < minimum:
            raise ValueError(f'must be at least {minimum}, not {number}')
        return number
    return convert


def positive(value) -> float:
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
    'max_task_size': (at_least(0, int), DEFAULT_MAX_TASK_SIZE),
    # One secret or several (whitespace-separated): the first signs, all
    # are accepted, so a secret can be rotated without losing tasks.
    'secret': (_lines, []),
    'credentials': (str, 'copy'),
    # Header names that travel with credentials = user-id, beside the
    # allow-list (backends.base.USER_ID_HEADERS).
    'copy_headers': (_lines, []),
    'http_host': (_host, None),
    'max_age': (at_least(0, float), 0.0),
    'status_ttl': (at_least(0, int), DEFAULT_STATUS_TTL),
    'status_max': (at_least(1, int), DEFAULT_STATUS_MAX),
    'dead_ttl': (at_least(1, int), DEFAULT_DEAD_TTL),
    'dead_max': (at_least(1, int), DEFAULT_DEAD_MAX),
    'dead_credentials': (as_bool, False),
    'name_ttl': (at_least(1, int), DEFAULT_NAME_TTL),
    'keep_result': (as_bool, False),
    'result_ttl': (at_least(0, int), DEFAULT_RESULT_TTL),
    'result_max_size': (at_least(0, int), DEFAULT_RESULT_MAX_SIZE),
}

#: Keys of ``type = redis``, beside QUEUE_SETTINGS.  host, port, db,
#: password and unix_socket_path are collective.taskqueue's.
REDIS_SETTINGS = {
    'url': (str, None),
    'host': (str, '127.0.0.1'),
    'port': (at_least(1, int), 6379),
    'db': (at_least(0, int), 0),
    'username': (str, None),
    'password': (str, None),
    'unix_socket_path': (str, None),
    'socket_timeout': (positive, 5.0),
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
    'min_replicas': (at_least(0, int), 0),
    # Hash tags the queue spreads over (a Cluster: over its primaries).
    'shards': (at_least(1, int), 1),
    # Connections of one process to one server, for each of the pool and
    # the threads' script connections; a thread waits for a busy one at
    # most socket_timeout (backends/redis/bounds.py).
    'max_connections': (at_least(1, int), DEFAULT_MAX_CONNECTIONS),
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
    'timeout': (positive, 5.0),
    'poll_interval': (positive, 0.5),
    # Tasks are written in the app's own transaction when one of its
    # zope.sqlalchemy sessions (that of `session`, a dotted name, if set)
    # is on the queue's database: the outbox.
    'outbox': (as_bool, True),
    'session': (_dotted_name, None),
}

#: Keys of ``type = sync`` (tasks run in the committing process).
SYNC_SETTINGS = {
    'retry_max_count': (at_least(0, int), 10),
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
    'concurrent_limit': (at_least(1, int), 1),
    'retry_max_count': (at_least(0, int), 10),
    'retry_delay': (positive, 1.0),
    'retry_delay_max': (positive, 300.0),
    'poll_interval': (positive, 1.0),
    'prefetch': (prefetch_setting, AUTO),
    'lease_timeout': (positive, 15.0),
    'max_deliveries': (at_least(0, int), 5),
    'staged_grace': (positive, 60.0),
    'stop_timeout': (at_least(0, float), 30.0),
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
