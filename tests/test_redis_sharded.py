"""A queue over several hash tags (backends/redis/sharded.py): tasks
spread over the shards, consumers take from all of them, every task runs
once; on a Cluster the shards sit on different primaries."""
import textwrap
import threading

import transaction

import wsgi_taskqueue
from wsgi_taskqueue import admin, taskqueue
from wsgi_taskqueue.backends.redis.sharded import ShardedRedisQueue
from wsgi_taskqueue.status import Report

from dummies import RecordingApp, wait_until


def commit_each(count: int, queue: str = 'hot', **params) -> list[str]:
    ids = []
    for _ in range(count):
        with transaction.manager:
            ids.append(taskqueue.add('/t', queue=queue, params=params))
    return ids


def test_an_ini_shards_a_queue(tmp_path, redis_url):
    path = tmp_path / 'app.ini'
    path.write_text(textwrap.dedent(f"""
        [taskqueue:hot]
        type = redis
        url = {redis_url}
        shards = 4
    """))
    wsgi_taskqueue.configure(str(path))
    queue = wsgi_taskqueue.get_queue('hot')
    assert isinstance(queue, ShardedRedisQueue)
    assert [shard.base for shard in queue.shards] == [
        f'wsgi-taskqueue:{{hot~{n}}}:' for n in range(4)]
    assert admin.queue_status('hot')['type'] == 'redis'


def test_tasks_spread_over_the_shards_and_each_runs_once(redis_url, consume):
    queue = ShardedRedisQueue(url=redis_url, shards=3, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    ids = commit_each(60)
    pending = [shard.counts()['pending'] for shard in queue.shards]
    assert sum(pending) == 60 and all(pending), pending
    assert admin.queue_status('hot')['pending'] == 60
    app = RecordingApp()
    consume(app, queue='hot', concurrent_limit=3)
    app.wait_for(60)
    ran = [environ['HTTP_X_TASK_ID'] for environ in app.environs]
    assert sorted(ran) == sorted(ids)
    wait_until(lambda: queue.counts() == {
        'pending': 0, 'delayed': 0, 'dead': 0, 'staged': 0,
        'processing': {}})
    done = [record['id'] for record in queue.tasks(state='done', count=100)]
    assert sorted(done) == sorted(ids)


def test_a_waiting_consumer_takes_a_task_from_any_shard(redis_url, consume):
    """Fewer threads than shards: a task in a shard nobody waits on is
    taken within poll_interval."""
    queue = ShardedRedisQueue(url=redis_url, shards=4, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    app = RecordingApp()
    consume(app, queue='hot', concurrent_limit=1, poll_interval=0.2)
    ids = commit_each(8)
    app.wait_for(8)
    assert sorted(e['HTTP_X_TASK_ID'] for e in app.environs) == sorted(ids)


def test_failed_tasks_are_retried_and_buried_in_their_shard(redis_url,
                                                           consume):
    queue = ShardedRedisQueue(url=redis_url, shards=2, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    app = RecordingApp(status='500 Internal Server Error')
    consume(app, queue='hot', concurrent_limit=2, retry_max_count=1,
            retry_delay=0.05)
    ids = commit_each(6)
    wait_until(lambda: queue.counts()['dead'] == 6)
    assert sum(shard.counts()['dead'] > 0 for shard in queue.shards) == 2
    assert len(queue.dead_letters()) == 6
    assert queue.counts()['processing'] == {}
    assert sorted(r['id'] for r in queue.tasks(state='dead')) == sorted(ids)


def test_on_a_cluster_the_shards_sit_on_several_primaries(redis_cluster,
                                                          cluster_url):
    queue = ShardedRedisQueue(url=cluster_url, shards=6, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    ports = {shard.pool.connection_kwargs['port'] for shard in queue.shards}
    assert len(ports) > 1
    ids = commit_each(30)
    taken = []
    lock = threading.Lock()

    def take(number):
        while True:
            messages = queue.reserve(f'w#{number}', 10, 0.2)
            if not messages:
                return
            ids = [queue.codec.decode(m).id for m in messages]
            with lock:
                taken.extend(ids)
            queue.ack(f'w#{number}', [
                (m, Report(i, 1, '200 OK', 0.001))
                for m, i in zip(messages, ids, strict=True)])
    threads = [threading.Thread(target=take, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(ids)
    assert queue.counts()['processing'] == {}


def test_a_name_is_one_per_queue_across_its_shards(redis_url):
    queue = ShardedRedisQueue(url=redis_url, shards=3, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    barrier = threading.Barrier(20)

    def add():
        barrier.wait()
        with transaction.manager:
            taskqueue.add('/t', queue='hot', name='nightly')
    threads = [threading.Thread(target=add) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pending = [shard.counts()['pending'] for shard in queue.shards]
    assert sum(pending) == 1, pending


def test_priorities_order_the_tasks_of_each_shard(redis_url):
    queue = ShardedRedisQueue(url=redis_url, shards=2, socket_timeout=2)
    wsgi_taskqueue.register_queue('hot', queue)
    with transaction.manager:
        low = taskqueue.add('/t', queue='hot', priority=1)
        high = taskqueue.add('/t', queue='hot', priority=9)
    [shard] = [shard for shard in queue.shards if shard.counts()['pending']]
    taken = [shard.codec.decode(message).id
             for message in queue.reserve('c', 2, 0)]
    assert taken == [high, low]
