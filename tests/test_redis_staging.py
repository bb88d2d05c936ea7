"""Staged batches in Redis (``backends/redis/staging.py``): one hash field
per batch, its messages packed after their lengths, and the sweep's note
of when it first found each."""
import threading
import time
import uuid

import hypothesis.strategies as st
import transaction
from hypothesis import HealthCheck, given, settings

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.backends.redis import staging

batches = st.lists(st.binary(max_size=40), max_size=8)


@given(batches)
def test_packed_messages_unpack_to_themselves(messages):
    assert staging.unpack(staging.pack(messages)) == messages


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=8))
def test_the_promotion_unpacks_what_the_stage_packed(redis_queue, messages):
    batch = uuid.uuid4().hex
    redis_queue.stage(batch, messages)
    redis_queue.promote(batch)
    slot = f'w#{batch}'
    assert redis_queue.reserve(slot, len(messages) + 1, 0) == messages
    redis_queue.client.delete(redis_queue.processing_key(slot))
    assert redis_queue.client.hlen(redis_queue.staged_key) == 0


def seen(queue) -> set:
    return {batch.decode()
            for batch in queue.client.hkeys(queue.staged_seen_key)}


def test_a_batchs_age_counts_from_the_first_sweep_that_found_it(
        redis_queue):
    redis_queue.stage('orphan', [b'1'])
    time.sleep(0.2)  # older than the grace below, but not yet seen
    assert redis_queue.sweep(grace=0.1)['batches'] == []
    assert seen(redis_queue) == {'orphan'}
    time.sleep(0.15)  # seen longer ago than the grace
    assert redis_queue.sweep(grace=0.1)['batches'] == ['orphan']
    assert redis_queue.reserve('w#1', 2, 0) == [b'1']


def test_the_sweep_forgets_its_notes_of_batches_gone(redis_queue):
    redis_queue.stage('aborted', [b'1'])
    redis_queue.stage('committed', [b'2'])
    redis_queue.stage('open', [b'3'])
    redis_queue.sweep(grace=60)
    assert seen(redis_queue) == {'aborted', 'committed', 'open'}
    redis_queue.discard('aborted')
    redis_queue.promote('committed')
    assert redis_queue.sweep(grace=60)['batches'] == []
    assert seen(redis_queue) == {'open'}
    assert redis_queue.counts()['staged'] == 1


def test_a_batch_is_staged_before_its_names_are_claimed(redis_queue):
    """So that a process stopping in between leaves no name held by a task
    that was never staged (backends/redis/names.py)."""
    seen_commands = []
    ready = threading.Event()

    def watch():
        with redis_queue.client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                seen_commands.append(command['command'])
                if 'monitor-done' in command['command']:
                    return
    watcher = threading.Thread(target=watch)
    watcher.start()
    assert ready.wait(5)
    with transaction.manager:
        taskqueue.add('/view', name='invoice-42')
    redis_queue.client.echo('monitor-done')
    watcher.join(5)
    staged = [i for i, command in enumerate(seen_commands)
              if command.startswith('HSET') and ':staged' in command]
    claimed = [i for i, command in enumerate(seen_commands)
               if ':name:invoice-42' in command and 'EVAL' in command]
    assert staged and claimed and staged[0] < claimed[0], seen_commands


def test_a_task_whose_name_is_held_is_staged_again_without_it(redis_queue):
    with transaction.manager:
        holder = taskqueue.add('/view', name='invoice-42')
    with transaction.manager:
        dropped = taskqueue.add('/view', name='invoice-42')
        kept = taskqueue.add('/other')
    assert taskqueue.status(dropped) is None
    taken = [redis_queue.codec.decode(message).id
             for message in redis_queue.reserve('w#1', 10, 0)]
    assert taken == [holder, kept]
    assert redis_queue.counts()['staged'] == 0


def orphan(queue, batch, *tasks):
    """A batch as its process left it when it died between the stage and
    the claim of its names: staged, its names claimed by nobody."""
    queue.client.hset(queue.staged_key, batch, staging.pack(
        [queue.codec.encode(task) for task in tasks]))


def test_a_promoted_orphan_drops_a_task_whose_name_another_claimed(
        redis_queue):
    from test_task import make_task
    first = make_task(name='invoice-42')
    orphan(redis_queue, 'first-run', first)
    with transaction.manager:  # the transaction run again
        second = taskqueue.add('/view', name='invoice-42')
    redis_queue.promote('first-run')  # by a sweep
    taken = [redis_queue.codec.decode(message).id
             for message in redis_queue.reserve('w#1', 10, 0)]
    assert taken == [second]
    assert redis_queue.counts()['staged'] == 0


def test_a_promoted_orphan_claims_the_names_nobody_holds(redis_queue):
    from test_task import make_task
    first = make_task(name='invoice-42')
    orphan(redis_queue, 'first-run', first)
    redis_queue.promote('first-run')
    with transaction.manager:
        dropped = taskqueue.add('/view', name='invoice-42')
    assert taskqueue.status(dropped) is None
    taken = [redis_queue.codec.decode(message).id
             for message in redis_queue.reserve('w#1', 10, 0)]
    assert taken == [first.id]
