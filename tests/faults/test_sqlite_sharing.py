"""Two workers and a web process on one SQLite file, under load: every
writer waits its turn (BEGIN IMMEDIATE), so no request meets "database is
locked", and no task is lost or run twice."""
import collections

import pytest

from .test_redis_outage import Burst

pytestmark = pytest.mark.parametrize('backend', ['sqlite'], indirect=True)

COMMITS = 150


def test_two_workers_and_a_web_process_share_one_sqlite_file(cluster):
    cluster.web()
    # No consumer dies here: a lease long enough for a loaded machine
    # (the fault tests' one second is for tests that kill).
    workers = [cluster.worker(name, concurrent_limit=2, prefetch=2,
                              lease_timeout=10)
               for name in ('w1', 'w2')]
    with Burst(cluster, clients=6, work='0.002') as burst:
        cluster.wait_until(lambda: burst.count(200) >= COMMITS,
                           f'{COMMITS} commits', 120)
    committed = burst.committed()
    cluster.wait_until(
        lambda: committed <= {run[0] for run in cluster.ledger.runs()}
        and cluster.settled(), 'every committed task to run', 60)

    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    assert burst.unanswered() == {}
    assert burst.failed() == [], cluster.report()
    assert set(runs) == committed
    assert set(runs.values()) == {1}
    assert {run[2] for run in cluster.ledger.runs()} == {
        worker.pid for worker in workers}
    for process in [cluster.web_process, *workers]:
        assert 'database is locked' not in process.output()
