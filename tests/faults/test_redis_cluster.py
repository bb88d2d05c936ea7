"""Queues on a Redis Cluster of three primaries, each with a replica:
transactions across queues of several slots, workers on every queue, a
live resharding of a busy queue's slot, kill -9 of a primary under load.
Counted in the fault app's ledger."""
import collections
import random
import threading
import time

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import BackendUnavailable
from wsgi_taskqueue.testing_ha import wait_until

from .cluster import SECRET, Cluster

#: Queues per primary.
PER_PRIMARY = 2


@pytest.fixture
def cluster(tmp_path, cluster_url):
    cluster = Cluster(tmp_path, cluster_url)
    try:
        yield cluster
    finally:
        cluster.stop()


def spread_queues(redis_cluster, url: str, **settings) -> list[str]:
    """PER_PRIMARY queues on each primary, registered in this process;
    return their names."""
    names = redis_cluster.spread_names(PER_PRIMARY)
    for name in names:
        wsgi_taskqueue.register_queue(name, wsgi_taskqueue.RedisQueue(
            url=url, secrets=[SECRET], socket_timeout=2, **settings))
    return names


def start_workers(cluster, names, count=2, threads=2, **settings):
    """``count`` workers, each consuming every queue of ``names``."""
    extra = ''.join(f'{k} = {v}\n' for k, v in settings.items())
    workers = []
    for number in range(count):
        sections = ''.join(
            f'[taskqueue:{name}]\ntype = redis\nurl = $redis_url\n'
            f'secret = $secret\nsocket_timeout = 2\n{extra}\n'
            f'[taskqueue-server:w{number}-{name}]\nqueue = {name}\n'
            f'concurrent_limit = {threads}\nprefetch = 4\n'
            f'lease_timeout = 2\npoll_interval = 0.5\nstaged_grace = 10\n\n'
            for name in names)
        workers.append(cluster.worker(f'w{number}', sections=sections))
    return workers


def commit(names, tasks: int, rng) -> list[str]:
    """One transaction of ``tasks`` tasks over 1 to 3 of the queues."""
    queues = rng.sample(names, rng.randint(1, 3))
    with transaction.manager:
        return [taskqueue.add('/task', method='POST', payload=None,
                              queue=queues[n % len(queues)])
                for n in range(tasks)]


def summary(cluster, committed) -> tuple[collections.Counter, str]:
    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    lost = set(committed) - set(runs)
    twice = [task for task in committed if runs[task] > 1]
    return runs, (f'{len(committed)} committed, {len(runs)} ran, '
                  f'{len(lost)} never ran, {len(twice)} ran more than once')


def test_ten_thousand_tasks_over_six_queues_on_three_primaries(
        cluster, redis_cluster, cluster_url):
    names = spread_queues(redis_cluster, cluster_url)
    workers = start_workers(cluster, names)
    rng = random.Random(16)
    committed = []
    while len(committed) < 10_000:
        committed += commit(names, 10, rng)
    cluster.wait_until(lambda: cluster.ledger.ran_count() >= len(committed),
                       'every task to run', 120)
    runs, text = summary(cluster, committed)
    print(text)
    assert set(runs) == set(committed), text
    assert max(runs.values()) == 1, text
    by_queue = collections.Counter(
        queue for queue, *_ in cluster.ledger.query(
            'SELECT queue FROM seen'))
    assert sorted(by_queue) == sorted(names)
    assert {w.pid for w in workers} == cluster.ledger.pids_since(0)
    for name in names:
        counts = wsgi_taskqueue.get_queue(name).counts()
        assert counts['pending'] == counts['staged'] == 0, (name, counts)


class Committer:
    """A thread that commits transactions over the queues until stopped;
    counts what committed and what failed."""

    def __init__(self, names):
        self.names = names
        self.committed: list[str] = []
        self.failed: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join(60)

    def _run(self):
        rng = random.Random(17)
        while not self.done.is_set():
            queues = rng.sample(self.names, rng.randint(1, 3))
            ids = []
            try:
                with transaction.manager:
                    ids += [taskqueue.add('/task', method='POST',
                                          payload=None, queue=queue)
                            for queue in queues for _ in range(2)]
            except BackendUnavailable:
                self.failed += ids
            else:
                self.committed += ids
            time.sleep(0.002)


def test_a_busy_queues_slot_migrates_while_tasks_flow(
        cluster, redis_cluster, cluster_url):
    names = spread_queues(redis_cluster, cluster_url)
    start_workers(cluster, names)
    busy = wsgi_taskqueue.get_queue(names[0])
    source = redis_cluster.primary_of(names[0])
    target = redis_cluster.primary_of(names[-1])
    assert source is not target
    with Committer(names) as committer:
        cluster.wait_until(lambda: cluster.ledger.ran_count() >= 300,
                           'tasks to run before the resharding')
        steps = []

        def between():
            # Half migrated: commits, reserves and acknowledgements meet
            # ASK and TRYAGAIN for a while.
            steps.append(time.time())
            time.sleep(0.05)
        redis_cluster.move_slot(busy.route.slot, target, between=between)
        moved = len(committer.committed)
        cluster.wait_until(lambda: len(committer.committed) > moved + 300,
                           'commits after the resharding')
    assert redis_cluster.primary_of(names[0]) is target
    cluster.wait_until(
        lambda: set(committer.committed) <= {r[0] for r in
                                             cluster.ledger.runs()},
        'every committed task to run', 60, fail=False)
    runs, text = summary(cluster, committer.committed)
    text += (f'; {len(committer.failed)} failed commits; the slot moved in '
             f'{len(steps)} steps')
    print(text)
    assert set(committer.committed) <= set(runs), text
    assert not set(committer.failed) & set(runs), text
    assert busy.counts()['pending'] == 0


@pytest.mark.parametrize('min_replicas', [1, 0])
def test_kill_of_a_primary_under_load_fails_over(
        cluster, redis_cluster, cluster_url, min_replicas):
    """min_replicas = 1: every committed task runs, none of a failed
    commit does; the workers resume on the promoted replica.  The promoted
    replica has no replica of its own until the killed node is back (as
    its replica): until then, commits to its queues wait for WAIT in vain
    and fail.  min_replicas = 0: what the failover lost is printed."""
    names = spread_queues(redis_cluster, cluster_url,
                          min_replicas=min_replicas)
    workers = start_workers(cluster, names, min_replicas=min_replicas)
    victim = redis_cluster.primary_of(names[0])
    with Committer(names) as committer:
        cluster.wait_until(lambda: cluster.ledger.ran_count() >= 300,
                           'tasks to run before the kill')
        victim.kill()
        killed = time.time()
        cluster.wait_until(
            lambda: redis_cluster.primary_of(names[0]) is not victim,
            'a replica to take over', 30)
        victim.start()
        resumed = len(committer.committed)
        cluster.wait_until(lambda: len(committer.committed) > resumed + 300,
                           'commits after the failover', 60)

    def settled():
        return all(not (counts['pending'] or counts['staged']
                        or counts['processing'])
                   for counts in (wsgi_taskqueue.get_queue(name).counts()
                                  for name in names))
    if min_replicas:
        cluster.wait_until(
            lambda: set(committer.committed) <= {r[0] for r in
                                                 cluster.ledger.runs()},
            'every committed task to run', 60, fail=False)
    else:  # what the failover lost never runs: wait for the rest
        cluster.wait_until(settled, 'the queues to settle', 60)
    runs, text = summary(cluster, committer.committed)
    text += (f'; {len(committer.failed)} failed commits; min_replicas = '
             f'{min_replicas}')
    print(text)
    ran_since = {queue for queue, in cluster.ledger.query(
        'SELECT DISTINCT seen.queue FROM seen JOIN runs USING (task_id) '
        'WHERE runs.at > ?', killed)}
    assert names[0] in ran_since
    assert all(w.running for w in workers)
    if min_replicas:
        assert set(committer.committed) <= set(runs), text
        assert not set(committer.failed) & set(runs), text


def one_queue_per_primary(redis_cluster, url) -> list:
    names = redis_cluster.spread_names(1, prefix='f')
    for name in names:
        wsgi_taskqueue.register_queue(name, wsgi_taskqueue.RedisQueue(
            url=url, secrets=[SECRET], socket_timeout=2))
    return [wsgi_taskqueue.get_queue(name) for name in names]


def held_scripts(redis_cluster, port) -> list[int]:
    """IDs of this process's thread connections whose script the primary
    at ``port`` holds back (CLIENT PAUSE WRITE)."""
    return [int(client['id'])
            for client in redis_cluster.client(port).client_list()
            if client['name'] == 'wsgi-taskqueue-thread'
            and 'b' in client['flags']]


class HeldVote:
    """A transaction over one queue per primary whose vote is in flight,
    its stage scripts held back by every primary (CLIENT PAUSE WRITE)
    until ``release``; what its commit raised."""

    def __init__(self, redis_cluster, queues):
        self.redis_cluster = redis_cluster
        self.ports = [redis_cluster.primary_of(q.name).port for q in queues]
        self.queues = queues
        self.ids: list[str] = []
        self.error = None
        self.thread = threading.Thread(target=self._commit)

    def _commit(self):
        try:
            with transaction.manager:
                self.ids += [taskqueue.add('/task', method='POST',
                                           payload=None, queue=queue.name)
                             for queue in self.queues]
        except BackendUnavailable as exc:
            self.error = exc

    def __enter__(self):
        for port in self.ports:
            self.redis_cluster.client(port).client_pause(30_000, all=False)
        self.thread.start()
        wait_until(lambda: all(held_scripts(self.redis_cluster, port)
                               for port in self.ports),
                   'every primary to hold a stage back')
        return self

    def release(self, ports):
        for port in ports:
            self.redis_cluster.client(port).client_unpause()

    def __exit__(self, *exc_info):
        self.thread.join(30)


def test_a_stage_whose_reply_is_lost_on_one_primary_is_sent_again(
        redis_cluster, cluster_url):
    """The connection to one primary closes while the stages of a
    transaction over three slots are in flight (its reply is lost): that
    slot's stage is sent once more, and every task is queued once."""
    queues = one_queue_per_primary(redis_cluster, cluster_url)
    with HeldVote(redis_cluster, queues) as vote:
        lost = vote.ports[0]
        for connection in held_scripts(redis_cluster, lost):
            redis_cluster.client(lost).client_kill_filter(_id=connection)
        vote.release(vote.ports)
    assert vote.error is None
    for queue, task_id in zip(queues, vote.ids, strict=True):
        assert [queue.codec.decode(m).id
                for m in queue.reserve('w#1', 10, 0)] == [task_id]
        assert queue.counts()['staged'] == 0


def test_a_stage_that_fails_on_a_killed_primary_discards_on_the_others(
        redis_cluster, cluster_url):
    """kill -9 of one primary while the stages of a transaction over three
    slots are in flight: the vote says no, the abort discards what the
    other primaries staged, and none of its tasks is ever queued (G1),
    also once the replica took over."""
    queues = one_queue_per_primary(redis_cluster, cluster_url)
    victim = redis_cluster.primary_of(queues[0].name)
    try:
        with HeldVote(redis_cluster, queues) as vote:
            victim.kill()
            vote.release(vote.ports[1:])
        assert 'unavailable' in str(vote.error)
        for queue in queues[1:]:
            assert queue.counts() == {'pending': 0, 'delayed': 0, 'dead': 0,
                                      'staged': 0, 'processing': {}}
        wait_until(
            lambda: redis_cluster.primary_of(queues[0].name) is not victim,
            'a replica to take over', 30)
        wait_until(lambda: _readable(queues[0]),
                   'the promoted replica to answer')
        assert queues[0].counts()['staged'] == queues[0].counts()[
            'pending'] == 0
    finally:
        if victim.process is None:
            victim.start()
        redis_cluster.wait_settled()


def _readable(queue) -> bool:
    try:
        queue.counts()
    except BackendUnavailable:
        return False
    return True
