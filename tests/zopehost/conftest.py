"""A Zope site served by its own ``runwsgi``, configured through zope.conf
only, on a Redis of its own."""
import subprocess

import pytest

from wsgi_taskqueue.testing import RedisServer

from .instance import BIN, ZopeInstance, zope5_bin


@pytest.fixture(scope='package', params=['zope6', 'zope5'])
def zope_bin(request):
    """Zope 6 (the test environment's) and Zope 5.x in turn."""
    bin_dir = BIN if request.param == 'zope6' else zope5_bin()
    version = subprocess.run(
        [str(bin_dir / 'python'), '-c',
         'import importlib.metadata as m; print(m.version("Zope"))'],
        check=True, capture_output=True, text=True).stdout
    assert version.startswith(request.param[-1] + '.'), version
    return bin_dir


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
def zope_site(tmp_path_factory, zope_redis, zope_bin):
    instance = ZopeInstance(tmp_path_factory.mktemp('zope') / 'instance',
                            taskqueue_conf(zope_redis.url), bin_dir=zope_bin)
    try:
        yield instance.start()
    finally:
        instance.stop()
