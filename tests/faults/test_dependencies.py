"""Chains of tasks (``after=``) run by real worker processes: each step
runs after the one before it finished, and a step that dies
dead-letters the rest of its chain unrun."""
import transaction

from wsgi_taskqueue import taskqueue

from .conftest import BACKENDS

pytestmark = BACKENDS


def add(after=None, **params) -> str:
    return taskqueue.add('/task', method='POST', payload=None,
                         params=params, after=after)


def test_a_chain_runs_in_order_and_a_failure_dead_letters_the_rest(cluster):
    cluster.worker('w1', concurrent_limit=3)
    with transaction.manager:
        a = add(work='0.2')
        b = add(after=a)
        c = add(after=b, work='0.1')
        failing = add(fail='1')
        second = add(after=failing)
        third = add(after=second)
    cluster.wait_for_runs([a, b, c])
    cluster.wait_until(lambda: len(cluster.dead_letters()) == 3 and
                       cluster.settled(), 'three dead letters, settled')

    ran = [run[0] for run in cluster.ledger.runs()]
    assert ran == [a, b, c], cluster.report()
    assert cluster.ledger.seen(second) == cluster.ledger.seen(third) == []
    letters = {letter.task_id: letter for letter in cluster.dead_letters()}
    assert set(letters) == {failing, second, third}
    assert letters[second].error == (
        f'not run: the task it waited for, {failing}, is dead')
    assert letters[third].error == (
        f'not run: the task it waited for, {second}, is dead')
