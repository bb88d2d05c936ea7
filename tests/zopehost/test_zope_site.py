"""A Zope site, served by the stock ``runwsgi etc/zope.ini`` of a
``mkwsgiinstance`` instance, with wsgi-taskqueue configured in zope.conf
only: collective.taskqueue's behaviour, end to end."""
import json

import requests

import wsgi_taskqueue

from .instance import ADMIN


def finished_status(site, zope_redis, task_id, queue='default'):
    """The status record of a task, once its consumer acknowledged it
    (which happens after the task's own commit, so after its record)."""
    backend = wsgi_taskqueue.RedisQueue(queue, url=zope_redis.url)
    found = []

    def finished():
        found[:] = [backend.task_status(task_id)]
        return found[0] is not None and found[0]['state'] != 'running'
    try:
        site.wait_until(finished, f'task {task_id} to be acknowledged')
        return found[0]
    finally:
        backend.close()


def committed_marker(site):
    """Add a task, wait until it ran; every task committed before it ran
    before it (one consumer thread, first in first out)."""
    response = site.get('/@@enqueue')
    assert response.status_code == 200
    site.record_of(response.text)


def test_zope_ini_is_the_stock_one_but_for_its_port(zope_site):
    served = (zope_site.directory / 'etc' / 'zope.ini').read_text()
    changed = [(a, b) for a, b in zip(zope_site.stock_zope_ini.splitlines(),
                                      served.splitlines(), strict=True)
               if a != b]
    assert changed == [('port = 8080', f'port = {zope_site.port}')]


def test_a_task_runs_once_after_the_commit_as_its_user(zope_site, zope_redis):
    response = zope_site.get('/@@enqueue')
    assert response.status_code == 200
    task_id = response.text
    record = zope_site.record_of(task_id)
    assert record['user'] == 'admin'
    assert record['x_task_user_id'] == 'admin'
    assert record['layer'] is True
    # credentials = copy (the default): Authorization came from the raw
    # environ, and the site's own user folder authenticated it.
    assert record['authorization'] is True
    status = finished_status(zope_site, zope_redis, task_id)
    assert (status['state'], status['user']) == ('done', 'admin')
    committed_marker(zope_site)
    assert [r['task_id'] for r in zope_site.records()].count(task_id) == 1


def test_a_post_is_replayed_with_its_body(zope_site):
    response = requests.post(zope_site.url + '/@@enqueue', auth=ADMIN,
                             data={'note': 'hé, a note'}, timeout=30)
    assert response.status_code == 200
    record = zope_site.record_of(response.text)
    assert (record['method'], record['note']) == ('POST', 'hé, a note')


def test_a_body_the_view_read_itself_is_copied_whole(zope_site):
    body = '{"create": null, "note": "json"}'
    response = requests.post(
        zope_site.url + '/@@enqueue', auth=ADMIN, data=body,
        headers={'Content-Type': 'application/json'}, timeout=30)
    assert response.status_code == 200
    record = zope_site.record_of(response.text)
    assert (record['method'], record['body']) == ('POST', body)


def test_aborted_and_doomed_requests_queue_nothing(zope_site):
    before = len(zope_site.records())
    assert zope_site.get('/@@enqueue?outcome=abort').status_code == 500
    assert zope_site.get('/@@enqueue?outcome=doom').status_code == 200
    committed_marker(zope_site)
    assert len(zope_site.records()) == before + 1


def test_a_conflict_retry_queues_the_task_once_with_its_user(zope_site):
    before = len(zope_site.records())
    response = zope_site.get('/@@enqueue?outcome=conflict&key=retry-1')
    assert response.status_code == 200
    record = zope_site.record_of(response.text)
    assert record['user'] == record['x_task_user_id'] == 'admin'
    committed_marker(zope_site)
    assert len(zope_site.records()) == before + 2


def test_task_headers_from_the_network_are_stripped(zope_site):
    response = zope_site.get('/@@headers', auth=None, headers={
        'X-Task-Id': 'forged', 'X-Task-User-Id': 'admin',
        'X-Task-Queue': 'default'})
    assert response.json() == {}


def test_a_task_layer_view_is_reachable_only_from_a_task(zope_site):
    assert zope_site.get('/@@task-only').status_code == 404
    response = zope_site.get('/@@enqueue?target=/@@task-only')
    record = zope_site.record_of(response.text)
    assert record['path'] == '/@@task-only' and record['layer'] is True


def test_with_credentials_user_id_pas_logs_the_task_in_as_its_user(
        zope_site, zope_redis):
    assert zope_site.get('/@@setup-pas').status_code == 200
    alice = ('alice', 'alice-password')
    response = zope_site.get(
        '/site/@@enqueue?queue=userid&target=/site/@@record', auth=alice)
    assert response.status_code == 200
    record = zope_site.record_of(response.text)
    assert record['user'] == record['x_task_user_id'] == 'alice'
    # No Authorization travelled: the plugin logged the task in.
    assert record['authorization'] is False
    assert finished_status(zope_site, zope_redis, response.text,
                           'userid')['state'] == 'done'


def test_the_plugin_can_be_added_through_the_zmi(zope_site):
    assert zope_site.get('/@@setup-pas').status_code == 200
    form = zope_site.get('/site/acl_users/manage_addProduct/'
                         'wsgi_taskqueue.zope/manage_addTaskUserPluginForm')
    assert form.status_code == 200
    assert 'manage_addTaskUserPlugin' in form.text
    added = zope_site.get('/site/acl_users/manage_addProduct/'
                          'wsgi_taskqueue.zope/manage_addTaskUserPlugin',
                          params={'id': 'another'})
    assert added.status_code == 200
    listing = zope_site.get('/site/acl_users/manage_main')
    assert 'another' in listing.text


def test_the_operator_commands_read_the_sites_zope_conf(zope_site, capsys):
    from wsgi_taskqueue.cli import main

    zope_conf = zope_site.directory / 'etc' / 'zope.conf'
    assert main(['status', str(zope_conf), '--json', '--check']) == 0
    statuses = json.loads(capsys.readouterr().out)
    assert [(s['queue'], s['live_consumers']) for s in statuses] == [
        ('default', 1), ('userid', 1)]
