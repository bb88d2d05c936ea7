"""Soak: many tasks, three workers, random kill -9s (G2, G5).

``WSGI_TASKQUEUE_SOAK_TASKS`` sets the number of tasks (default 10,000 on
Redis and PostgreSQL, 2,000 on SQLite and MariaDB, whose throughput would
make ``make test`` minutes longer for the same eight kills),
``WSGI_TASKQUEUE_SOAK_SEED`` the seed of the kill plan (default: random;
a failure message names the one used).
"""
import collections
import itertools
import os
import random
import re
import threading
import time
import uuid

from .cluster import WaitFailed
from .conftest import BACKENDS

pytestmark = BACKENDS

DEFAULT_TASKS = {'redis': 10000, 'postgresql': 10000, 'sqlite': 2000,
                 'mariadb': 2000}
PER_REQUEST = 100
CLIENTS = 4
KILLS = 8
#: Seconds of "work" per task (a sleep in the task view): enough that a
#: kill finds tasks in flight, little enough to keep the soak short.
WORK = 0.002
WORKER = {'concurrent_limit': 2, 'prefetch': 2, 'lease_timeout': 1,
          # Kills must not bury a task that was in flight at several of them.
          'max_deliveries': 20}


def enqueue_all(cluster, tasks: int, committed: list, errors: list) -> list:
    """Enqueue ``tasks`` tasks in requests of PER_REQUEST from CLIENTS
    threads, while the workers consume; return the threads."""
    requests_left = iter(range(tasks // PER_REQUEST))
    lock = threading.Lock()

    def client():
        while True:
            with lock:
                if next(requests_left, None) is None:
                    return
            try:
                response = cluster.enqueue(PER_REQUEST, name=uuid.uuid4().hex,
                                           timeout=60, work=WORK)
                response.raise_for_status()
            except Exception as exc:  # reported by the test
                errors.append(repr(exc))
            else:
                committed.extend(response.json()['tasks'])

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    return threads


def test_soak_with_random_kills(cluster, backend):
    tasks = int(os.environ.get('WSGI_TASKQUEUE_SOAK_TASKS',
                               DEFAULT_TASKS[backend]))
    # SQLite takes one writer at a time: on a loaded machine a live
    # worker's heartbeat may wait its turn longer than a second.
    worker = dict(WORKER, lease_timeout=5) if backend == 'sqlite' else WORKER
    seed = int(os.environ.get('WSGI_TASKQUEUE_SOAK_SEED',
                              random.randrange(10 ** 6)))
    plan = random.Random(seed)
    started = time.monotonic()
    cluster.web()
    names = (f'w{n}' for n in itertools.count(1))
    workers = {}
    for _ in range(3):
        name = next(names)
        workers[name] = cluster.worker(name, **worker)
    # One worker is never killed: its runs must be duplicate-free.
    witness = plan.choice(sorted(workers))
    committed, errors = [], []
    clients = enqueue_all(cluster, tasks, committed, errors)

    killed_pids = set()
    log = []
    # Spread over the run: one kill in each of KILLS slices of 5%..90%.
    thresholds = [0.05 + 0.85 * (n + plan.random()) / KILLS
                  for n in range(KILLS)]
    for number, fraction in enumerate(thresholds):
        cluster.wait_until(lambda f=fraction: cluster.ledger.ran_count() >=
                           f * tasks, f'{fraction:.0%} of the tasks '
                           f'to run (seed {seed})', 60)
        # Preferably one that is at work (a worker just started may not
        # have taken a task yet).
        working = cluster.ledger.pids_since(0)
        candidates = sorted(set(workers) - {witness})
        victim = plan.choice([name for name in candidates
                              if workers[name].pid in working] or candidates)
        process = workers.pop(victim)
        cluster.kill(process)
        killed_pids.add(process.pid)
        # The first victim's name never comes back: its tasks in flight
        # are recovered by the others' sweeps alone.
        same_name = number > 0 and plan.random() < 0.5
        if same_name:
            # The name is free once the dead process's lease lapsed.
            cluster.wait_until(lambda v=victim: cluster.lease_expired(v),
                               f"{victim}'s lease to lapse")
            name = victim
        else:
            name = next(names)
        workers[name] = cluster.worker(name, **worker)
        log.append(f'{time.monotonic() - started:.1f}s: killed {victim} '
                   f'(pid {process.pid}) at {fraction:.0%}, started {name}')

    for thread in clients:
        thread.join(60)
    assert errors == [], errors
    assert len(committed) == tasks
    expected = set(committed)

    def ran() -> set:
        return {run[0] for run in cluster.ledger.runs()}
    try:
        cluster.wait_until(lambda: cluster.ledger.ran_count() >= tasks and
                           expected <= ran() and cluster.settled(),
                           f'every task to run (seed {seed})', 60)
    except WaitFailed as exc:
        missing = expected - ran()
        raise WaitFailed(f'{len(missing)} tasks never ran (e.g. '
                         f'{sorted(missing)[:3]}); queue: {cluster.counts()}'
                         f'; kills: {log}\n{exc}') from None
    duration = time.monotonic() - started

    runs_by_task = collections.defaultdict(list)
    for task, _, pid in cluster.ledger.runs():
        runs_by_task[task].append(pid)
    duplicates = {task: pids for task, pids in runs_by_task.items()
                  if len(pids) > 1}
    on_survivors = {task: pids for task, pids in duplicates.items()
                    if not killed_pids & set(pids)}
    requeued = sum(int(match) for process in cluster.retired +
                   cluster.processes for match in re.findall(
                       r'requeued (\d+) task', process.output()))
    summary = (f'seed {seed}: {tasks} tasks, '
               f'{sum(map(len, runs_by_task.values()))} runs in '
               f'{duration:.1f}s; {requeued} requeued after kills; '
               f'{len(duplicates)} ran twice or more; kills: {log}')
    print(summary)
    assert set(runs_by_task) == expected, summary       # none lost, no phantom
    assert on_survivors == {}, summary                  # G5
    assert cluster.counts()['dead'] == 0, summary
    assert all(process.running for process in workers.values())
