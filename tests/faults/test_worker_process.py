"""The worker process: one name, one live process (G5); signals."""
import signal
import time

from .conftest import BACKENDS

pytestmark = BACKENDS

#: A bounded observation window, to show that something does NOT happen
#: (a paused worker takes no task, a stopping one does not exit while its
#: task runs): several poll intervals and heartbeats long.
QUIET_WINDOW = 1.5


def test_a_second_worker_under_a_name_in_use_exits_and_the_first_works_on(
        cluster):
    first = cluster.worker('w1')
    [task] = cluster.add(block='go')
    cluster.wait_for_start(task)

    second = cluster.worker('w1', wait=False)
    status = cluster.wait_for_exit(second)
    assert status != 0, cluster.report()
    assert "consumer name 'w1'" in second.output(), cluster.report()
    assert 'in use' in second.output(), cluster.report()

    # The refused process left the first one's task in flight alone...
    assert cluster.counts()['processing'] == {'w1': 1}
    cluster.raise_flag('go')
    [later] = cluster.add()
    cluster.wait_for_runs([task, later])
    cluster.wait_until(cluster.settled, 'a settled queue')
    # ...and the first one finished it and goes on working.
    assert cluster.ledger.runs() == [(task, 1, first.pid),
                                     (later, 1, first.pid)]
    assert first.running


def test_sigterm_lets_the_task_in_flight_finish_before_the_worker_exits(
        cluster):
    worker = cluster.worker('w1', stop_timeout=20)
    [task] = cluster.add(block='go')
    cluster.wait_for_start(task)

    cluster.retire(worker)
    worker.signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(QUIET_WINDOW)  # observation window: it waits for its task
    assert worker.running, cluster.report()
    assert cluster.ledger.runs(task) == []

    cluster.raise_flag('go')
    assert cluster.wait_for_exit(worker, 20) == 0, cluster.report()
    assert time.monotonic() - signalled < 20
    assert cluster.ledger.runs(task) == [(task, 1, worker.pid)]
    # Acknowledged before the exit: nothing left to redeliver.
    assert cluster.settled(), cluster.counts()
    assert 'worker stopped: SIGTERM' in worker.output()


def test_sigterm_gives_up_after_stop_timeout_and_the_task_is_redelivered(
        cluster):
    worker = cluster.worker('w1', stop_timeout=0.5)
    [task] = cluster.add(block='go')
    cluster.wait_for_start(task)

    cluster.retire(worker)
    worker.signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert cluster.wait_for_exit(worker, 20) == 0, cluster.report()
    waited = time.monotonic() - signalled
    assert 0.5 <= waited < 10, waited
    assert 'stopped with tasks still in flight' in worker.output()
    assert cluster.counts()['processing'] == {'w1': 1}

    cluster.raise_flag('go')
    cluster.wait_until(lambda: cluster.lease_expired('w1'),
                       "the stopped w1's lease to lapse")
    again = cluster.worker('w1')
    cluster.wait_for_runs([task])
    assert cluster.ledger.runs(task) == [(task, 1, again.pid)]


def test_sigusr2_pauses_a_worker_and_sigcont_resumes_it(cluster):
    worker = cluster.worker('w1', concurrent_limit=2)
    [first] = cluster.add(block='go')
    cluster.wait_for_start(first)

    worker.signal(signal.SIGUSR2)
    cluster.wait_for_output(worker, 'consumers paused', 'the pause')
    [second] = cluster.add()
    # The task in flight finishes...
    cluster.raise_flag('go')
    cluster.wait_for_runs([first])
    # ...but nothing new is taken while paused.
    time.sleep(QUIET_WINDOW)  # observation window
    assert cluster.ledger.runs(second) == []
    assert cluster.counts()['pending'] == 1

    worker.signal(signal.SIGCONT)
    cluster.wait_for_runs([second])
    assert cluster.ledger.runs() == [(first, 1, worker.pid),
                                     (second, 1, worker.pid)]
    assert worker.running
