"""The Redis queue on a Cluster, in this process: one slot per queue,
a transaction over several slots, and a slot that moves while the queue
works (the loads and kills are in faults/test_redis_cluster.py)."""
import json
import threading
import time

import pytest
import redis
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import BackendUnavailable
from wsgi_taskqueue.status import Report
from wsgi_taskqueue.task import Task

from dummies import add, wait_until
from test_admin import work


def queues_on_every_primary(redis_cluster, url) -> list:
    """One queue per primary, registered."""
    queues = []
    for name in redis_cluster.spread_names(1, prefix='c'):
        queue = wsgi_taskqueue.RedisQueue(url=url, socket_timeout=2)
        wsgi_taskqueue.register_queue(name, queue)
        queues.append(queue)
    return queues


def test_a_queue_lives_on_the_primary_of_its_hash_tag(redis_cluster,
                                                      cluster_url):
    queues = queues_on_every_primary(redis_cluster, cluster_url)
    ports = {queue.pool.connection_kwargs['port'] for queue in queues}
    assert len(ports) == redis_cluster.primaries
    # Written together: one script per slot, sent to every primary at once.
    assert len({queue.group for queue in queues}) == 1
    for queue in queues:
        assert queue.pool.connection_kwargs['port'] == (
            redis_cluster.primary_of(queue.name).port)


def test_a_transaction_over_three_slots_stages_and_promotes_each(
        redis_cluster, cluster_url):
    queues = queues_on_every_primary(redis_cluster, cluster_url)
    with transaction.manager:
        ids = {queue.name: [taskqueue.add('/t', queue=queue.name)
                            for _ in range(3)] for queue in queues}
    for queue in queues:
        taken = queue.reserve('w#1', 10, 0)
        assert [queue.codec.decode(m).id for m in taken] == ids[queue.name]


def blocked_scripts(redis_cluster, port) -> int:
    """Thread connections of this process that the primary at ``port``
    holds back (CLIENT PAUSE WRITE) with a script to run."""
    return sum(1 for client in redis_cluster.client(port).client_list()
               if client['name'] == 'wsgi-taskqueue-thread'
               and 'b' in client['flags'])


def paused(redis_cluster, queues, action) -> list:
    """Run ``action`` in a thread while every primary of ``queues`` holds
    back writes (CLIENT PAUSE WRITE), until each holds back one of this
    process's scripts; what it raised, if anything."""
    ports = [redis_cluster.primary_of(queue.name).port for queue in queues]
    errors = []

    def run():
        try:
            action()
        except Exception as exc:  # pragma: no cover - reported by caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    try:
        for port in ports:
            redis_cluster.client(port).client_pause(30_000, all=False)
        thread.start()
        wait_until(lambda: all(blocked_scripts(redis_cluster, port)
                               for port in ports))
    finally:
        for port in ports:
            redis_cluster.client(port).client_unpause()
    thread.join()
    return errors


def test_a_stage_over_three_slots_reaches_every_primary_at_once(
        redis_cluster, cluster_url):
    """Every primary holds back writes: the vote of a transaction over
    three slots sends each its script before the first answers, so it
    takes one round trip in all, not one per slot."""
    queues = queues_on_every_primary(redis_cluster, cluster_url)
    ids = []

    def commit():
        with transaction.manager:
            ids.extend(taskqueue.add('/t', queue=queue.name)
                       for queue in queues)
    assert paused(redis_cluster, queues, commit) == []
    for queue, task_id in zip(queues, ids, strict=True):
        assert [queue.codec.decode(m).id
                for m in queue.reserve('w#1', 10, 0)] == [task_id]


def test_a_promotion_over_three_slots_reaches_every_primary_at_once(
        redis_cluster, cluster_url):
    queues = queues_on_every_primary(redis_cluster, cluster_url)
    tasks = [Task.new(queue=queue.name, url='/t', method='GET', environ={},
                      payload=b'', user_id=None) for queue in queues]
    queues[0].stage_batches('b1', {queue: [queue.codec.encode(task)]
                                   for queue, task in zip(queues, tasks, strict=True)})
    assert paused(redis_cluster, queues,
                  lambda: queues[0].promote_batches('b1', queues)) == []
    for queue, task in zip(queues, tasks, strict=True):
        assert [queue.codec.decode(m).id
                for m in queue.reserve('w#1', 10, 0)] == [task.id]


def test_a_vote_that_fails_on_one_primary_discards_on_the_others(
        redis_cluster, cluster_url):
    queues = queues_on_every_primary(redis_cluster, cluster_url)
    broken = queues[-1]
    broken.client.set(broken.staged_key, 'not a hash')
    with pytest.raises(redis.ResponseError, match='WRONGTYPE'), \
            transaction.manager:
        for queue in queues:
            taskqueue.add('/t', queue=queue.name)
    for queue in queues[:-1]:
        assert queue.counts()['staged'] == queue.counts()['pending'] == 0
        assert list(queue.client.scan_iter(match=queue.base + '*')) == []


def test_a_slot_moving_under_a_working_queue_loses_nothing(
        redis_cluster, cluster_url):
    """Commits, reserves and acknowledgements while the queue's slot is
    half migrated (ASK, TRYAGAIN) and after (MOVED)."""
    queue, other = queues_on_every_primary(redis_cluster, cluster_url)[:2]
    target = redis_cluster.primary_of(other.name)
    committed, taken = [], []

    def work():
        with transaction.manager:
            committed.extend(taskqueue.add('/t', queue=queue.name)
                             for _ in range(2))
        messages = queue.reserve('w#1', 1, 0)
        taken.extend(queue.codec.decode(m).id for m in messages)
        queue.ack('w#1', [(m, Report(queue.codec.decode(m).id, 1, '200 OK',
                                     0.001)) for m in messages])

    for _ in range(30):  # keys in the slot to migrate
        work()
    moved = threading.Event()

    def keep_working():
        while not moved.is_set():
            work()
    worker = threading.Thread(target=keep_working)
    worker.start()
    # A pause after each batch of keys: the queue works half migrated.
    redis_cluster.move_slot(queue.route.slot, target,
                            between=lambda: time.sleep(0.02))
    moved.set()
    worker.join()
    for _ in range(5):
        work()
    assert queue.pool.connection_kwargs['port'] == target.port
    while len(taken) < len(committed):
        messages = queue.reserve('w#1', 10, 0)
        assert messages, (len(taken), len(committed), queue.counts())
        taken.extend(queue.codec.decode(m).id for m in messages)
        queue.ack('w#1', [(m, Report(queue.codec.decode(m).id, 1, '200 OK',
                                     0.001)) for m in messages])
    assert sorted(taken) == sorted(committed)
    assert queue.counts() == {'pending': 0, 'delayed': 0, 'dead': 0,
                              'staged': 0, 'processing': {}}


def test_a_script_waits_while_its_slot_migrates(redis_cluster, cluster_url):
    """A promotion sent while the queue's slot is marked as migrating, all
    its keys still on the source: it must neither run there (its status
    records, new keys, would stop it half done, its tasks already pending)
    nor be lost; it runs once, on the target, when the slot has moved."""
    queue, other = queues_on_every_primary(redis_cluster, cluster_url)[:2]
    with transaction.manager:
        first = taskqueue.add('/first', queue=queue.name)
    second = Task.new(queue=queue.name, url='/second', method='GET',
                      environ={}, payload=b'', user_id=None)
    queue.stage_batches('b1', {queue: [queue.codec.encode(second)]})
    promoted = []

    def promote():
        queue.promote_batches('b1', [queue])
        promoted.append(time.monotonic())

    promoter = threading.Thread(target=promote)

    def start_promoting():
        promoter.start()
        time.sleep(0.2)  # it waits: the slot is migrating
        assert promoted == []

    redis_cluster.move_slot(queue.route.slot,
                            redis_cluster.primary_of(other.name),
                            before=start_promoting)
    promoter.join(10)
    assert promoted
    taken = [queue.codec.decode(m).url for m in queue.reserve('w#1', 10, 0)]
    assert taken == ['/first', '/second'], (first, taken)


def test_cluster_true_finds_the_cluster_from_one_node(tmp_path, redis_cluster,
                                                     cluster_url):
    node = redis_cluster.servers[1].port
    path = tmp_path / 'app.ini'
    path.write_text(f'[taskqueue:c0]\ntype = redis\nhost = 127.0.0.1\n'
                    f'port = {node}\ncluster = true\n\n'
                    f'[taskqueue:c1]\ntype = redis\n'
                    f'url = redis://127.0.0.1:{node}\ncluster = true\n')
    wsgi_taskqueue.configure(str(path))
    for name in ('c0', 'c1'):
        queue = wsgi_taskqueue.get_queue(name)
        with transaction.manager:
            taskqueue.add('/t', queue=name)
        assert queue.counts()['pending'] == 1
        assert queue.pool.connection_kwargs['port'] == (
            redis_cluster.primary_of(name).port)


def test_the_command_line_reads_the_queues_of_every_primary(
        tmp_path, redis_cluster, cluster_url, run):
    """status, tasks and dead of an ini whose queues sit on three
    primaries: each queue is read on its own primary."""
    names = redis_cluster.spread_names(1, prefix='k')
    path = tmp_path / 'app.ini'
    path.write_text(''.join(
        f'[taskqueue:{name}]\ntype = redis\nurl = {cluster_url}\n'
        f'secret = s3cret\n\n' for name in names))
    wsgi_taskqueue.configure(str(path))  # the queues main() uses too
    dead, done = {}, {}
    for name in names:
        [dead[name], done[name]] = add('/gone', '/ok', queue=name)
        work(name)
    code, out, _ = run('status', path)
    assert code == 0
    for name in names:
        assert f'queue {name}  (redis, {cluster_url})' in out
    assert out.count('pending 0  in flight 0  delayed 0  dead 1') == 3
    statuses = json.loads(run('status', path, '--json')[1])
    assert {s['queue']: (s['dead'], s['outcomes']['done'])
            for s in statuses} == dict.fromkeys(names, (1, 1))
    records = json.loads(run('tasks', path, '--json')[1])
    assert {(r['queue'], r['id'], r['state']) for r in records} == {
        *((name, dead[name], 'dead') for name in names),
        *((name, done[name], 'done') for name in names)}
    letters = json.loads(run('dead', 'list', path, '--json')[1])
    assert sorted(letter['task_id'] for letter in letters) == sorted(
        dead.values())
    code, out, _ = run('dead', 'requeue', path, dead[names[-1]])
    assert code == 0
    queue = wsgi_taskqueue.get_queue(names[-1])
    assert queue.counts()['dead'] == 0 and queue.counts()['pending'] == 1


def test_a_plain_url_to_a_cluster_node_says_to_use_the_cluster(
        redis_cluster, cluster_url):
    """A queue whose slot another node serves, reached by redis:// at one
    node: the commit fails at once, saying what to write instead."""
    [name, other] = redis_cluster.spread_names(1, prefix='p')[:2]
    node = redis_cluster.primary_of(other).port
    wsgi_taskqueue.register_queue(name, wsgi_taskqueue.RedisQueue(
        url=f'redis://127.0.0.1:{node}', socket_timeout=2))
    with pytest.raises(BackendUnavailable, match='redis\\+cluster://'), \
            transaction.manager:
        taskqueue.add('/t', queue=name)
