"""A Sentinel group fails over while requests commit tasks and workers run
them: SENTINEL FAILOVER (the old primary keeps running and is demoted),
and kill -9 of the primary.  The web process and the workers find the new
primary by themselves.

What holds depends on min_replicas (docs/scale.rst, "Failover"):

* min_replicas = 1: every committed task runs.  After kill -9, because
  the Sentinels promote the replica with the most data and every vote
  that said yes was on at least one replica.  After SENTINEL FAILOVER
  (the old primary keeps running until the Sentinels demote it), also
  because every process leaves the old primary when the Sentinel making
  the failover announces the replica it chose, before it promotes it.
* min_replicas = 0: what the failover loses is measured and printed, not
  asserted.
"""
import collections
import time

import pytest

from .cluster import Cluster
from .test_redis_outage import Burst, ran

#: Socket timeout of every process (QUEUE_DEFAULTS): a commit waits at most
#: twice this for a stage, plus half of it for the replicas (WAIT).
SOCKET_TIMEOUT = 2
#: Longer than a failover, so that no sweep promotes a batch whose vote
#: failed before its discard got through.
STAGED_GRACE = 10
#: Commits before the failover, and after it.
COMMITS = 30


@pytest.fixture
def cluster(tmp_path, sentinel_url):
    cluster = Cluster(tmp_path, sentinel_url)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize('event, min_replicas', [
    ('kill', 1), ('kill', 0), ('failover', 1), ('failover', 0)])
def test_failover_during_commits_and_consumption(
        cluster, sentinel_group, event, min_replicas):
    settings = {'min_replicas': min_replicas}
    cluster.web(**settings)
    workers = [cluster.worker(name, concurrent_limit=2, lease_timeout=2,
                              staged_grace=STAGED_GRACE,
                              queue_settings=settings)
               for name in ('w1', 'w2')]
    with Burst(cluster, work='0.005') as burst:
        cluster.wait_until(lambda: burst.count(200) >= COMMITS,
                           f'{COMMITS} commits')
        cluster.wait_until(lambda: cluster.ledger.pids_since(0) == {
            w.pid for w in workers}, 'both workers to run tasks')
        before = burst.count(200)
        started = time.monotonic()
        if event == 'kill':
            sentinel_group.kill_primary()
        else:
            sentinel_group.failover()
        cluster.wait_until(lambda: burst.count(200) >= before + COMMITS,
                           f'{COMMITS} commits after the failover', 60)
        resumed = time.monotonic() - started
        since = time.time()
        cluster.wait_until(lambda: cluster.ledger.pids_since(since) == {
            w.pid for w in workers}, 'both workers to run new tasks', 60)

    committed = burst.committed()
    failed = {name: cluster.ledger.added(name) for name in burst.failed()}
    if min_replicas:
        settled = cluster.wait_until(
            lambda: committed <= ran(cluster) and cluster.settled(),
            'every committed task to run (the assertions below say what is '
            'wrong)', STAGED_GRACE + 20, fail=False)
    else:  # what the failover lost never runs: wait for the rest
        cluster.wait_until(cluster.settled, 'the queue to settle',
                           STAGED_GRACE + 20)
    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    lost = sorted(committed - set(runs))
    summary = (f'{event}, min_replicas = {min_replicas}: '
               f'{len(burst.results)} requests, {burst.count(200)} committed '
               f'({len(committed)} tasks), {len(failed)} failed; commits '
               f'resumed {resumed:.1f}s after the event; {len(lost)} '
               f'committed task(s) never ran; slowest request '
               f'{burst.slowest:.2f}s; queue now: {cluster.counts()}')
    print(summary)
    assert burst.unanswered() == {}, summary
    # G6: 2 x socket_timeout for the stage, 1/2 for WAIT, and the margin
    # of a loaded two-core machine.
    assert burst.slowest < 3 * SOCKET_TIMEOUT + 1, summary
    assert cluster.ledger.committed() == committed, summary
    assert all(w.running for w in workers), cluster.report()
    if min_replicas:
        assert settled and lost == [], summary + '\n' + cluster.report()
        # G1: no task of a failed commit ran.
        phantoms = [task for tasks in failed.values() for task in tasks
                    if runs[task]]
        assert phantoms == [], summary
