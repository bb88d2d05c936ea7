"""kill -9 of the web process between the vote and the promotion (G2, G4).

The enqueue request asks the fault app to join CrashAfterVote, whose
tpc_finish SIGKILLs the web process: the tasks are staged in Redis (every
resource voted yes, the transaction is committed), but the after-commit
hook that promotes them never runs.  A consumer's sweep promotes the
orphaned batch once it is older than ``staged_grace``.
"""
import signal

import pytest
import requests

from .conftest import BACKENDS

pytestmark = BACKENDS

STAGED_GRACE = 2


def test_a_batch_staged_by_a_killed_web_process_is_promoted_by_the_sweep(
        cluster):
    cluster.web()
    worker = cluster.worker('w1', staged_grace=STAGED_GRACE)
    web = cluster.web_process
    cluster.retire(web)

    with pytest.raises(requests.ConnectionError):
        cluster.enqueue(count=3, crash='1')
    assert web.popen.wait(10) == -signal.SIGKILL, cluster.report()
    tasks = cluster.ledger.added()
    assert len(tasks) == 3
    # The after-commit hooks never ran: neither the promotion nor the
    # fault app's own record of the commit.
    assert cluster.ledger.committed() == set()

    cluster.wait_for_runs(tasks)
    cluster.wait_until(cluster.settled, 'a settled queue')

    runs = cluster.ledger.runs()
    # Once each, and in the order added (one consumer thread: G4).
    assert [run[0] for run in runs] == tasks
    assert {run[2] for run in runs} == {worker.pid}
    assert 'promoted staged batch' in worker.output(), cluster.report()
