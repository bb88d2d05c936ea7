"""The dashboard in a real headless Chromium (Debian's), driven by
Playwright: an app, its consumer and the management app served by waitress
in a subprocess on the test Redis.

Screenshots are kept in tests/artifacts/.  ``make test`` installs Chromium
when it is missing; without it this test fails, saying so.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest
import redis
import requests
import transaction
from playwright import sync_api as playwright

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.testing import free_port

HERE = pathlib.Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / 'artifacts'
CHROMIUM = os.environ.get('CHROMIUM') or shutil.which('chromium') \
    or shutil.which('chromium-browser')
#: A browser that never talks to the network on its own (this machine has
#: none) and runs as root in a container.  Playwright gives it a fresh
#: profile (--user-data-dir) of its own.
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-dev-shm-usage', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
API_KEY = 'browser-test-key-0123456789'
#: Generous for a loaded two-core machine; the waits end as soon as the
#: page shows what they wait for.
TIMEOUT_MS = 20_000
START_TIMEOUT = 30.0

if CHROMIUM is None:
    pytest.fail('chromium is not installed: `make test` installs it '
                '(apt-get install chromium)', pytrace=False)


class Site:
    """``server.py`` in a subprocess; its output goes to a file."""

    def __init__(self, redis_url: str, directory: pathlib.Path,
                 queues: list[str] = ()):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.log_path = directory / 'server.log'
        with open(self.log_path, 'wb') as log:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / 'server.py'), redis_url,
                 str(self.port), API_KEY, *queues],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED='1'))

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                requests.get(self.url + '/runs', timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None or \
                        time.monotonic() > deadline:
                    raise AssertionError('the server did not start:\n'
                                         + self.output()) from None
                time.sleep(0.05)

    def add(self, url: str, queue: str | None = None) -> str:
        """Enqueue a task as another service would: over the HTTP API."""
        response = requests.post(self.url + '/manage/tasks', json={
            'url': url, **({'queue': queue} if queue else {})},
            headers={'X-API-Key': API_KEY}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()['id']

    def runs(self) -> list[dict]:
        return requests.get(self.url + '/runs', timeout=10).json()

    def output(self) -> str:
        return self.log_path.read_text(errors='replace')[-6000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def site(redis_url, tmp_path):
    site = Site(redis_url, tmp_path)
    try:
        site.wait_until_serving()
        yield site
    finally:
        site.stop()


@pytest.fixture
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={'width': 1280, 'height': 900})
    page.set_default_timeout(TIMEOUT_MS)
    return page


def page_errors(page) -> list[str]:
    """What ``page`` logs as an error from now on (a script error, a
    refused Content-Security-Policy): a test asserts it stays empty."""
    errors = []
    page.on('pageerror', lambda error: errors.append(str(error)))
    page.on('console', lambda message: message.type == 'error'
            and errors.append(f'{message.text} {message.location}'))
    return errors


def test_the_dashboard_shows_tasks_run_and_requeues_a_dead_letter(site, page):
    expect = playwright.expect
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)

    # Anything the page logs as an error (a script error, a refused
    # Content-Security-Policy) fails the test.
    errors = page_errors(page)

    # The key opens a session, and leaves the address bar.
    page.goto(f'{site.url}/manage?key={API_KEY}')
    assert page.url == f'{site.url}/manage/'
    queue = page.locator('table[data-panel=queues] tr[data-queue=default]')
    pending = queue.locator('[data-count=pending]')
    running = queue.locator('[data-count=processing]')
    dead = queue.locator('[data-count=dead]')
    done = queue.locator('[data-count=done]')
    expect(pending).to_have_text('0')
    expect(page.locator('tr[data-consumer=browser-test]')).to_contain_text(
        'alive')

    # Five tasks: the consumer holds one at the gate, four wait.
    for _ in range(5):
        site.add('/job')
    expect(pending).to_have_text('4')
    expect(running).to_have_text('1')
    expect(page.locator('tr[data-consumer=browser-test] '
                        '[data-count=in_flight]')).to_have_text('1')

    # Open the gate: all five run.
    requests.get(site.url + '/open', timeout=10)
    expect(pending).to_have_text('0')
    expect(running).to_have_text('0')
    expect(done).to_have_text('5')

    # A task the app refuses (410) is dead at once.
    task_id = site.add('/fail-once')
    letter = page.locator(f'table[data-panel=letters] tr[data-task="{task_id}"]')
    expect(letter).to_have_count(1)
    expect(dead).to_have_text('1')
    expect(letter).to_contain_text('410 Gone')
    expect(page.locator(f'table[data-panel=failures] tr[data-task="{task_id}"]'
                        )).to_have_attribute('data-state', 'dead')
    page.screenshot(path=str(ARTIFACTS / 'dashboard-dead-letter.png'),
                    full_page=True)
    # The app's answer is shown as text, not markup.
    letter.locator('summary').click()
    expect(letter.locator('pre')).to_contain_text('<b>for now</b>')

    # Requeue it from the page: it runs again, and is done.
    letter.get_by_role('button', name='Requeue').click()
    expect(page.locator('#message')).to_contain_text(f'Requeued task {task_id}')
    expect(letter).to_have_count(0)
    expect(dead).to_have_text('0')
    expect(done).to_have_text('6')
    expect(page.locator(f'table[data-panel=tasks] tr[data-task="{task_id}"]')
           ).to_have_attribute('data-state', 'done')
    assert [run['attempt'] for run in site.runs()
            if run['task'] == task_id] == [1, 1]
    page.screenshot(path=str(ARTIFACTS / 'dashboard.png'), full_page=True)

    # Its id opens its page: done, at its one attempt since the requeue,
    # styled by the dashboard's stylesheet; the page leads back.
    page.locator(f'table[data-panel=tasks] tr[data-task="{task_id}"] '
                 'td.id a').click()
    expect(page.locator('h1')).to_contain_text(task_id)
    expect(page.locator('tr[data-field=State] td')).to_have_text('done')
    expect(page.locator('table[data-panel=attempts] tbody tr')
           ).to_have_count(1)
    assert page.locator('th').first.evaluate(
        'th => getComputedStyle(th).textAlign') == 'left'
    page.get_by_role('link', name='Back to the dashboard').click()
    expect(done).to_have_text('6')
    assert errors == []


def test_the_jobs_panel_follows_a_jobs_progress_and_closes_it(site, page,
                                                              redis_url):
    expect = playwright.expect
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    errors = page_errors(page)
    # This process adds to the site's queue, as the site's app would.
    wsgi_taskqueue.register_queue('default', wsgi_taskqueue.RedisQueue(
        url=redis_url, secrets=['browser-test-secret']))
    with transaction.manager:
        job = taskqueue.job(on_complete='/job', label='monthly-report')
        taskqueue.add('/fail-once', job=job)  # dead at once: failed
        for _ in range(4):
            taskqueue.add('/job', job=job)  # held at the gate
    page.goto(f'{site.url}/manage?key={API_KEY}')
    row = page.locator(f'table[data-panel=jobs] tr[data-job="{job}"]')
    expect(row).to_contain_text('monthly-report')
    expect(row.locator('[data-count=failed]')).to_have_text('1')
    expect(row.locator('[data-count=pending]')).to_have_text('4')
    expect(row.locator('rect.bar-dead')).to_have_attribute('width', '20')
    expect(row.locator('svg.progress title')).to_have_text(
        '0 done, 1 failed, 4 pending of 5')
    assert row.locator('svg.progress').bounding_box()['width'] == 160

    # Close it from the page, which asks first: no task may join it any
    # more, and it completes once its last task ran.
    asked = []
    page.once('dialog', lambda dialog: asked.append(dialog.message)
              or dialog.accept())
    row.get_by_role('button', name='Close').click()
    expect(page.locator('#message')).to_have_text(
        f'Closed job {job} (closed).')
    expect(row).to_have_attribute('data-state', 'closed')
    expect(row.get_by_role('button')).to_have_count(0)
    assert asked == [f'Close job {job} of queue default? No task may be '
                     f'added to it after that.']
    assert taskqueue.job_status(str(job))['state'] == 'closed'

    requests.get(site.url + '/open', timeout=10)
    expect(row.locator('[data-count=done]')).to_have_text('4')
    expect(row.locator('rect.bar-done')).to_have_attribute('width', '80')
    expect(row).to_have_attribute('data-state', 'complete')
    expect(row.locator('.share')).to_have_text('100%')
    page.screenshot(path=str(ARTIFACTS / 'dashboard-jobs.png'),
                    full_page=True)
    # Its on_complete ran, once.
    status = taskqueue.job_status(str(job))
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while [run['task'] for run in site.runs()].count(
            status['on_complete']) != 1:
        assert time.monotonic() < deadline, site.runs()
        time.sleep(0.05)
    assert errors == []


#: Markup that runs a script wherever it lands as markup: as an element, or
#: out of an attribute's quotes.
ATTACK = ('"><img src=x onerror="window.pwned=1"><script>window.pwned=2'
          '</script><svg onload="window.pwned=3"></svg>\'"<b>')


def craft_records(redis_url: str) -> None:
    """Records written straight into the site's queue (the key layout of
    ``backends.redis``), ATTACK in every field: a dead letter with sound
    types, one whose attempt and time are ATTACK too (malformed), a status
    record and a consumer's info."""
    base = 'wsgi-taskqueue:{default}:'
    client = redis.Redis.from_url(redis_url)
    try:
        fields = ['id', 'q', 'u', 'm', 's', 'e']
        client.lpush(base + 'dead', json.dumps(
            {**dict.fromkeys(fields, ATTACK), 'a': 3, 't': time.time()}
        ).encode() + b'\n' + ATTACK.encode())
        client.lpush(base + 'dead', json.dumps(
            dict.fromkeys(fields + ['a', 't'], ATTACK)).encode() + b'\n')
        client.hset(base + 'task:crafted', mapping={
            'id': ATTACK, 'state': 'dead', 'updated': str(time.time()),
            'status': ATTACK, 'consumer': ATTACK, 'a1': f'{ATTACK}\t1\t2',
            'header': json.dumps({'m': ATTACK, 'u': ATTACK, 'uid': ATTACK})})
        client.zadd(base + 'tasks', {'crafted': time.time()})
        client.hset(base + 'task:malformed', mapping={
            'id': ATTACK, 'state': ATTACK, 'updated': ATTACK,
            'attempt': ATTACK})
        client.zadd(base + 'tasks', {'malformed': time.time()})
    finally:
        client.close()


@pytest.mark.parametrize('bypass_csp', [False, True],
                         ids=['with-csp', 'escaping-alone'])
def test_crafted_records_are_shown_as_text_and_run_no_script(
        site, redis_url, browser, bypass_csp):
    """Escaping alone must hold (the browser ignoring the CSP), and the
    CSP must hold too."""
    expect = playwright.expect
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    craft_records(redis_url)
    page = browser.new_context(bypass_csp=bypass_csp).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors, dialogs = page_errors(page), []
    page.on('dialog', lambda dialog: dialogs.append(dialog.message)
            or dialog.dismiss())

    page.goto(f'{site.url}/manage?key={API_KEY}')
    letters = page.locator('table[data-panel=letters]')
    expect(letters.locator('tr[data-letter]')).to_have_count(2)
    expect(letters).to_contain_text(ATTACK)
    expect(letters.locator('tr.malformed')).to_contain_text(
        'malformed dead letter: attempt is not a whole number; time is not '
        'a time; it holds no message')
    tasks = page.locator('table[data-panel=tasks]')
    expect(tasks).to_contain_text(ATTACK)
    expect(tasks.locator('tr.malformed')).to_contain_text(
        'malformed status record: ')
    # Once more, as the script swaps the panels in.
    expect(page.locator('#refresh')).to_contain_text('updated')
    expect(letters).to_contain_text(ATTACK)
    page.screenshot(path=str(ARTIFACTS / f'dashboard-crafted-'
                             f'{"bypass" if bypass_csp else "csp"}.png'),
                    full_page=True)

    assert page.evaluate('window.pwned') is None
    assert page.locator('main img, main script, main b, main svg:not(.chart)'
                        ).count() == 0
    assert dialogs == []
    assert errors == []


@pytest.fixture
def cluster_site(redis_cluster, cluster_url, tmp_path):
    """The site on a Redis Cluster: a queue on each primary."""
    queues = redis_cluster.spread_names(1, prefix='b')
    site = Site(cluster_url, tmp_path, queues)
    site.queues = queues
    try:
        site.wait_until_serving()
        yield site
    finally:
        site.stop()


def test_the_dashboard_shows_the_queues_of_every_cluster_primary(
        cluster_site, redis_cluster, page):
    """Each queue lives on another primary: the page counts each one's
    tasks, consumers and dead letters, and requeues a dead letter held by
    a primary other than the first."""
    site = cluster_site
    ports = {redis_cluster.primary_of(name).port for name in site.queues}
    assert len(ports) == redis_cluster.primaries
    expect = playwright.expect
    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    errors = page_errors(page)
    page.goto(f'{site.url}/manage?key={API_KEY}')

    def row(name):
        return page.locator(f'table[data-panel=queues] tr[data-queue={name}]')

    for name in site.queues:
        expect(row(name).locator('[data-count=pending]')).to_have_text('0')
        expect(page.locator(f'tr[data-consumer=browser-test-{name}]')
               ).to_contain_text('alive')
    # Each consumer holds one task at the gate; two more wait per queue.
    for number, name in enumerate(site.queues):
        for _ in range(number + 3):
            site.add('/job', queue=name)
    for number, name in enumerate(site.queues):
        expect(row(name).locator('[data-count=pending]')).to_have_text(
            str(number + 2))
        expect(row(name).locator('[data-count=processing]')).to_have_text(
            '1')
    requests.get(site.url + '/open', timeout=10)
    for number, name in enumerate(site.queues):
        expect(row(name).locator('[data-count=pending]')).to_have_text('0')
        expect(row(name).locator('[data-count=done]')).to_have_text(
            str(number + 3))

    last = site.queues[-1]
    task_id = site.add('/fail-once', queue=last)
    letter = page.locator(f'table[data-panel=letters] tr[data-task="{task_id}"]')
    expect(letter).to_have_count(1)
    expect(row(last).locator('[data-count=dead]')).to_have_text('1')
    page.screenshot(path=str(ARTIFACTS / 'dashboard-cluster.png'),
                    full_page=True)
    letter.get_by_role('button', name='Requeue').click()
    expect(page.locator('#message')).to_contain_text(f'Requeued task {task_id}')
    expect(letter).to_have_count(0)
    expect(row(last).locator('[data-count=dead]')).to_have_text('0')
    expect(row(last).locator('[data-count=done]')).to_have_text(
        str(len(site.queues) + 3))
    assert errors == []
