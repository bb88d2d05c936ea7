"""collective.taskqueue's layout: a web instance that only adds tasks and a
worker instance that runs them, each from its own zope.conf, sharing a ZEO
server."""
import subprocess
import sys

import pytest

from wsgi_taskqueue.testing import free_port

from .conftest import taskqueue_conf
from .instance import ZopeInstance


@pytest.fixture(scope='module')
def zeo_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp('zeo')
    port = free_port()
    with open(directory / 'zeo.log', 'wb') as log:
        process = subprocess.Popen(
            [sys.executable, '-m', 'ZEO.runzeo', '-a', f'127.0.0.1:{port}',
             '-f', str(directory / 'Data.fs')],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    yield port
    process.terminate()
    process.wait(30)


def zodb(port, server_sync=True):
    sync = 'server-sync true' if server_sync else ''
    return f"""%import ZEO
<zodb_db main>
  <clientstorage>
    server 127.0.0.1:{port}
    {sync}
  </clientstorage>
  mount-point /
</zodb_db>"""


@pytest.fixture(scope='module')
def web_and_worker(tmp_path_factory, zope_redis, zeo_server, zope_bin):
    base = tmp_path_factory.mktemp('zeo-instances')
    web = ZopeInstance(base / 'web', taskqueue_conf(
        zope_redis.url, consumers=False).replace(
            'secret a-long', 'key_prefix zeo\n  secret a-long'),
        zodb=zodb(zeo_server), bin_dir=zope_bin)
    worker = ZopeInstance(base / 'worker', taskqueue_conf(
        zope_redis.url).replace(
            'secret a-long', 'key_prefix zeo\n  secret a-long'),
        zodb=zodb(zeo_server), bin_dir=zope_bin)
    try:
        yield web.start(), worker.start()
    finally:
        web.stop()
        worker.stop()


def test_every_task_runs_once_in_the_worker_and_finds_what_it_created(
        web_and_worker):
    web, worker = web_and_worker
    task_ids = []
    for number in range(10):
        response = web.get(f'/@@enqueue?create=made-{number}')
        assert response.status_code == 200
        task_ids.append(response.text)
    records = [worker.record_of(task_id) for task_id in task_ids]
    assert [r['found'] for r in records] == [True] * 10
    assert [r['user'] for r in records] == ['admin'] * 10
    ran = [r['task_id'] for r in web.records()]
    assert sorted(ran) == sorted(task_ids)
    assert 'server-sync' not in worker.output() + (
        worker.directory / 'var' / 'log' / 'event.log').read_text()


def test_a_worker_on_zeo_without_server_sync_is_warned(tmp_path, zope_redis,
                                                        zeo_server, zope_bin):
    worker = ZopeInstance(tmp_path / 'unsynced', taskqueue_conf(
        zope_redis.url).replace(
            'secret a-long', 'key_prefix unsynced\n  secret a-long'),
        zodb=zodb(zeo_server, server_sync=False), bin_dir=zope_bin)
    try:
        worker.start()
        log = (worker.directory / 'var' / 'log' / 'event.log').read_text()
        assert 'runs without server-sync' in log
        assert 'server-sync true' in log
    finally:
        worker.stop()
