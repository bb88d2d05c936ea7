"""kill -9 of a worker of a sharded queue in the middle of its tasks: the
survivor's sweep, which visits every shard, runs them once more (G2,
G5), each in the shard it came from."""
import collections

import wsgi_taskqueue
from wsgi_taskqueue import registry
from wsgi_taskqueue.backends.redis.sharded import ShardedRedisQueue

from .cluster import SECRET

SHARDS = 3


def test_a_killed_workers_tasks_in_several_shards_run_once_more(cluster):
    registry.unregister_queue('default').close()
    cluster.queue = ShardedRedisQueue(url=cluster.redis_url, shards=SHARDS,
                                      secrets=[SECRET], socket_timeout=5)
    wsgi_taskqueue.register_queue('default', cluster.queue)
    # One task per thread (prefetch 1): every task must be started, each
    # blocking its thread, before the kill; a thread holding a second
    # task behind its blocked one would leave that task unstarted.
    workers = {name: cluster.worker(name, concurrent_limit=SHARDS,
                                    prefetch=1,
                                    queue_settings={'shards': SHARDS})
               for name in ('w1', 'w2')}
    tasks = [task for _ in range(2 * SHARDS)
             for task in cluster.add(block='go')]  # a transaction each
    cluster.wait_until(
        lambda: len(cluster.ledger.query('SELECT * FROM starts'))
        == len(tasks), 'every task to start')
    in_shards = [shard.counts()['processing'] for shard in
                 cluster.queue.shards]
    assert sum(bool(counts) for counts in in_shards) > 1, in_shards
    starts = {task: cluster.ledger.starts(task)[0][2] for task in tasks}
    victim = workers['w1']

    cluster.kill(victim)
    cluster.raise_flag('go')
    cluster.wait_for_runs(tasks)
    cluster.wait_until(cluster.settled, 'a settled queue')

    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    assert all(runs[task] == 1 for task in tasks), runs
    killed = [task for task, pid in starts.items() if pid == victim.pid]
    assert killed, starts
    for task in killed:
        assert cluster.ledger.runs(task)[0][2] == workers['w2'].pid
