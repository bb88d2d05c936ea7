"""collective.taskqueue's layout: a web instance that only adds tasks and a
worker instance that runs them, each from its own zope.conf, sharing a ZEO
server."""
import subprocess
import sys
import uuid

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
    """With server-sync: ZEO's ``<clientstorage>``; without: ZODB's
    ``<zeoclient>``, as plone.recipe.zope2instance writes it."""
    if server_sync:
        return f"""%import ZEO
<zodb_db main>
  <clientstorage>
    server 127.0.0.1:{port}
    server-sync true
  </clientstorage>
  mount-point /
</zodb_db>"""
    return f"""<zodb_db main>
  <zeoclient>
    server 127.0.0.1:{port}
    storage 1
  </zeoclient>
  mount-point /
</zodb_db>"""


def conf(redis_url, consumers):
    return taskqueue_conf(redis_url, consumers).replace(
        'secret a-long', 'key_prefix zeo\n  secret a-long')


@pytest.fixture(scope='module', params=['server-sync', 'recipe'])
def web_and_worker(request, tmp_path_factory, zope_redis, zeo_server,
                   zope_bin):
    """The web instance and the worker; the worker with server-sync, then
    as plone.recipe.zope2instance configures it (without)."""
    base = tmp_path_factory.mktemp('zeo-instances')
    web = ZopeInstance(base / 'web', conf(zope_redis.url, consumers=False),
                       zodb=zodb(zeo_server), bin_dir=zope_bin)
    worker = ZopeInstance(
        base / 'worker', conf(zope_redis.url, consumers=True),
        zodb=zodb(zeo_server, server_sync=request.param == 'server-sync'),
        bin_dir=zope_bin)
    try:
        yield web.start(), worker.start()
    finally:
        web.stop()
        worker.stop()


def event_log(instance):
    return (instance.directory / 'var' / 'log' / 'event.log').read_text()


def test_every_task_runs_once_in_the_worker_and_finds_what_it_created(
        web_and_worker):
    web, worker = web_and_worker
    task_ids = []
    run = uuid.uuid4().hex  # the instances of every parameter share a ZODB
    for number in range(10):
        response = web.get(f'/@@enqueue?create=made-{run}-{number}')
        assert response.status_code == 200
        task_ids.append(response.text)
    records = [worker.record_of(task_id) for task_id in task_ids]
    assert [r['found'] for r in records] == [True] * 10
    assert [r['user'] for r in records] == ['admin'] * 10
    ran = [r['task_id'] for r in web.records() if r['task_id'] in task_ids]
    assert sorted(ran) == sorted(task_ids)


def test_a_worker_without_server_sync_is_warned(web_and_worker):
    web, worker = web_and_worker
    synced = '<clientstorage>' in (
        worker.directory / 'etc' / 'zope.conf').read_text()
    warned = 'runs without server-sync' in event_log(worker)
    assert warned is not synced
    assert 'server-sync' not in event_log(web)  # it runs no consumers


@pytest.mark.parametrize('server_sync', [False, True])
def test_a_task_sees_every_commit_made_before_it(zeo_server, server_sync):
    """Right after another client's commit, a client synced as a task's
    request is sees it, with server-sync or without.  (Without the wait
    for the invalidations, about one round of five missed the commit.)"""
    import transaction
    import ZEO

    from wsgi_taskqueue.zope import zeo

    address = ('127.0.0.1', zeo_server)
    writer = ZEO.DB(address, server_sync=True)
    reader = ZEO.DB(address, server_sync=server_sync)
    writing, reading = (transaction.TransactionManager() for _ in range(2))
    written, read = writer.open(writing), reader.open(reading)
    key = f'synced-marker-{uuid.uuid4().hex}'
    seen = []
    try:
        for number in range(300):
            with writing:
                written.root()[key] = number
            assert zeo.sync_with_server(reader) == 1
            with reading:
                seen.append(read.root().get(key))
    finally:
        written.close()
        read.close()
        writer.close()
        reader.close()
    assert seen == list(range(300))
