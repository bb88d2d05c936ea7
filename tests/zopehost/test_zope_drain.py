"""A Zope site with no consumer, drained over HTTP as cron does: the
management app mounted beside Zope in zope.ini (Paste's urlmap), told
the app tasks run in by its ``app`` setting."""
import pytest
import requests

from .conftest import taskqueue_conf
from .instance import ZopeInstance

KEY = 'zope-drain-key-0123456789'
MANAGEMENT = f"""
[composite:main]
use = egg:Paste#urlmap
/ = site
/_tasks = management

[app:management]
use = egg:wsgi-taskqueue#management
api_key = {KEY}
app = wsgi_taskqueue.zope.events.task_app
"""


@pytest.fixture(scope='module')
def drain_site(tmp_path_factory, zope_redis, zope_bin):
    conf = taskqueue_conf(zope_redis.url, consumers=False).replace(
        'secret a-long', 'key_prefix zope-drain\n  secret a-long')
    instance = ZopeInstance(tmp_path_factory.mktemp('zope-drain') /
                            'instance', conf, bin_dir=zope_bin)
    zope_ini = instance.directory / 'etc' / 'zope.ini'
    text = zope_ini.read_text()
    assert '[pipeline:main]' in text
    zope_ini.write_text(text.replace('[pipeline:main]', '[pipeline:site]')
                        + MANAGEMENT)
    try:
        yield instance.start()
    finally:
        instance.stop()


def drain(site, key=KEY) -> requests.Response:
    return requests.post(f'{site.url}/_tasks/queues/default/drain',
                         params={'runtime': '30'}, headers={'X-API-Key': key},
                         timeout=60)


def test_a_drain_runs_the_tasks_zope_committed(drain_site):
    ids = [drain_site.get('/@@enqueue').text for _ in range(3)]
    assert drain(drain_site, key='x' * 20).status_code == 404

    response = drain(drain_site)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer['tasks'], answer['stopped_because']) == (3, 'empty')
    assert answer['outcomes']['done'] == 3
    records = {record['task_id']: record for record in drain_site.records()}
    # Each ran once, through Zope's publisher, as the user who added it.
    assert sorted(records) == sorted(ids)
    for task_id in ids:
        assert records[task_id]['user'] == 'admin'
        assert records[task_id]['layer'] is True
