"""Completion callbacks across a kill -9 of the worker between the end of
a task and its acknowledgement: the callback comes with the settlement
of the run that is acknowledged, once per outcome, never from the run
that was not."""
import signal

import transaction

from wsgi_taskqueue import taskqueue

from .conftest import BACKENDS

pytestmark = BACKENDS


def add_with_callbacks(**params) -> str:
    with transaction.manager:
        return taskqueue.add('/task', method='POST', payload=None,
                             params=params, on_success='/callback',
                             on_failure='/callback')


def test_callbacks_come_once_though_the_worker_died_before_settling(
        cluster):
    succeeding = add_with_callbacks(die_after='1')
    failing = add_with_callbacks(die_after='1', fail='1')
    # Each task kills its worker once, after it ended, before it was
    # settled; a worker started again under the name runs it again.  A
    # worker that takes a task at once may die before it reports that it
    # runs: only the last, which nothing kills, is waited for.
    worker = cluster.worker('w1', wait=False)
    for death in (1, 2):
        assert cluster.wait_for_exit(worker) == -signal.SIGKILL, \
            cluster.report()
        cluster.wait_until(lambda: cluster.lease_expired('w1'),
                           "the dead w1's lease to lapse")
        worker = cluster.worker('w1', wait=death == 2)
    cluster.wait_until(lambda: len(cluster.ledger.callbacks()) >= 2
                       and cluster.settled(), 'both callbacks, settled')

    assert sorted(cluster.ledger.callbacks()) == sorted([
        (succeeding, 'done', '200 OK', None),
        (failing, 'dead', '400 Bad Request', None)]), cluster.report()
    assert [run[0] for run in cluster.ledger.runs(succeeding)] == [
        succeeding, succeeding]
    assert len(cluster.ledger.starts(failing)) == 2
    [letter] = cluster.dead_letters()
    assert letter.task_id == failing
