"""What the Redis queue's steps cost the server, in commands (``INFO
commandstats``, those run inside its scripts included): counted, so that a
change that adds work per task shows here, not only in the benchmark."""
import transaction

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.backends.redis import staging
from wsgi_taskqueue.status import Report


def commands(queue) -> dict:
    stats = queue.client.info('commandstats')
    return {name.removeprefix('cmdstat_'): stat['calls']
            for name, stat in stats.items()
            if name not in ('cmdstat_info', 'cmdstat_config|resetstat')}


def test_a_stage_sent_again_leaves_its_batch_once_in_order(redis_queue):
    for size in (1, 3, 1500):
        messages = [f'm{i}'.encode() for i in range(size)]
        batch = f'batch-{size}'
        redis_queue.stage(batch, messages)
        redis_queue.stage(batch, messages)  # as after a lost reply
        assert redis_queue.client.hlen(redis_queue.staged_key) == 1
        assert staging.unpack(redis_queue.client.hget(
            redis_queue.staged_key, batch)) == messages
        redis_queue.promote(batch)
        assert redis_queue.reserve(f'w#{size}', size + 1, 0) == messages


def test_a_one_task_transaction_costs_redis_seven_commands(redis_queue):
    with transaction.manager:
        taskqueue.add('/warm-up')
    redis_queue.connections.settle()
    redis_queue.client.config_resetstat()
    with transaction.manager:
        taskqueue.add('/counted')
    redis_queue.connections.settle()
    counted = commands(redis_queue)
    # stage: hset; promote: evalsha, time, hget, lpush, the status
    # index's zadd (no status record while it waits), hdel
    assert sum(counted.values()) == 7, counted
    assert counted['hset'] == 1 and 'expire' not in counted
    assert counted['hdel'] == 1  # the promotion's only


def test_a_finished_batch_leaves_its_slot_in_one_del_not_an_lrem_each(
        redis_queue):
    with transaction.manager:
        ids = [taskqueue.add(f'/t{i}') for i in range(32)]
    taken = redis_queue.reserve('w#1', 32, 0)
    assert len(taken) == 32
    redis_queue.client.config_resetstat()
    redis_queue.ack('w#1', [(message, Report(task_id, 1, '200 OK', 0.001))
                            for message, task_id in zip(taken, ids, strict=True)])
    counted = commands(redis_queue)
    assert 'lrem' not in counted and counted['del'] == 1, counted
    assert not redis_queue.counts()['processing']
    assert {redis_queue.task_status(task_id)['state'] for task_id in ids} \
        == {'done'}


def test_a_task_drained_in_a_batch_costs_redis_five_commands(redis_queue):
    with transaction.manager:
        ids = [taskqueue.add(f'/t{i}') for i in range(32)]
    redis_queue.client.config_resetstat()
    taken = redis_queue.reserve('w#1', 32, 0)
    redis_queue.ack('w#1', [(message, Report(task_id, 1, '200 OK', 0.001))
                            for message, task_id in zip(taken, ids, strict=True)])
    counted = commands(redis_queue)
    # Each task: lmove, the replay check's hget, the running record's hset
    # and expire, the done record's hset (a quick task's end keeps the
    # expiry); whether any task waits for them: one exists for all.
    assert counted['lmove'] == counted['hget'] == counted['expire'] - 1 == 32
    assert counted['hset'] == 64 and counted['exists'] == 1, counted
    assert 'smembers' not in counted or counted['smembers'] == 1  # levels
    assert sum(counted.values()) <= 5 * 32 + 16, counted


def test_a_slot_holding_more_than_the_finished_loses_only_those(
        redis_queue):
    with transaction.manager:
        ids = [taskqueue.add(f'/t{i}') for i in range(5)]
    taken = redis_queue.reserve('w#1', 5, 0)
    redis_queue.ack('w#1', [
        (message, Report(task_id, 1, '200 OK', 0.001))
        for message, task_id in zip(taken[:4], ids[:4], strict=True)])
    assert redis_queue.counts()['processing'] == {'w': 1}
    assert redis_queue.client.lrange(redis_queue.processing_key('w#1'),
                                     0, -1) == taken[4:]
