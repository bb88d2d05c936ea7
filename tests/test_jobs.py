"""Jobs of many tasks: the backend contract on every backend (counts,
on_complete once, close before or after the tasks finished), and
``taskqueue.job`` / ``close_job`` / ``job_status`` through transactions."""
import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.dispatch import Dispatcher
from wsgi_taskqueue.errors import ClosedJob, InvalidTask, UnknownJob
from wsgi_taskqueue.task import new_id

from dummies import RecordingApp
from test_backends import acked, buried, promoted, task_message

fixture_kept = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture])


def opening(queue, job_id, on_complete='/report', label='monthly'):
    """A job's open marker: its on_complete task."""
    return task_message(queue, url=on_complete, method='GET', payload=b'',
                        job=job_id, job_marker={
                            'op': 'open', 'label': label, 'cb': True})


def closing(queue, job_id):
    return task_message(queue, url='/', method='GET', payload=b'',
                        job=job_id, job_marker={'op': 'close'})


def members(queue, job_id, count):
    return [task_message(queue, job=job_id) for _ in range(count)]


def counts(queue, job_id):
    status = queue.job_status(job_id)
    return (status['state'], status['total'], status['done'],
            status['failed'], status['pending'])


def test_a_job_counts_its_tasks_and_completes_when_closed(any_queue):
    job_id = new_id()
    report, opened = opening(any_queue, job_id)
    tasks = members(any_queue, job_id, 3)
    promoted(any_queue, opened, *(message for _, message in tasks))
    status = any_queue.job_status(job_id)
    assert (status['id'], status['queue'], status['label'],
            status['on_complete'], status['closed']) == (
        job_id, any_queue.name, 'monthly', report.id, None)
    assert status['created'] is not None
    assert counts(any_queue, job_id) == ('open', 3, 0, 0, 3)
    assert any_queue.reserve('c', 10, 0) == [m for _, m in tasks]
    acked(any_queue, *tasks[0])
    buried(any_queue, *tasks[1])
    acked(any_queue, *tasks[2])
    assert counts(any_queue, job_id) == ('open', 3, 2, 1, 0)
    # Not closed: more may come, so nothing completes.
    assert any_queue.reserve('c', 10, 0) == []
    promoted(any_queue, closing(any_queue, job_id)[1], batch='b2')
    assert counts(any_queue, job_id) == ('complete', 3, 2, 1, 0)
    status = any_queue.job_status(job_id)
    assert status['completed'] >= status['closed'] >= status['created']
    [message] = any_queue.reserve('c', 10, 0)
    assert message == opened
    environ = Dispatcher(None).environ(any_queue.codec.decode(message))
    assert (environ['PATH_INFO'], environ['HTTP_X_TASK_JOB_ID'],
            environ['HTTP_X_TASK_JOB_TOTAL'], environ['HTTP_X_TASK_JOB_DONE'],
            environ['HTTP_X_TASK_JOB_FAILED']) == (
        '/report', job_id, '3', '2', '1')


def test_a_job_closed_first_completes_with_its_last_task_once(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    tasks = members(any_queue, job_id, 2)
    promoted(any_queue, opened, *(m for _, m in tasks),
             closing(any_queue, job_id)[1])
    assert counts(any_queue, job_id) == ('closed', 2, 0, 0, 2)
    assert any_queue.reserve('c', 10, 0) == [m for _, m in tasks]
    acked(any_queue, *tasks[0])
    assert any_queue.reserve('c', 10, 0) == []
    acked(any_queue, *tasks[1])
    # A lost reply: the consumer acknowledges again; nothing more.
    acked(any_queue, *tasks[1])
    assert counts(any_queue, job_id) == ('complete', 2, 2, 0, 0)
    assert any_queue.reserve('c', 10, 0) == [opened]
    assert any_queue.reserve('c', 10, 0) == []


def test_a_dead_task_completes_a_closed_job_as_failed(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    [(task, message)] = members(any_queue, job_id, 1)
    promoted(any_queue, opened, message, closing(any_queue, job_id)[1])
    assert any_queue.reserve('c', 10, 0) == [message]
    buried(any_queue, task, message)
    assert counts(any_queue, job_id) == ('complete', 1, 0, 1, 0)
    assert any_queue.reserve('c', 10, 0) == [opened]


def test_tasks_dead_lettered_by_a_dying_dependency_count_as_failed(
        any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    (first, one) = task_message(any_queue, job=job_id)
    (second, two) = task_message(any_queue, job=job_id, after=[first.id])
    promoted(any_queue, opened, one, two, closing(any_queue, job_id)[1])
    assert any_queue.reserve('c', 10, 0) == [one]
    buried(any_queue, first, one)
    any_queue.sweep(3600)  # buries what a dead dependency condemned
    assert counts(any_queue, job_id) == ('complete', 2, 0, 2, 0)
    assert any_queue.reserve('c', 10, 0) == [opened]


def test_a_cancelled_task_counts_as_failed(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    [(task, message)] = members(any_queue, job_id, 1)
    promoted(any_queue, opened, message, closing(any_queue, job_id)[1])
    assert any_queue.cancel(task.id) == 'cancelled'
    assert counts(any_queue, job_id) == ('complete', 1, 0, 1, 0)
    assert any_queue.reserve('c', 10, 0) == [opened]


def test_tasks_of_later_batches_join_the_job(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    [(first, one)] = members(any_queue, job_id, 1)
    promoted(any_queue, opened, one)
    assert any_queue.reserve('c', 10, 0) == [one]
    [(second, two)] = members(any_queue, job_id, 1)
    promoted(any_queue, two, batch='b2')
    acked(any_queue, first, one)
    promoted(any_queue, closing(any_queue, job_id)[1], batch='b3')
    assert counts(any_queue, job_id) == ('closed', 2, 1, 0, 1)
    assert any_queue.reserve('c', 10, 0) == [two]
    acked(any_queue, second, two)
    assert any_queue.reserve('c', 10, 0) == [opened]


def test_an_empty_job_completes_when_closed(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    promoted(any_queue, opened, closing(any_queue, job_id)[1])
    assert counts(any_queue, job_id) == ('complete', 0, 0, 0, 0)
    assert any_queue.reserve('c', 10, 0) == [opened]


def test_a_second_close_changes_nothing(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    promoted(any_queue, opened, closing(any_queue, job_id)[1])
    promoted(any_queue, closing(any_queue, job_id)[1], batch='b2')
    assert any_queue.reserve('c', 10, 0) == [opened]
    assert any_queue.reserve('c', 10, 0) == []
    assert counts(any_queue, job_id)[0] == 'complete'


def test_a_job_without_on_complete_queues_nothing(any_queue):
    job_id = new_id()
    _, opened = task_message(any_queue, url='/', method='GET', payload=b'',
                             job=job_id, job_marker={
                                 'op': 'open', 'label': None, 'cb': False})
    [(task, message)] = members(any_queue, job_id, 1)
    promoted(any_queue, opened, message, closing(any_queue, job_id)[1])
    assert any_queue.reserve('c', 10, 0) == [message]
    acked(any_queue, task, message)
    assert counts(any_queue, job_id) == ('complete', 1, 1, 0, 0)
    assert any_queue.job_status(job_id)['on_complete'] is None
    assert any_queue.reserve('c', 10, 0) == []


def test_an_unknown_job_is_refused_at_stage(any_queue):
    job_id = new_id()
    [(task, message)] = members(any_queue, job_id, 1)
    with pytest.raises(UnknownJob, match=job_id):
        any_queue.stage('b1', [message])
    with pytest.raises(UnknownJob, match=job_id):
        any_queue.stage('b2', [closing(any_queue, job_id)[1]])
    assert any_queue.counts()['staged'] == 0
    assert any_queue.job_status(job_id) is None


def test_adding_to_a_closed_job_is_refused_at_stage(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    promoted(any_queue, opened, closing(any_queue, job_id)[1])
    [(task, message)] = members(any_queue, job_id, 1)
    with pytest.raises(ClosedJob, match=task.id):
        any_queue.stage('b2', [message])
    assert any_queue.counts()['staged'] == 0


def test_a_close_in_a_batch_refuses_the_tasks_after_it(any_queue):
    job_id = new_id()
    _, opened = opening(any_queue, job_id)
    [(task, message)] = members(any_queue, job_id, 1)
    with pytest.raises(ClosedJob):
        any_queue.stage('b1', [opened, closing(any_queue, job_id)[1],
                               message])


def test_the_queue_lists_its_jobs_newest_first(any_queue):
    first, second = new_id(), new_id()
    promoted(any_queue, opening(any_queue, first)[1])
    promoted(any_queue, opening(any_queue, second, label='b')[1],
             batch='b2')
    listed = any_queue.job_list()
    assert [job['id'] for job in listed] == [second, first]
    assert [job['id'] for job in any_queue.job_list(start=1)] == [first]
    assert any_queue.job_list(count=1) == [any_queue.job_status(second)]


# taskqueue.job, add(job=...), close_job, job_status: transactional.


def test_a_job_exists_once_its_transaction_commits(local_queue):
    job = taskqueue.job(on_complete='/report', label='monthly')
    ids = [taskqueue.add('/work', job=job) for _ in range(3)]
    assert taskqueue.job_status(job.job_id) is None  # no I/O before commit
    transaction.commit()
    status = taskqueue.job_status(job)
    assert (status['state'], status['total'], status['label']) == (
        'open', 3, 'monthly')
    taken = [local_queue.codec.decode(m)
             for m in local_queue.reserve('c', 10, 0)]
    assert [task.id for task in taken] == ids
    assert {task.options.job for task in taken} == {job.job_id}


def test_an_aborted_job_does_not_exist(local_queue):
    job = taskqueue.job(on_complete='/report')
    taskqueue.add('/work', job=job)
    transaction.abort()
    assert taskqueue.job_status(job) is None
    taskqueue.add('/work', job=job.job_id)
    with pytest.raises(UnknownJob):
        transaction.commit()
    assert local_queue.reserve('c', 10, 0) == []


def test_close_happens_at_commit(local_queue):
    job = taskqueue.job(on_complete='/report')
    transaction.commit()
    job.close()
    assert taskqueue.job_status(job)['state'] == 'open'
    transaction.commit()
    assert taskqueue.job_status(job)['state'] == 'complete'
    taskqueue.add('/late', job=job.job_id)
    with pytest.raises(ClosedJob, match='closed|complete'):
        transaction.commit()


def test_a_job_of_another_queue_is_refused_at_add(local_queue):
    wsgi_taskqueue.register_queue('other', wsgi_taskqueue.LocalQueue('other'))
    try:
        job = taskqueue.job()
        with pytest.raises(InvalidTask, match="of queue 'default'"):
            taskqueue.add('/work', job=job, queue='other')
    finally:
        transaction.abort()
        wsgi_taskqueue.unregister_queue('other')


def test_tasks_plan_the_next_chunk_into_their_own_job():
    """The job's own tasks add to it (X-Task-Job-Id) and close it; the
    on_complete task sees the final counts."""
    def respond(environ):
        job_id = environ.get('HTTP_X_TASK_JOB_ID')
        if environ['PATH_INFO'] == '/plan':
            chunk = int(environ['QUERY_STRING'].split('=')[1])
            with transaction.manager:  # the app's transaction
                for _ in range(3):
                    taskqueue.add('/work', job=job_id)
                if chunk < 2:
                    taskqueue.add('/plan', params={'chunk': chunk + 1},
                                  job=job_id)
                else:
                    taskqueue.close_job(job_id)
        return '200 OK'

    app = RecordingApp(respond=respond)
    queue = wsgi_taskqueue.backends.SyncQueue(app=app)
    wsgi_taskqueue.register_queue('default', queue)
    with transaction.manager:
        job = taskqueue.job(on_complete='/report', label='chunks')
        taskqueue.add('/plan', params={'chunk': 0}, job=job)
    reports = [environ for environ in app.environs
               if environ['PATH_INFO'] == '/report']
    assert len(reports) == 1
    [report] = reports
    # Three planners and three chunks of three tasks; the report itself
    # is not one of the job's tasks.
    assert (report['HTTP_X_TASK_JOB_ID'], report['HTTP_X_TASK_JOB_TOTAL'],
            report['HTTP_X_TASK_JOB_DONE'],
            report['HTTP_X_TASK_JOB_FAILED']) == (job.job_id, '12', '12', '0')
    assert len(app.environs) == 13
    assert counts(queue, job.job_id) == ('complete', 12, 12, 0, 0)


@fixture_kept
@given(st.one_of(st.text().filter(lambda text: not text or any(
    c not in '0123456789abcdef' for c in text)), st.integers(),
    st.binary(), st.just('a' * 65), st.lists(st.just('ab'))))
def test_job_must_be_a_job_or_its_id(local_queue, job):
    with pytest.raises(InvalidTask, match='job must be a Job'):
        taskqueue.add('/view', job=job)


@fixture_kept
@given(st.from_regex(r'[0-9a-f]{1,64}', fullmatch=True))
def test_every_hex_id_is_a_valid_job(local_queue, job_id):
    taskqueue.add('/view', job=job_id)
    transaction.abort()


@fixture_kept
@given(st.one_of(st.text().filter(lambda text: not text.startswith('/')),
                 st.just('//host/path'), st.just('/a\nb'), st.integers()))
def test_on_complete_must_be_a_path_inside_the_app(local_queue, url):
    with pytest.raises(InvalidTask, match='on_complete'):
        taskqueue.job(on_complete=url)


@fixture_kept
@given(st.one_of(st.just(''), st.just('a b'), st.just('x' * 101),
                 st.integers()))
def test_a_job_label_is_checked_as_a_task_label(local_queue, label):
    with pytest.raises(InvalidTask, match='label'):
        taskqueue.job(label=label)


def test_a_forged_job_marker_is_refused_at_decode(local_queue):
    from wsgi_taskqueue.errors import DecodeError
    _, message = task_message(local_queue, job=new_id(),
                              job_marker={'op': 'explode'})
    with pytest.raises(DecodeError, match='job marker'):
        local_queue.codec.decode(message)


def test_a_sharded_queue_keeps_a_job_and_its_tasks_on_one_shard(
        sharded_queue):
    from wsgi_taskqueue.backends.redis.jobs import job_shard
    first = new_id()
    second = next(job_id for job_id in iter(new_id, None)
                  if job_shard(sharded_queue, job_id)
                  is not job_shard(sharded_queue, first))
    home = job_shard(sharded_queue, first)
    promoted(sharded_queue, opening(sharded_queue, first)[1])
    # Whatever shard its batch id picks, a task goes to its job's shard.
    for batch in ('b2', 'b3', 'b4', 'b5'):
        promoted(sharded_queue, members(sharded_queue, first, 1)[0][1],
                 batch=batch)
    assert home.job_status(first)['total'] == 4
    assert sharded_queue.job_status(first)['total'] == 4
    assert home.counts()['pending'] == 4
    _, other = opening(sharded_queue, second)
    with pytest.raises(InvalidTask, match='different shards'):
        sharded_queue.stage('b6', [other, members(sharded_queue, first,
                                                  1)[0][1]])


def test_a_chunk_run_again_after_it_closed_its_job_adds_nothing(any_queue):
    """A task that adds a job's last named tasks and closes it, run a
    second time (its worker died before acknowledging it): nothing is
    added twice, and its close changes nothing."""
    with transaction.manager:
        job = taskqueue.job(label='chunked')

    def last_chunk():
        with transaction.manager:
            taskqueue.add('/t', job=job, name=f'{job}-last')
            job.close()
    last_chunk()
    last_chunk()
    assert counts(any_queue, str(job)) == ('closed', 1, 0, 0, 1)


def test_a_close_waits_for_the_first_close_still_staged(any_queue):
    """The first run of a chunk staged its tasks and its close, and its
    process died before promoting them; a second run's tasks and close
    are dropped (their names are held), so the job is closed only when a
    sweep promotes the first run's batch, its tasks counted."""
    job_id = new_id()
    promoted(any_queue, opening(any_queue, job_id)[1])
    _, member = task_message(any_queue, job=job_id, name='chunk-9')
    _, close = task_message(any_queue, url='/', method='GET', payload=b'',
                            job=job_id, job_marker={'op': 'close'},
                            name=f'job:{job_id}:close')
    any_queue.stage('first-run', [member, close])
    with transaction.manager:
        taskqueue.add('/t', job=job_id, name='chunk-9')
        taskqueue.close_job(job_id)
    assert counts(any_queue, job_id) == ('open', 0, 0, 0, 0)
    any_queue.promote('first-run')
    assert counts(any_queue, job_id) == ('closed', 1, 0, 0, 1)
