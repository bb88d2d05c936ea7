"""kill -9 of a worker in the middle of a task (G2, G5).

The task blocks until the test raises its flag, so the kill surely lands
while it runs; the flag is raised after the kill, so the redelivery can
finish.  "Exactly once more" is shown by one recorded run and a settled
queue (nothing staged, pending, delayed or in flight), after which nothing
can run it again.
"""
import signal

from .conftest import BACKENDS

pytestmark = BACKENDS


def test_a_killed_workers_task_runs_once_more_after_another_ones_sweep(
        cluster):
    workers = {name: cluster.worker(name) for name in ('w1', 'w2')}
    [task] = cluster.add(block='go')
    [(_, _, pid)] = cluster.wait_for_start(task)
    [victim] = [name for name, p in workers.items() if p.pid == pid]
    [survivor] = [name for name in workers if name != victim]

    cluster.kill(workers[victim])
    cluster.raise_flag('go')
    cluster.wait_for_runs([task])
    cluster.wait_until(cluster.settled, 'a settled queue')

    assert cluster.ledger.runs(task) == [(task, 1, workers[survivor].pid)]
    assert [start[2] for start in cluster.ledger.starts(task)] == [
        workers[victim].pid, workers[survivor].pid]
    assert (f'requeued 1 task(s) of gone consumer(s) {victim}'
            in workers[survivor].output()), cluster.report()


def test_a_killed_workers_task_runs_once_more_when_it_restarts(cluster):
    first = cluster.worker('w1')
    [task] = cluster.add(block='go')
    cluster.wait_for_start(task)

    cluster.kill(first)
    cluster.raise_flag('go')
    # Nobody else consumes: the task waits in the dead worker's list.
    assert cluster.counts()['processing'] == {'w1': 1}
    # Its name is free once the dead process's lease lapsed (a second
    # process under the name is refused before: see test_worker_process).
    cluster.wait_until(lambda: cluster.lease_expired('w1'),
                       "the dead w1's lease to lapse")
    again = cluster.worker('w1')
    cluster.wait_for_runs([task])
    cluster.wait_until(cluster.settled, 'a settled queue')

    assert cluster.ledger.runs(task) == [(task, 1, again.pid)]
    assert [start[2] for start in cluster.ledger.starts(task)] == [
        first.pid, again.pid]
    assert 'requeued 1 task(s) its previous run left in flight' in \
        again.output(), cluster.report()


def test_a_task_that_keeps_killing_its_worker_is_dead_lettered(cluster):
    """The poison pill: after ``max_deliveries`` deliveries that never
    finished, the task goes to the dead letters and the worker lives."""
    settings = {'max_deliveries': 2}
    worker = cluster.worker('w1', **settings)
    [pill] = cluster.add(die='1')
    for delivery in (1, 2):
        cluster.wait_for_start(pill, delivery)
        status = cluster.wait_for_exit(worker)
        assert status == -signal.SIGKILL, cluster.report()
        cluster.wait_until(lambda: cluster.lease_expired('w1'),
                           "the dead w1's lease to lapse")
        # The second worker takes the pill at once and dies: no waiting
        # for it to report that it runs.
        worker = cluster.worker('w1', wait=delivery == 2, **settings)
    [task] = cluster.add()
    cluster.wait_for_runs([task])

    assert len(cluster.ledger.starts(pill)) == 2
    assert cluster.ledger.runs(pill) == []
    [letter] = cluster.dead_letters()
    assert letter.task_id == pill
    assert 'delivered 2 times without finishing' in letter.error
    assert worker.running
