"""A Zope site served by its own ``runwsgi``, configured through zope.conf
only, on a Redis of its own."""
import pytest

from wsgi_taskqueue.testing import RedisServer

from .instance import ZopeInstance


@pytest.fixture(scope='package')
def zope_redis():
    with RedisServer() as server:
        yield server


def taskqueue_conf(redis_url: str, consumers: bool = True) -> str:
    """collective.taskqueue's zope.conf snippet, with named sections."""
    conf = f"""
%import wsgi_taskqueue
<taskqueue default>
  type redis
  url {redis_url}
  secret a-long-random-string
</taskqueue>
<taskqueue userid>
  type redis
  url {redis_url}
  secret a-long-random-string
  credentials user-id
</taskqueue>
"""
    if consumers:
        conf += """
<taskqueue-server worker1>
  queue default
  poll_interval 0.2
</taskqueue-server>
<taskqueue-server worker2>
  queue userid
  poll_interval 0.2
</taskqueue-server>
"""
    return conf


@pytest.fixture(scope='package')
def zope_site(tmp_path_factory, zope_redis):
    instance = ZopeInstance(tmp_path_factory.mktemp('zope') / 'instance',
                            taskqueue_conf(zope_redis.url))
    try:
        yield instance.start()
    finally:
        instance.stop()
