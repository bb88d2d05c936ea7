"""Queue backends: ``local`` (in-process) and ``redis``; see IQueueBackend."""
from .local import LocalQueue
from .redis import RedisQueue

#: ``type = ...`` of a ``[taskqueue]`` section -> backend class.
BACKEND_TYPES = {'local': LocalQueue, 'redis': RedisQueue}

__all__ = ['LocalQueue', 'RedisQueue', 'BACKEND_TYPES']
