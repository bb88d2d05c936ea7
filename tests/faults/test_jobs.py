"""A job of 1,000 tasks planned in 10 chunks by its own tasks, run by
worker processes that are killed (kill -9) at random: its on_complete
task runs once, with the final counts.

What the job counts: its 10 planners (each a task of the job, added by
the one before it, the first by the test) and the 1,000 tasks they add,
100 a chunk: 1,010 tasks, all done.  A planner run again after a kill
adds nothing new (every task it adds is named after its place in the
job), and the last one closes the job, which a second run of it may do
again.

``WSGI_TASKQUEUE_JOB_SEED`` sets the seed of the kill plan (default:
random; a failure names the one used).
"""
import itertools
import os
import random

import pytest
import transaction

from wsgi_taskqueue import taskqueue

pytestmark = pytest.mark.parametrize('backend', ['redis', 'postgresql'],
                                     indirect=True)

CHUNKS = 10
SIZE = 100
TOTAL = CHUNKS + CHUNKS * SIZE
KILLS = 4
WORKER = {'concurrent_limit': 2, 'lease_timeout': 1,
          # Kills must not bury a task that was in flight at several of them.
          'max_deliveries': 20,
          # A planner killed between its commit and the promotion of what
          # it added holds the job up until a sweep promotes that: soon.
          'staged_grace': 2}


def test_a_chunked_job_completes_once_across_worker_kills(cluster):
    seed = int(os.environ.get('WSGI_TASKQUEUE_JOB_SEED',
                              random.randrange(10 ** 6)))
    plan = random.Random(seed)
    names = (f'w{n}' for n in itertools.count(1))
    workers = {}
    for _ in range(2):
        name = next(names)
        workers[name] = cluster.worker(name, **WORKER)
    with transaction.manager:
        job = taskqueue.job(on_complete='/jobdone', label='chunked')
        taskqueue.add('/plan', method='POST', payload=None, job=job,
                      name=f'{job}-plan-0', params={
                          'chunk': 0, 'chunks': CHUNKS, 'size': SIZE})

    kills = []
    thresholds = sorted(0.05 + 0.85 * plan.random() for _ in range(KILLS))
    for fraction in thresholds:
        cluster.wait_until(
            lambda f=fraction: cluster.ledger.ran_count() >= f * TOTAL,
            f'{fraction:.0%} of the job to run (seed {seed})')
        victim = plan.choice(sorted(workers))
        process = workers.pop(victim)
        cluster.kill(process)
        kills.append(f'{victim} at {cluster.ledger.ran_count()} runs')
        name = next(names)
        workers[name] = cluster.worker(name, **WORKER)

    cluster.wait_until(lambda: cluster.ledger.completions()
                       and cluster.settled(),
                       f'the job to complete (seed {seed}, kills {kills})')
    # Settled: nothing is staged, pending, delayed or running, so no
    # second on_complete can come any more.
    assert cluster.ledger.completions() == [
        (job.job_id, str(TOTAL), str(TOTAL), '0')], (seed, kills)
    assert cluster.ledger.ran_count() == TOTAL, (seed, kills)
    status = taskqueue.job_status(job)
    assert (status['state'], status['total'], status['done'],
            status['failed'], status['pending'], status['label']) == (
        'complete', TOTAL, TOTAL, 0, 0, 'chunked'), (seed, kills)
