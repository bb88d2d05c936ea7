"""A drain over HTTP, as cron runs it where no worker may run: the demo
app served by ``wsgi-taskqueue serve`` with no consumer
(examples/plain/redis-web.ini, the management app at /dashboard/ behind
the taskqueue filter), its tasks run by ``curl -X POST .../drain``."""
import collections
import json
import subprocess

import requests

from .test_demo import enqueue, summary

#: examples/plain/redis-web.ini's dashboard_key.
KEY = 'demo-key-change-me'


def curl_drain(url: str, query: str, key: str = KEY) -> tuple[int, dict]:
    """What a crontab line runs; the status and the JSON answer."""
    result = subprocess.run(
        ['curl', '--silent', '--show-error', '--max-time', '60', '-X',
         'POST', '-H', f'X-API-Key: {key}', '--write-out', '\n%{http_code}',
         f'{url}/dashboard/queues/default/drain?{query}'],
        capture_output=True, text=True, timeout=90, check=True)
    body, _, status = result.stdout.rpartition('\n')
    return int(status), json.loads(body)


def test_cron_drains_what_the_web_process_committed(deployment, redis_url):
    url = deployment.serve(deployment.ini('plain/redis-web.ini', redis_url))
    enqueue(url, 20, 'ann')  # one transaction of 20 tasks
    # One task that fails twice (503) before it succeeds, one refused (400).
    response = requests.post(f'{url}/lifecycle', allow_redirects=False,
                             timeout=10)
    assert response.status_code == 303
    assert summary(url, limit=0)['count'] == 0  # no consumer runs them

    # A wrong key: the same 404 as any unknown path, and nothing runs.
    assert curl_drain(url, 'max_tasks=5', key='x' * 20) == (
        404, {'error': 'not found'})
    assert summary(url, limit=0)['count'] == 0

    status, first = curl_drain(url, 'max_tasks=10')
    assert status == 200
    assert (first['tasks'], first['stopped_because']) == (10, 'max_tasks')
    assert first['outcomes'] == {'done': 10, 'redirected': 0, 'retried': 0,
                                 'dead': 0}
    assert summary(url, limit=0)['count'] == 10

    status, second = curl_drain(url, 'runtime=30')
    assert status == 200
    assert (second['tasks'], second['stopped_because']) == (12, 'empty')
    assert second['outcomes'] == {'done': 10, 'redirected': 0,
                                  'retried': 1, 'dead': 1}

    # In the app's own database: each of the 20 ran once, as ann, at its
    # first attempt; the flaky one failed once, the refused one ran once.
    runs = summary(url)['runs']
    items = collections.Counter(run['item'] for run in runs)
    assert items == {**{f'{n}/20': 1 for n in range(1, 21)},
                     'flaky: 503, retried': 1, 'refused: 400, dead': 1}
    assert {run['user'] for run in runs if '/' in run['item']} == {'ann'}
    assert len({run['task_id'] for run in runs}) == 22
    # The flaky task waits for its retry: the next cron run takes it.
    assert requests.get(f'{url}/dashboard/status', headers={
        'X-API-Key': KEY}, timeout=10).json()['queues'][0]['counts'][
            'delayed'] == 1
