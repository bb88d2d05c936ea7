"""Tasks that wait for other tasks (``after=``): the backend contract on
every backend, and the validation of the option at ``add``."""
import hypothesis.strategies as st
import pytest
import transaction
from hypothesis import HealthCheck, given, settings

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import InvalidTask, UnknownDependency
from wsgi_taskqueue.status import Report

from test_backends import acked, buried, promoted, task_message

fixture_kept = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture])


def chain(queue, length=3, **first):
    """Tasks t0, t1 after t0, t2 after t1, ...: (task, message) pairs."""
    tasks = [task_message(queue, **first)]
    for _ in range(length - 1):
        tasks.append(task_message(queue, after=[tasks[-1][0].id]))
    return tasks


def state(queue, task):
    return queue.task_status(task.id)['state']


def test_a_chain_runs_in_order(any_queue):
    (a, first), (b, second), (c, third) = chain(any_queue)
    promoted(any_queue, first, second, third)
    assert [state(any_queue, task) for task in (a, b, c)] == [
        'queued', 'waiting', 'waiting']
    assert any_queue.reserve('c', 10, 0) == [first]
    acked(any_queue, a, first)
    assert state(any_queue, b) == 'queued'
    assert any_queue.reserve('c', 10, 0) == [second]
    acked(any_queue, b, second)
    assert any_queue.reserve('c', 10, 0) == [third]


def test_a_task_waits_for_every_task_it_names(any_queue):
    (a, first), (b, second) = task_message(any_queue), task_message(any_queue)
    waiting, third = task_message(any_queue, after=[a.id, b.id])
    promoted(any_queue, first, second, third)
    assert any_queue.reserve('c', 10, 0) == [first, second]
    acked(any_queue, a, first)
    assert state(any_queue, waiting) == 'waiting'
    acked(any_queue, b, second)
    assert any_queue.reserve('c', 10, 0) == [third]


def test_a_dying_task_dead_letters_the_chain_after_it(any_queue):
    (a, first), (b, second), (c, third) = chain(any_queue)
    promoted(any_queue, first, second, third)
    assert any_queue.reserve('c', 10, 0) == [first]
    buried(any_queue, a, first, '400 Bad Request')
    for task, reason in ((b, a.id), (c, b.id)):
        status = any_queue.task_status(task.id)
        assert status['state'] == 'dead'
        assert status['status'] == (f'not run: the task it waited for, '
                                    f'{reason}, is dead')
    assert sorted(letter_task(any_queue, record)
                  for record in any_queue.dead_letters()) == sorted(
        [a.id, b.id, c.id])
    assert any_queue.reserve('c', 10, 0) == []


def letter_task(queue, record):
    from wsgi_taskqueue.deadletter import DeadLetter
    return DeadLetter.decode(record).task_id


def test_a_dependency_of_an_earlier_transaction(any_queue):
    (a, first), (dead, second) = task_message(any_queue), task_message(
        any_queue)
    promoted(any_queue, first, second)
    assert any_queue.reserve('c', 10, 0) == [first, second]
    acked(any_queue, a, first)
    buried(any_queue, dead, second, '400 Bad Request')
    (after_done, third), (after_dead, fourth) = (
        task_message(any_queue, after=[a.id]),
        task_message(any_queue, after=[dead.id]))
    promoted(any_queue, third, fourth, batch='b2')
    any_queue.sweep(3600)  # buries what a dead dependency condemned
    assert state(any_queue, after_done) == 'queued'
    assert any_queue.reserve('c', 10, 0) == [third]
    assert state(any_queue, after_dead) == 'dead'
    assert any_queue.counts()['dead'] == 2


def test_an_unknown_dependency_is_refused_at_stage(any_queue):
    _, message = task_message(any_queue, after=['ab' * 16])
    with pytest.raises(UnknownDependency, match='ab' * 16):
        any_queue.stage('b1', [message])
    assert any_queue.counts()['staged'] == 0


def test_cancel_of_a_waiting_task_dead_letters_what_waits_for_it(
        any_queue):
    (a, first), (b, second), (c, third) = chain(any_queue)
    promoted(any_queue, first, second, third)
    assert any_queue.cancel(b.id) == 'cancelled'
    assert state(any_queue, b) == 'cancelled'
    any_queue.sweep(3600)
    assert state(any_queue, c) == 'dead'
    assert any_queue.reserve('c', 10, 0) == [first]
    acked(any_queue, a, first)
    assert any_queue.reserve('c', 10, 0) == []


def test_cancel_of_a_pending_dependency_dead_letters_its_dependents(
        any_queue):
    (a, first), (b, second) = chain(any_queue, 2)
    promoted(any_queue, first, second)
    assert any_queue.cancel(a.id) == 'cancelled'
    any_queue.sweep(3600)
    assert state(any_queue, b) == 'dead'
    assert any_queue.task_status(b.id)['status'].endswith(
        f'{a.id}, is cancelled')


def test_ids_of_earlier_adds_in_one_transaction(local_queue):
    first = taskqueue.add('/quote')
    second = taskqueue.add('/validate', after=first)
    transaction.commit()
    assert local_queue.task_status(second)['state'] == 'waiting'
    assert local_queue.task_status(second)['after'] == [first]


def test_an_unknown_dependency_aborts_the_transaction(local_queue):
    taskqueue.add('/view', after='ab' * 16)
    with pytest.raises(UnknownDependency, match='unknown to the queue'):
        transaction.commit()
    transaction.abort()
    assert local_queue.counts()['pending'] == 0


@fixture_kept
@given(st.one_of(
    st.text().filter(lambda text: not text or any(
        c not in '0123456789abcdef' for c in text) or len(text) > 64),
    st.lists(st.just('ab'), min_size=101, max_size=120), st.just([]),
    st.integers(), st.lists(st.integers(), min_size=1)))
def test_after_must_name_task_ids(local_queue, after):
    with pytest.raises(InvalidTask, match='after must be'):
        taskqueue.add('/view', after=after)


@fixture_kept
@given(st.lists(st.from_regex(r'[0-9a-f]{32}', fullmatch=True), min_size=1,
                max_size=100))
def test_every_list_of_ids_is_accepted_once_each(local_queue, ids):
    task_id = taskqueue.add('/view', after=ids)
    message = transaction.get()
    assert task_id
    del message
    transaction.abort()


def batch_on(queue, shard: int) -> str:
    """A batch id that a sharded ``queue`` stages on ``shard``."""
    return next(batch for batch in (f'b{n}' for n in range(1000))
                if queue._shard_of(batch) is queue.shards[shard])


def test_a_sharded_queue_stages_a_task_where_its_dependency_is(
        sharded_queue):
    (a, first), (b, second) = task_message(sharded_queue), task_message(
        sharded_queue)
    promoted(sharded_queue, first, batch=batch_on(sharded_queue, 0))
    promoted(sharded_queue, second, batch=batch_on(sharded_queue, 1))
    waiting, third = task_message(sharded_queue, after=[a.id])
    promoted(sharded_queue, third, batch=batch_on(sharded_queue, 1))
    assert sharded_queue.shards[0].task_status(waiting.id)['state'] == \
        'waiting'
    # A reserve takes from one shard after the other.
    taken = sharded_queue.reserve('c', 10, 0) + sharded_queue.reserve(
        'c', 10, 0)
    assert sorted(taken) == sorted([first, second])
    acked(sharded_queue, a, first)
    assert sharded_queue.reserve('c', 10, 0) == [third]
    both, fourth = task_message(sharded_queue, after=[a.id, b.id])
    with pytest.raises(UnknownDependency, match='one of its shards'):
        sharded_queue.stage(batch_on(sharded_queue, 0), [fourth])


def test_on_a_cluster_chains_results_and_callbacks_stay_in_one_slot(
        cluster_url):
    import wsgi_taskqueue
    from wsgi_taskqueue import completion, results
    from wsgi_taskqueue.dispatch import Result
    queue = wsgi_taskqueue.RedisQueue(url=cluster_url, socket_timeout=2)
    wsgi_taskqueue.register_queue('default', queue)
    (a, first), (b, second), (c, third) = chain(queue, keep_result=True,
                                                on_success='/done')
    promoted(queue, first, second, third)
    assert queue.reserve('c', 10, 0) == [first]
    queue.ack('c', [(first, completion.finished(
        queue, a, Report(a.id, 1, '200 OK', 0.01),
        Result('200 OK', [], body=b'ok', size=2), 'done'))])
    assert results.decode(queue.task_result(a.id))['body'] == b'ok'
    taken = [queue.codec.decode(message)
             for message in queue.reserve('c', 10, 0)]
    assert sorted(task.url for task in taken) == ['/done', '/view?a=1']
    buried(queue, b, second, '400 Bad Request')
    assert state(queue, c) == 'dead'
    assert queue.counts()['dead'] == 2
