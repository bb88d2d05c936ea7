"""A wrong zope.conf stops Zope at startup, saying where."""
import pytest

import wsgi_taskqueue

from .conftest import taskqueue_conf
from .instance import ZopeInstance


@pytest.mark.parametrize('sections, expected', [
    ('<taskqueue default>\n</taskqueue>\n'
     '<taskqueue-server w1>\n  queue nosuch\n</taskqueue-server>\n',
     ["zope.conf of {home}", "<taskqueue-server w1>", "key 'queue'",
      "undefined queue 'nosuch'"]),
    ('<taskqueue default>\n  type redis\n  port many\n</taskqueue>\n',
     ["port: bad value 'many'", 'line ', '{home}/etc/zope.conf']),
    ('<taskqueue default>\n  colour blue\n</taskqueue>\n',
     ["unknown key 'colour'", 'line ', '{home}/etc/zope.conf']),
])
def test_zope_does_not_start_and_names_the_section_and_key(
        tmp_path, sections, expected):
    instance = ZopeInstance(tmp_path / 'instance',
                            '%import wsgi_taskqueue\n' + sections)
    with pytest.raises(AssertionError, match='Zope exited') as raised:
        instance.start()
    for text in expected:
        assert text.format(home=instance.directory) in str(raised.value)


def test_sigterm_stops_the_consumers_and_releases_their_leases(
        tmp_path, zope_redis):
    conf = taskqueue_conf(zope_redis.url).replace(
        'secret a-long', 'key_prefix sigterm\n  secret a-long')
    instance = ZopeInstance(tmp_path / 'instance', conf).start()
    queue = wsgi_taskqueue.RedisQueue(url=zope_redis.url,
                                      key_prefix='sigterm')
    try:
        instance.wait_until(lambda: any(c['alive'] for c in queue.consumers()),
                            'hold its lease')
        assert instance.stop() == 0
        assert queue.consumers() == []
    finally:
        instance.stop()
        queue.close()
