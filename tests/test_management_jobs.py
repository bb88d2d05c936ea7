"""Jobs of many tasks in the management app, on every backend (the
sharded Redis queue among them): the JSON API (``GET
/queues/{queue}/jobs``, ``.../jobs/{id}`` and ``POST .../jobs/{id}/close``)
and the dashboard's Jobs panel with its progress bars and Close buttons;
against hostile input too: bad ids and queues, records crafted straight
into a real Redis."""
from __future__ import annotations

import re
import time
import urllib.parse

import hypothesis
import jsonschema_rs
import markupsafe
import pytest
import redis
import transaction
import webtest
import yaml
from hypothesis import strategies as st

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import ClosedJob
from wsgi_taskqueue.management import make_app

from test_admin import work
from test_cli import INI
from test_management import AUTH, KEY, PACKAGE
from test_management_hostile import (
    HYPOTHESIS,
    SCRIPT,
    assert_documented,
    assert_inert,
)

#: A job as the OpenAPI document describes it (checked by the validator
#: schemathesis uses).
JOB_SCHEMA = jsonschema_rs.Draft202012Validator(yaml.safe_load(
    (PACKAGE / 'openapi.yaml').read_text())['components']['schemas']['Job'])


@pytest.fixture
def api(any_queue):
    return webtest.TestApp(make_app(KEY))


def new_job(*urls, label='monthly'):
    with transaction.manager:
        job = taskqueue.job(on_complete='/ok', label=label)
        for url in urls:
            taskqueue.add(url, job=job)
    return str(job)


def jobs_row(panels: str, job_id: str) -> str:
    return re.search(rf'<tr data-job="{job_id}".*?</tr>', panels)[0]


# -- the API ---------------------------------------------------------------

def test_a_queues_jobs_and_one_job_with_their_progress(api, any_queue):
    older = new_job('/ok', '/ok', '/gone', '/ok')
    work(limit=3)
    newer = new_job(label='second')
    listed = api.get('/queues/default/jobs', headers=AUTH).json['jobs']
    assert [job['id'] for job in listed] == [newer, older]
    one = api.get(f'/queues/default/jobs/{older}', headers=AUTH).json
    assert one == listed[1] == taskqueue.job_status(older)
    assert {key: one[key] for key in (
        'queue', 'label', 'state', 'total', 'done', 'failed', 'pending',
        'closed', 'completed', 'problem')} == {
        'queue': 'default', 'label': 'monthly', 'state': 'open', 'total': 4,
        'done': 2, 'failed': 1, 'pending': 1, 'closed': None,
        'completed': None, 'problem': None}
    assert api.get('/queues/default/jobs?start=1&count=1',
                   headers=AUTH).json['jobs'] == [one]
    assert api.get('/queues/default/jobs?start=2',
                   headers=AUTH).json['jobs'] == []
    for job in listed:
        JOB_SCHEMA.validate(job)


def test_a_completed_job_shows_when_and_its_on_complete_task(api, any_queue):
    job_id = new_job('/ok')
    with transaction.manager:
        taskqueue.close_job(job_id)
    work()
    job = api.get(f'/queues/default/jobs/{job_id}', headers=AUTH).json
    assert (job['state'], job['done'], job['pending']) == ('complete', 1, 0)
    assert job['completed'] >= job['closed'] >= job['created']
    JOB_SCHEMA.validate(job)
    task = api.get(f'/tasks/{job["on_complete"]}', headers=AUTH).json
    assert (task['path'], task['job']) == ('/ok', job_id)


def test_an_unknown_job_or_queue_answers_404_a_bad_id_400(api, any_queue):
    job_id = new_job()
    for path, status, message in [
            (f'/queues/default/jobs/{"ab" * 16}', 404,
             f"unknown job '{'ab' * 16}' of queue 'default' (never created "
             f"there, or its record expired)"),
            (f'/queues/mail/jobs/{job_id}', 404, "unknown task queue 'mail'"),
            ('/queues/mail/jobs', 404, "unknown task queue 'mail'"),
            ('/queues/default/jobs/xyz', 400,
             "not a job id (1 to 64 hex digits): 'xyz'"),
            (f'/queues/default/jobs/{"a" * 65}', 400, 'not a job id'),
            ('/queues/default/jobs?count=0', 400,
             'count must be between 1 and 500, not 0'),
            ('/queues/default/jobs?start=x', 400,
             "start must be an integer, not 'x'")]:
        answer = api.get(path, headers=AUTH, status=status).json
        assert answer['error'].startswith(message), path


def test_the_job_routes_need_the_key(api, any_queue):
    job_id = new_job()
    for path in ('/queues/default/jobs', f'/queues/default/jobs/{job_id}'):
        assert api.get(path, status=404).body == b'{"error": "not found"}'
        assert api.get(path, headers={'X-API-Key': 'wrong' * 6},
                       status=404).body == b'{"error": "not found"}'


# -- closing a job ---------------------------------------------------------

def test_closing_a_job_with_tasks_left_leaves_it_closed_once(api, any_queue):
    job_id = new_job('/ok', '/ok')
    work(limit=1)
    answer = api.post(f'/queues/default/jobs/{job_id}/close',
                      headers=AUTH).json
    assert answer['closed'] is True
    assert answer['job'] == taskqueue.job_status(job_id)
    assert {key: answer['job'][key] for key in (
        'state', 'total', 'done', 'pending', 'completed')} == {
        'state': 'closed', 'total': 2, 'done': 1, 'pending': 1,
        'completed': None}
    assert answer['job']['closed'] >= answer['job']['created']
    JOB_SCHEMA.validate(answer['job'])
    # Committed: no task may join it any more.
    with pytest.raises(ClosedJob), transaction.manager:
        taskqueue.add('/ok', job=job_id)
    # Again: nothing changes, and it says so.
    again = api.post(f'/queues/default/jobs/{job_id}/close',
                     headers=AUTH).json
    assert again == {'closed': False, 'job': answer['job']}
    work()
    assert taskqueue.job_status(job_id)['state'] == 'complete'


def test_closing_a_job_whose_tasks_finished_completes_it(api, any_queue):
    job_id = new_job('/ok')
    work()
    answer = api.post(f'/queues/default/jobs/{job_id}/close',
                      headers=AUTH).json
    assert (answer['closed'], answer['job']['state'],
            answer['job']['done']) == (True, 'complete', 1)
    assert answer['job']['completed'] >= answer['job']['closed']
    JOB_SCHEMA.validate(answer['job'])
    # Its on_complete was queued, once: closing again queues nothing.
    assert api.post(f'/queues/default/jobs/{job_id}/close',
                    headers=AUTH).json == {'closed': False,
                                           'job': answer['job']}
    task = api.get(f'/tasks/{answer["job"]["on_complete"]}',
                   headers=AUTH).json
    assert (task['path'], task['state']) == ('/ok', 'queued')
    assert any_queue.counts()['pending'] == 1


def test_closing_an_unknown_job_or_queue_answers_404_a_bad_id_400(
        api, any_queue):
    job_id = new_job()
    for path, status, message in [
            (f'/queues/default/jobs/{"ab" * 16}/close', 404,
             f"unknown job '{'ab' * 16}' of queue 'default' (never created "
             f"there, or its record expired)"),
            (f'/queues/mail/jobs/{job_id}/close', 404,
             "unknown task queue 'mail'"),
            ('/queues/default/jobs/xyz/close', 400,
             "not a job id (1 to 64 hex digits): 'xyz'"),
            (f'/queues/default/jobs/{"a" * 65}/close', 400, 'not a job id')]:
        answer = api.post(path, headers=AUTH, status=status).json
        assert answer['error'].startswith(message), path
    assert taskqueue.job_status(job_id)['state'] == 'open'
    response = api.get(f'/queues/default/jobs/{job_id}/close', headers=AUTH,
                       status=405)
    assert response.headers['Allow'] == 'POST'


def test_closing_needs_the_key_or_the_sessions_csrf_token(api, any_queue):
    job_id = new_job()
    path = f'/queues/default/jobs/{job_id}/close'
    for headers in ({}, {'X-API-Key': 'wrong' * 6},
                    {'Authorization': 'Bearer wrong'}):
        assert api.post(path, headers=headers, status=404).body \
            == b'{"error": "not found"}'
    api.get(f'/?key={KEY}', status=303)
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"',
                      api.get('/').text)[1]
    api.post(path, status=403)
    api.post(path, headers={'X-CSRF-Token': 'f' * 64}, status=403)
    assert taskqueue.job_status(job_id)['state'] == 'open'
    assert api.post(path, headers={'X-CSRF-Token': token}).json[
        'closed'] is True


# -- the dashboard ---------------------------------------------------------

def test_the_jobs_panel_draws_each_jobs_progress(api, any_queue):
    job_id = new_job('/ok', '/ok', '/gone', '/ok')
    work(limit=3)  # two done, one dead, one pending
    empty = new_job(label='empty')
    panels = api.get('/panels', headers=AUTH).text
    assert '<table data-panel="jobs">' in panels
    row = jobs_row(panels, job_id)
    for name, count in (('done', 2), ('failed', 1), ('pending', 1),
                        ('total', 4)):
        assert f'data-count="{name}">{count}</td>' in row
    assert '<td>monthly</td><td class="job-open">open</td>' in row
    assert f'href="queues/default/jobs/{job_id}"' in row
    # The bar: done from 0 to 50, failed from 50 to 75, pending behind.
    assert '<rect class="bar-done" x="0" y="0" width="50" ' in row
    assert '<rect class="bar-dead" x="50" y="0" width="25" ' in row
    assert '<title>2 done, 1 failed, 1 pending of 4</title>' in row
    assert '<span class="share">75%</span>' in row
    assert 'no task yet' in jobs_row(panels, empty)
    # Each task of the job links to it: four recent tasks, one of them
    # among the recent failures too.
    assert panels.count(f'<a class="option" href="queues/default/jobs/'
                        f'{job_id}">job {job_id}</a>') == 5
    # Newest first.
    assert panels.index(f'data-job="{empty}"') < panels.index(
        f'data-job="{job_id}"')


def test_only_open_jobs_have_a_close_button(api, any_queue):
    open_job = new_job('/ok', label='open')
    closed_job = new_job('/ok', label='closed')
    complete_job = new_job(label='complete')
    for job_id in (closed_job, complete_job):
        with transaction.manager:  # one job per transaction when sharded
            taskqueue.close_job(job_id)
    panels = api.get('/panels', headers=AUTH).text
    assert (f'<button type="button" data-action="close" '
            f'data-url="queues/default/jobs/{open_job}/close" '
            f'data-confirm="Close job {open_job} of queue default? No task '
            f'may be added to it after that.">Close</button>'
            ) in jobs_row(panels, open_job)
    for job_id in (closed_job, complete_job):
        assert '<button' not in jobs_row(panels, job_id)


def test_without_jobs_the_panel_says_so(api, any_queue):
    assert 'No job of many tasks lately.' in api.get('/panels',
                                                     headers=AUTH).text


# -- hostile input ---------------------------------------------------------

@pytest.fixture
def redis_api(redis_queue):
    """The app over the Redis queue that ``stored`` writes to."""
    return webtest.TestApp(make_app(KEY))


@pytest.fixture
def stored(redis_queue, redis_url):
    """Write job records to the test Redis under the queue's keys
    (``backends/redis/jobs.py``)."""
    client = redis.Redis.from_url(redis_url)

    def store(job_id, fields):
        client.hset(f'{redis_queue.base}job:{job_id}', mapping=fields)
        client.zadd(f'{redis_queue.base}jobs', {job_id: time.time()})
    yield store
    client.close()


def test_script_in_a_job_record_is_shown_as_text(redis_api, stored):
    stored('a1', {'state': 'open', 'label': SCRIPT, 'total': 2, 'done': 1,
                  'failed': 0, 'created': time.time(),
                  'on_complete': SCRIPT})
    for path in ('/', '/panels'):
        text = redis_api.get(path, headers=AUTH).text
        assert_inert(text)
        assert markupsafe.escape(SCRIPT) in text
    assert redis_api.get('/queues/default/jobs/a1', headers=AUTH).json[
        'label'] == SCRIPT


@pytest.mark.parametrize('fields, problem', [
    ({'state': 'open', 'total': 'many', 'created': 1}, 'total is not a '
     'whole number'),
    ({'state': 'open', 'total': 1, 'done': -3, 'created': 1},
     'done is not a whole number'),
    ({'state': 'open', 'total': 1, 'done': 2, 'created': 1},
     'more tasks finished than it has'),
    ({'state': 'gone', 'created': 1}, 'state is none of open, closed, '
     'complete'),
    ({'state': 'closed', 'created': 'yesterday', 'closed': 'nan'},
     'created is not a number; closed is not a number'),
])
def test_a_malformed_job_record_is_shown_as_such(redis_api, stored, fields,
                                                 problem):
    stored('bad', fields)
    job = redis_api.get('/queues/default/jobs/bad', headers=AUTH).json
    assert job['problem'] == problem
    JOB_SCHEMA.validate(job)
    assert job['pending'] >= 0
    assert redis_api.get('/queues/default/jobs',
                         headers=AUTH).json['jobs'] == [job]
    row = jobs_row(redis_api.get('/panels', headers=AUTH).text, 'bad')
    assert f'malformed record: {markupsafe.escape(problem)}' in row


def test_an_open_job_whose_record_is_malformed_can_be_closed(redis_api,
                                                             stored):
    """Closing sets its state alone: the operator may end a job whose
    counts were damaged."""
    stored('bad', {'state': 'open', 'total': 'many', 'created': 1})
    assert 'data-action="close"' in jobs_row(
        redis_api.get('/panels', headers=AUTH).text, 'bad')
    answer = redis_api.post('/queues/default/jobs/bad/close',
                            headers=AUTH).json
    assert (answer['closed'], answer['job']['state'],
            answer['job']['problem']) == (True, 'closed',
                                          'total is not a whole number')
    JOB_SCHEMA.validate(answer['job'])


def test_the_command_line_shows_a_malformed_job_record_too(stored, run,
                                                          tmp_path,
                                                          redis_url):
    ini = tmp_path / 'app.ini'
    ini.write_text(INI.format(type='redis', url=redis_url).replace('    ', ''))
    stored('bad', {'state': 'open', 'total': 'many', 'done': 1,
                   'created': 1})
    code, out, _ = run('job', ini, 'bad')
    assert code == 0
    assert 'state:        malformed' in out.splitlines()
    assert 'malformed:    total is not a whole number; more tasks finished ' \
        'than it has' in out.splitlines()
    code, out, _ = run('jobs', ini, '-q', 'default')
    assert out.splitlines()[1].split()[:3] == ['bad', 'default', '-']
    assert out.splitlines()[1].split()[3] == 'malformed'


@hypothesis.settings(max_examples=80, **HYPOTHESIS)
@hypothesis.given(
    queue_name=st.sampled_from(['default', 'mail', '..', '%00', SCRIPT]),
    job_id=st.text(st.characters(blacklist_categories=['Cs']), min_size=1,
                   max_size=70),
    params=st.dictionaries(st.sampled_from(['start', 'count']),
                           st.text(max_size=8) | st.integers().map(str)))
def test_any_job_path_gets_a_documented_answer(redis_api, queue_name,
                                               job_id, params):
    quoted = urllib.parse.quote(queue_name, safe='')
    job_path = f'/queues/{quoted}/jobs/{urllib.parse.quote(job_id, safe="")}'
    for path in (f'/queues/{quoted}/jobs', job_path):
        assert_documented(redis_api.get(path, params, headers=AUTH,
                                        status='*'), {200, 400, 404})
    assert_documented(redis_api.post(f'{job_path}/close', headers=AUTH,
                                     status='*'), {200, 400, 404})
