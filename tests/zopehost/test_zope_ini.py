"""Sites that prefer zope.ini: the filter and the server runner, with the
package's ZCML for the user, the layer and the header stripping."""
import pytest

from .instance import ZopeInstance

INI_SECTIONS = """
[filter:taskqueue]
use = egg:wsgi-taskqueue#taskqueue

[taskqueue]
type = redis
url = {redis_url}
key_prefix = zope-ini
secret = a-long-random-string

[taskqueue-server]
name = ini-worker
poll_interval = 0.2
"""


@pytest.fixture(scope='module')
def ini_site(tmp_path_factory, zope_redis, zope_bin):
    instance = ZopeInstance(tmp_path_factory.mktemp('zope-ini') / 'instance',
                            '', bin_dir=zope_bin)
    zope_ini = instance.directory / 'etc' / 'zope.ini'
    text = zope_ini.read_text()
    text = text.replace('use = egg:waitress#main',
                        'use = egg:wsgi-taskqueue#waitress')
    text = text.replace('    zope\n', '    taskqueue\n    zope\n')
    assert 'egg:wsgi-taskqueue#waitress' in text
    assert '    taskqueue\n    zope\n' in text
    zope_ini.write_text(text + INI_SECTIONS.format(redis_url=zope_redis.url))
    try:
        yield instance.start()
    finally:
        instance.stop()


def test_a_task_added_under_the_filter_runs_as_its_user(ini_site):
    response = ini_site.get('/@@enqueue')
    assert response.status_code == 200
    record = ini_site.record_of(response.text)
    assert record['user'] == record['x_task_user_id'] == 'admin'
    assert record['layer'] is True


def test_task_headers_from_the_network_are_stripped_under_the_filter(
        ini_site):
    response = ini_site.get('/@@headers', auth=None,
                            headers={'X-Task-User-Id': 'admin'})
    assert response.json() == {}
