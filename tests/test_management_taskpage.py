"""The dashboard's task page (a task's record, attempts, kept result and
dead letter) and its label filter, on every backend."""
from __future__ import annotations

import html
import re

import pytest
import webtest

import wsgi_taskqueue
from wsgi_taskqueue.management import make_app

from dummies import RecordingApp, add, wait_until

KEY = 'management-test-key-0123456789'
AUTH = {'X-API-Key': KEY}
HOSTILE = '<img src=x onerror=alert(1)>'


@pytest.fixture
def api(queue):
    return webtest.TestApp(make_app(KEY))


def run(queue, app, *ids, state='done'):
    """Run the queue's tasks in ``app`` until ``ids`` are in ``state``."""
    consumer = wsgi_taskqueue.Consumer(app, name='page-test', retry_max_count=0,
                                       poll_interval=0.1)
    consumer.start()
    try:
        wait_until(lambda: all(
            (wsgi_taskqueue.taskqueue.status(task_id) or {}).get('state')
            == state for task_id in ids))
    finally:
        consumer.stop(5)


def test_the_task_page_shows_the_kept_result_as_text(api, queue):
    [task_id] = add('/report', keep_result=True, label='monthly')
    run(queue, RecordingApp(headers=[('Content-Type', 'text/html')],
                            body=[HOSTILE.encode()]), task_id)
    page = api.get(f'/task/{task_id}?queue=default', headers=AUTH)
    assert page.content_type == 'text/html'
    assert '<img' not in page.text
    assert f'<pre class="result-body">{html.escape(HOSTILE)}</pre>' \
        in page.text
    assert '<tr><th>Content-Type</th><td>text/html</td></tr>' in page.text
    assert '<tr data-field="State"><th>State</th><td>done</td></tr>' \
        in page.text
    assert '<tr data-field="Label"><th>Label</th><td>monthly</td></tr>' \
        in page.text
    attempts = re.search(r'<table data-panel="attempts">.*?</table>',
                         page.text)[0]
    assert attempts.count('<tr><td class="number">') == 1
    assert '200 OK' in attempts


def test_a_dead_task_shows_its_error_and_no_result(api, queue):
    [task_id] = add('/broken')
    run(queue, RecordingApp(status='500 Internal Server Error',
                            body=[HOSTILE.encode()]), task_id, state='dead')
    page = api.get(f'/task/{task_id}', headers=AUTH).text
    assert '<h2>Dead letter</h2>' in page
    assert 'No result kept' in page
    assert '<img' not in page


def test_the_task_page_of_a_pending_task_and_of_an_unknown_one(api, queue):
    [task_id] = add('/later')
    page = api.get(f'/task/{task_id}', headers=AUTH).text
    assert 'Not run yet.' in page
    assert api.get('/task/' + '0' * 32, headers=AUTH,
                   status=404).json['error'].startswith('unknown task')
    api.get(f'/task/{task_id}', status=404)  # no key, nothing


def test_the_recent_tasks_link_to_their_pages(api, queue):
    [task_id] = add('/later')
    panels = api.get('/panels', headers=AUTH).text
    assert f'href="task/{task_id}?queue=default"' in panels


def test_the_label_filter_narrows_the_task_panels(api, queue):
    [monthly] = add('/report', label='monthly')
    [other] = add('/other', label='daily')
    page = api.get('/?label=monthly', headers=AUTH).text
    assert 'data-label="monthly"' in page
    tasks = re.search(r'<table data-panel="tasks">.*?</table>', page)[0]
    assert monthly in tasks and other not in tasks
    assert 'Labelled <strong>monthly</strong>' in page
    unfiltered = api.get('/panels', headers=AUTH).text
    assert monthly in unfiltered and other in unfiltered
    assert '<a class="option" href="?label=daily">label daily</a>' \
        in unfiltered
    panels = api.get('/panels?label=daily', headers=AUTH).text
    tasks = re.search(r'<table data-panel="tasks">.*?</table>', panels)[0]
    assert other in tasks and monthly not in tasks
    assert api.get('/panels?label=a%20b', headers=AUTH,
                   status=400).json['error'].startswith('label must be')
