"""Staged batches in Redis (``backends/redis/staging.py``): one hash field
per batch, its messages packed after their lengths, and the sweep's note
of when it first found each."""
import time
import uuid

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

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
