"""A kept result, end to end: a task enqueued through the app served by
waitress, run by a worker process, its result read through
``taskqueue.result``, ``wsgi-taskqueue show`` and the management API."""
import json
import subprocess
import sys

import webtest

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.management import make_app

from .conftest import BACKENDS

pytestmark = BACKENDS

KEY = 'results-management-key-0123456789'


def test_a_result_is_readable_through_result_the_cli_and_the_api(cluster):
    cluster.web()
    cluster.worker('w1')
    response = cluster.enqueue(name='kept', keep_result='1')
    assert response.status_code == 200, response.text
    [task_id] = response.json()['tasks']
    cluster.wait_for_runs([task_id])
    cluster.wait_until(lambda: taskqueue.result(task_id) is not None,
                       'the result to be kept')

    assert taskqueue.result(task_id) == {
        'outcome': 'done', 'status': '200 OK',
        'headers': {'Content-Type': 'text/plain; charset=UTF-8'},
        'body': b'done', 'size': 4, 'truncated': False}
    shown = subprocess.run(
        [sys.executable, '-m', 'wsgi_taskqueue', 'show',
         str(cluster.directory / 'web.ini'), task_id, '--json'],
        capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)['result']['body'] == 'done'
    api = webtest.TestApp(make_app(KEY))
    record = api.get(f'/tasks/{task_id}',
                     headers={'X-API-Key': KEY}).json
    assert (record['state'], record['result']['status'],
            record['result']['body']) == ('done', '200 OK', 'done')
