"""The demo app (examples/plain): every committed task runs exactly once."""
import collections

import requests

BATCHES = 6
BATCH_SIZE = 50


def enqueue(url: str, count: int, user: str) -> None:
    """One transaction of ``count`` tasks, queued as ``user``."""
    response = requests.post(f'{url}/enqueue', allow_redirects=False,
                             data={'count': count, 'user': user}, timeout=10)
    assert response.status_code == 303, response.text


def summary(url: str, **params) -> dict:
    response = requests.get(f'{url}/runs.json', params=params, timeout=10)
    response.raise_for_status()
    return response.json()


def enqueue_batches(url: str, batches: range) -> None:
    for batch in batches:
        enqueue(url, BATCH_SIZE, f'user{batch}')


def wait_for_every_run(deployment, url: str,
                       batches: int = BATCHES) -> list[dict]:
    total = batches * BATCH_SIZE
    deployment.wait_until(lambda: summary(url, limit=0)['count'] >= total,
                          f'{total} task runs')
    return summary(url)['runs']


def assert_each_ran_once(runs: list[dict], batches: int = BATCHES) -> None:
    """Each batch's user and item number name one task: each must appear
    once, at the first attempt, under a task id of its own."""
    expected = collections.Counter(
        (f'user{batch}', f'{item}/{BATCH_SIZE}')
        for batch in range(batches) for item in range(1, BATCH_SIZE + 1))
    seen = collections.Counter((run['user'], run['item']) for run in runs)
    assert seen == expected, (
        f'missing: {expected - seen}, extra: {seen - expected}')
    assert len({run['task_id'] for run in runs}) == len(runs)
    assert {run['attempt'] for run in runs} == {1}


def test_each_committed_task_runs_once(serve, deployment):
    url = serve('plain')
    enqueue_batches(url, range(BATCHES))
    runs = wait_for_every_run(deployment, url)
    assert_each_ran_once(runs)


def test_a_worker_runs_the_tasks_a_web_process_queued(deployment, redis_url):
    url = deployment.serve(deployment.ini('plain/redis-web.ini', redis_url))
    # Half are queued before any consumer runs: they wait in Redis.
    enqueue_batches(url, range(BATCHES // 2))
    worker = deployment.worker(deployment.ini('plain/redis.ini', redis_url))
    enqueue_batches(url, range(BATCHES // 2, BATCHES))
    runs = wait_for_every_run(deployment, url)
    assert_each_ran_once(runs)
    assert {run['pid'] for run in runs} == {worker.popen.pid}


def test_the_page_shows_the_form_and_polls_the_runs(deployment):
    url = deployment.serve(deployment.ini('plain/local.ini'))
    response = requests.get(url, timeout=10)
    assert response.headers['Content-Type'].startswith('text/html')
    assert '<form method="post" action="enqueue">' in response.text
    assert "fetch('runs.json" in response.text


def test_a_network_request_cannot_run_the_task(deployment):
    url = deployment.serve(deployment.ini('plain/local.ini'))
    response = requests.post(f'{url}/work', timeout=10, headers={
        'X-Task-Id': 'forged', 'X-Task-Queue': 'default'})
    assert response.status_code == 404
    assert summary(url)['count'] == 0


def test_a_worker_beside_serve_shares_a_sqlite_queue(deployment):
    ini = deployment.ini('plain/sqlite.ini')
    url = deployment.serve(ini)
    worker = deployment.worker(ini)
    # The web process hears of its own commits at once; the worker polls
    # the file.  Batches keep coming until the worker has run some of them.
    batches = 0

    def worker_took_part() -> bool:
        nonlocal batches
        enqueue(url, BATCH_SIZE, f'user{batches}')
        batches += 1
        return str(worker.popen.pid) in summary(url, limit=0)['processes']

    deployment.wait_until(worker_took_part, 'the worker to run a task')
    runs = wait_for_every_run(deployment, url, batches)
    assert_each_ran_once(runs, batches)
    served_by = {run['pid'] for run in runs}
    assert served_by == {process.popen.pid
                         for process in deployment.processes}


def test_tasks_in_a_sqlite_queue_survive_a_restart(deployment):
    ini = deployment.ini('plain/sqlite.ini')
    # Queued by a web process without consumers, which then stops; the
    # same file served again runs them.
    web_only = ini.with_name('sqlite-web.ini')
    web_only.write_text(ini.read_text().replace(
        '[taskqueue-server]', '[consumers-off]'))
    url = deployment.serve(web_only)
    enqueue_batches(url, range(BATCHES))
    deployment.processes.pop().stop()
    assert deployment.serve(ini) == url
    runs = wait_for_every_run(deployment, url)
    assert_each_ran_once(runs)


def test_the_page_shows_a_task_retried_and_one_dead_on_the_dashboard(
        serve, deployment):
    url = serve('plain')
    page = requests.get(url, timeout=10).text
    assert 'href="dashboard/?key=demo-key-change-me"' in page
    response = requests.post(f'{url}/lifecycle', allow_redirects=False,
                             timeout=10)
    assert response.status_code == 303
    deployment.wait_until(
        lambda: summary(url, limit=0)['count'] >= 4, 'four runs')
    runs = summary(url)['runs']
    assert sorted((run['item'], run['attempt']) for run in runs) == [
        ('flaky', 3), ('flaky: 503, retried', 1), ('flaky: 503, retried', 2),
        ('refused: 400, dead', 1)]
    dashboard = requests.Session()
    page = dashboard.get(f'{url}/dashboard/?key=demo-key-change-me',
                         timeout=10)
    assert page.status_code == 200
    [letter] = dashboard.get(f'{url}/dashboard/dead-letters', timeout=10
                             ).json()['dead_letters']
    assert (letter['url'], letter['status'], letter['attempt']) == (
        '/work?item=refused&refuse=yes', '400 Bad Request', 1)
