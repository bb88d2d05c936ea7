"""What each configuration key means, for the reference the documentation
generates from the settings tables of ``settings.py``
(docs/_ext/settings_reference.py).

Beside the tables rather than in them: the loader needs converters and
defaults, only the documentation needs prose.  The documentation build
fails (``-W``) when a key of a table has no entry here, or an entry names
no key, so the two cannot drift apart.
"""
from __future__ import annotations

from .management import SETTINGS as MANAGEMENT_SETTINGS
from .settings import (
    CONSUMER_SETTINGS,
    FILTER_SETTINGS,
    QUEUE_SETTINGS,
    REDIS_SETTINGS,
    SQL_SETTINGS,
    SYNC_SETTINGS,
)

__all__ = ['SETTINGS_HELP', 'SETTINGS_TABLES']

#: Each key of each table: ``(meaning, shown default)``; a shown default
#: other than None replaces the table's (one that is computed, or None).
SETTINGS_HELP = {
    'queue': {
        'queue': ('the queue\'s name', 'the section\'s suffix, or '
                  '``default``'),
        'type': ('``local`` (in-process, volatile), ``sync`` (run at '
                 'commit, :doc:`testing`), ``redis``, ``sql`` (or '
                 '``postgresql``, ``sqlite``, ``mysql``: :doc:`sql`), or the '
                 'dotted name of a class', None),
        'max_task_size': ('largest task ``add`` accepts, in bytes: URL, '
                          'header names and values, and body', None),
        'secret': ('HMAC secrets, whitespace-separated: the first signs, all '
                   'are accepted (rotation); consumers refuse unsigned or '
                   'forged tasks', '(none)'),
        'credentials': ('``copy``: every request header travels with the '
                        'task, Cookie and Authorization included; '
                        '``user-id``: the signed ``REMOTE_USER`` and an '
                        'allow-list of headers (:doc:`guarantees`, "Hostile '
                        'input")', None),
        'copy_headers': ('with ``user-id``: more header names that travel, '
                         'whitespace-separated', '(none)'),
        'http_host': ('the Host of every task request (e.g. '
                      '``www.example.com:8080``) instead of the enqueuing '
                      'request\'s', None),
        'max_age': ('seconds after which a task not yet run is '
                    'dead-lettered instead; 0: no limit', None),
        'status_ttl': ('seconds a task\'s status record is kept after its '
                       'last change (on Redis, up to 5 minutes more); 0 '
                       'turns the status log off', None),
        'status_max': ('status records a queue keeps at most', None),
        'dead_ttl': ('seconds a dead letter is kept (a week)', None),
        'dead_max': ('dead letters a queue keeps at most; the oldest go '
                     'first', None),
        'dead_credentials': ('whether dead letters keep the Cookie and '
                             'Authorization their task carried', None),
        'name_ttl': ('seconds a task name is held after its task was '
                     'queued: another task of that name added meanwhile '
                     'is dropped (a day)', None),
        'keep_result': ('whether every task keeps what the app answered '
                        '(status line, Content-Type, Location, body) for '
                        '``taskqueue.result``; else only those added with '
                        '``keep_result=True`` (:doc:`task-options`)', None),
        'result_ttl': ('seconds a task\'s result is kept after it finished; '
                       '0 keeps none', None),
        'result_max_size': ('bytes of the body a result keeps at most (the '
                            'rest is dropped, and the result says so)',
                            None),
    },
    'redis': {
        'url': ('``redis://`` or ``rediss://`` (TLS, e.g. '
                '``?ssl_ca_certs=/path/ca.pem``), with ``user:password@`` for '
                'ACL users; ``redis+sentinel://host:port,.../service[/db]`` '
                '(``rediss+sentinel://``: TLS) '
                'or ``redis+cluster://host:port,...`` (:doc:`scale`)',
                '(none)'),
        'host': ('collective.taskqueue\'s connection key, used when there is '
                 'no ``url``', None),
        'port': ('as ``host``', None),
        'db': ('as ``host``', None),
        'username': ('Redis ACL user', '(none)'),
        'password': ('Redis AUTH password', '(none)'),
        'unix_socket_path': ('connect through a unix socket', '(none)'),
        'socket_timeout': ('seconds; bounds how long a commit waits for a '
                           'Redis that does not answer', None),
        'key_prefix': ('prefix of the queue\'s Redis keys', None),
        'sentinels': ('a Sentinel group instead of ``url``: the Sentinels\' '
                      '``host:port``, separated by spaces or commas',
                      '(none)'),
        'service_name': ('the name the Sentinels watch the primary under',
                         '(none)'),
        'sentinel_password': ('the Sentinels\' own password', '(none)'),
        'cluster': ('``url`` or ``host``/``port`` is a node of a Redis '
                    'Cluster', None),
        'min_replicas': ('replicas that must have a commit\'s tasks '
                         '(``WAIT``, at most half of ``socket_timeout``) '
                         'before its vote says yes (:doc:`scale`)', None),
        'shards': ('hash tags the queue spreads over (on a Cluster, over '
                   'several primaries; :doc:`scale`)', None),
        'max_connections': ('connections one process opens to one Redis '
                            'server, at most, for each of its pool and its '
                            'threads\' script connections; a thread waits '
                            'up to ``socket_timeout`` for a busy one '
                            '(:doc:`scale`)', None),
    },
    'sql': {
        'url': ('a SQLAlchemy URL: ``postgresql+psycopg://...``, '
                '``mysql+pymysql://...``, ``sqlite:///path/to/tasks.db``',
                '(required)'),
        'schema': ('the schema (PostgreSQL) or database (MySQL) of the '
                   'tables; ``init`` creates it', '(none)'),
        'table_prefix': ('prefix of the table names, for apps that share a '
                         'database', None),
        'timeout': ('seconds to connect, or to wait for a busy SQLite file; '
                    'bounds how long a commit waits for a database that is '
                    'down', None),
        'poll_interval': ('longest a waiting consumer sleeps without looking '
                          'when no wakeup reaches it', None),
        'outbox': ('write the tasks in the app\'s own transaction when one '
                   'of its zope.sqlalchemy sessions is on this database',
                   None),
        'session': ('the dotted name of the app\'s ``scoped_session``: only '
                    'its session carries the tasks', '(none)'),
    },
    'sync': {
        'retry_max_count': ('retries, run at once, before a task is '
                            'dead-lettered', None),
    },
    'consumer': {
        'name': ('consumer name, unique among live consumers; a stable name '
                 'requeues its own leftovers at once on restart',
                 'the section\'s suffix (or queue), ``@host:pid``'),
        'queue': ('the queue consumed', '``default``'),
        'concurrent_limit': ('tasks in flight at once (threads)', None),
        'retry_max_count': ('retries before a task is dead-lettered', None),
        'retry_delay': ('first retry delay in seconds; it doubles', None),
        'retry_delay_max': ('cap of the retry delay', None),
        'poll_interval': ('longest single wait for work', None),
        'prefetch': ('tasks one thread reserves per round trip, or '
                     '``auto``: more while tasks run short (up to 32, about '
                     '20 ms of work), one after a task that ran long',
                     None),
        'lease_timeout': ('a consumer not heard of this long is gone; its '
                          'tasks in flight are requeued', None),
        'max_deliveries': ('a task found unfinished this many times (it '
                           'kills its consumer) is dead-lettered', None),
        'staged_grace': ('staged batches a sweep found this long ago '
                         'lost their process; the sweep promotes them',
                         None),
        'stop_timeout': ('how long stopping waits for tasks in flight',
                         None),
    },
    'filter': {
        'manage_transaction': ('begin a transaction per request, commit it '
                               'on 2xx/3xx, abort it otherwise; for apps '
                               'without pyramid_tm or Zope', None),
    },
    'management': {
        'api_key': ('the key clients send; at least 16 characters, else the '
                    'app refuses to start', '(required)'),
        'queues': ('the queues shown, whitespace-separated', 'every queue'),
        'metrics': ('record Prometheus metrics in this process and serve '
                    'them at ``/metrics``', None),
        'max_body_size': ('bytes a request body may have; a larger one is '
                          'refused with 413 before it is read', None),
        'drain_max_runtime': ('seconds a drain (``POST queues/{queue}/'
                              'drain``) runs at most, and by default; a '
                              'longer ``runtime`` asked for is cut to it',
                              None),
        'app': ('the dotted name (``package.module.name``) of the WSGI app '
                'drains run tasks in, the one a worker would call; in Zope, '
                '``wsgi_taskqueue.zope.events.task_app``',
                'that of the taskqueue filter or Pyramid tween in front'),
    },
}

#: The tables SETTINGS_HELP describes, by the same names.
SETTINGS_TABLES = {'queue': QUEUE_SETTINGS, 'redis': REDIS_SETTINGS,
                   'sql': SQL_SETTINGS, 'sync': SYNC_SETTINGS,
                   'consumer': CONSUMER_SETTINGS, 'filter': FILTER_SETTINGS,
                   'management': MANAGEMENT_SETTINGS}
