"""Task options end to end: the demo app (examples/plain) served under
waitress adds tasks with countdown, name and priority from its form, and
the runs its tasks record in its SQLite file say what ran, when and in
which order."""
import concurrent.futures
import subprocess
import sys
import time

import pytest
import requests

from .test_demo import summary

KEY = {'X-API-Key': 'demo-key-change-me'}


def enqueue(url: str, user: str, count: int = 1, **options) -> None:
    """One transaction of ``count`` tasks run as ``user``, with options."""
    response = requests.post(f'{url}/enqueue', allow_redirects=False,
                             data={'count': count, 'user': user, **options},
                             timeout=30)
    assert response.status_code == 303, response.text


def runs_of(url: str, user: str) -> list[dict]:
    """The runs of ``user``'s tasks, oldest first."""
    return [run for run in reversed(summary(url)['runs'])
            if run['user'] == user]


def task_state(url: str, task_id: str) -> str:
    response = requests.get(f'{url}/dashboard/tasks/{task_id}', headers=KEY,
                            timeout=10)
    response.raise_for_status()
    return response.json()['state']


def web_only(deployment, ini, consumers: int | None = None):
    """Beside ``ini``: the same app and queue without consumers, served
    with the same variables; and, with ``consumers``, ``ini`` itself with
    that many consumer threads (for ``deployment.worker``)."""
    text = ini.read_text()
    if consumers is not None:
        ini.write_text(text.replace('concurrent_limit = 2',
                                    f'concurrent_limit = {consumers}'))
    web = ini.with_name(f'{ini.stem}-web.ini')
    web.write_text(text.replace('[taskqueue-server]', '[consumers-off]'))
    if ini in deployment.variables:
        deployment.variables[web] = deployment.variables[ini]
    return web


def test_a_countdown_task_runs_once_when_due_and_not_before(serve,
                                                            deployment):
    url = serve('plain')
    queued_at = time.time()
    enqueue(url, 'later', countdown=2)
    deployment.wait_until(lambda: runs_of(url, 'later'), 'the task due later')
    [run] = runs_of(url, 'later')
    assert run['ran_at'] >= queued_at + 2
    # Done: it will not run again.
    assert task_state(url, run['task_id']) == 'done'
    assert len(runs_of(url, 'later')) == 1


def test_twenty_concurrent_transactions_adding_one_name_give_one_task(
        serve, deployment):
    url = serve('plain')
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda n: enqueue(url, f'user{n}', name='nightly'),
                      range(20)))
    # The status log records every task queued; the dropped ones never
    # were.
    tasks = requests.get(f'{url}/dashboard/tasks', headers=KEY,
                         timeout=10).json()['tasks']
    [named] = [task for task in tasks if task['name'] == 'nightly']
    deployment.wait_until(lambda: task_state(url, named['id']) == 'done',
                          'the named task to be done')
    runs = summary(url)['runs']
    assert [run['task_id'] for run in runs] == [named['id']]


@pytest.mark.parametrize('backend', ['redis', 'sqlite'])
def test_priorities_drain_in_order_under_a_mixed_backlog(deployment,
                                                         backend, request):
    redis_url = (request.getfixturevalue('redis_url')
                 if backend == 'redis' else None)
    ini = deployment.ini(f'plain/{backend}.ini', redis_url)
    url = deployment.serve(web_only(deployment, ini, consumers=1))
    backlog = [('low', '1'), ('middle', ''), ('high', '9'), ('low', '1'),
               ('top', '8'), ('middle', '5')]
    for user, priority in backlog:
        enqueue(url, user, count=3, priority=priority)
    deployment.worker(ini)  # now the consumer: one thread
    deployment.wait_until(lambda: summary(url, limit=0)['count'] >= 18,
                          'the backlog to drain')
    runs = list(reversed(summary(url)['runs']))
    assert [(run['user'], run['item']) for run in runs] == [
        (user, f'{item}/3')
        for user in ('high', 'top', 'middle', 'middle', 'low', 'low')
        for item in (1, 2, 3)]


def test_cancel_of_a_pending_and_a_scheduled_task(deployment, redis_url):
    ini = deployment.ini('plain/redis.ini', redis_url)
    url = deployment.serve(web_only(deployment, ini))
    enqueue(url, 'pending')
    enqueue(url, 'scheduled', countdown=1)
    tasks = requests.get(f'{url}/dashboard/tasks', headers=KEY,
                         timeout=10).json()['tasks']
    ids = {task['state']: task['id'] for task in tasks}
    assert set(ids) == {'queued', 'scheduled'}
    for task_id in ids.values():
        cancelled = subprocess.run(
            [sys.executable, '-m', 'wsgi_taskqueue', 'cancel', str(ini),
             task_id, f'redis_url={redis_url}'],
            capture_output=True, text=True, timeout=60)
        assert cancelled.returncode == 0, cancelled.stderr
    deployment.worker(ini)
    # Due after the scheduled one was: once it ran, that one would have.
    enqueue(url, 'marker', countdown=1.5)
    deployment.wait_until(lambda: runs_of(url, 'marker'), 'the marker task')
    assert [run['user'] for run in summary(url)['runs']] == ['marker']
    assert {task_state(url, task_id) for task_id in ids.values()} == {
        'cancelled'}
