"""Queue backends: ``local`` (in-process), ``sync`` (run at commit),
``redis`` and ``sql``; see IQueueBackend."""
from .local import LocalQueue
from .redis import RedisQueue
from .sql import SqlQueue
from .sync import SyncQueue

#: ``type = ...`` of a ``[taskqueue]`` section -> backend class.  The SQL
#: queue answers to the name of its database too.
BACKEND_TYPES = {'local': LocalQueue, 'sync': SyncQueue, 'redis': RedisQueue,
                 'sql': SqlQueue,
                 'postgresql': SqlQueue, 'sqlite': SqlQueue,
                 'mysql': SqlQueue}

__all__ = ['LocalQueue', 'SyncQueue', 'RedisQueue', 'SqlQueue',
           'BACKEND_TYPES']
