"""Redis (or PostgreSQL, or MariaDB) goes away during commits and during
consumption (G1, G2, G6), and comes back; a worker waits for it without
burning CPU."""
import collections
import threading
import time
import uuid

import pytest
import requests

from .cluster import cpu_seconds

pytestmark = [
    pytest.mark.parametrize(
        'backend', ['redis', 'postgresql', 'mariadb'], indirect=True),
    # The tests stop the server: the cluster's queue must be on the
    # process's own (postgresql_url, mariadb_url), never on the run's
    # shared one.
    pytest.mark.usefixtures('postgresql_server', 'mariadb_server'),
]


@pytest.fixture
def queue_server(backend, request):
    """The server of the cluster's queue, which the tests stop and start."""
    return request.getfixturevalue(f'{backend}_server')

#: How long Redis stays down in each outage: a scenario parameter, well
#: below staged_grace (a staged batch must not be promoted by a sweep while
#: its web process could still discard it), and long enough for several
#: requests to fail and for the consumers' backoff to start.
OUTAGE = 1.0
STAGED_GRACE = 5
#: Commits between the outages.
COMMITS_BETWEEN = 20
UNAVAILABLE = 'queue backend unavailable'
#: What a worker logs when its threads wait for a lease the heartbeat
#: could not renew (it touches the backend no more until it does).
LAPSED = 'its lease may have run out'


class Burst:
    """Client threads that send enqueue requests until stopped; every
    other request has a second transaction resource, the others have
    none: both shapes of transaction."""

    def __init__(self, cluster, clients: int = 4, **params):
        self.cluster = cluster
        self.params = params
        #: name -> (status or None, task ids or None, error or None)
        self.results: dict[str, tuple] = {}
        #: The names of the requests with a second resource.
        self.joined: set[str] = set()
        #: The longest a request took.
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,),
                                         daemon=True)
                        for n in range(clients)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        for thread in self.threads:
            thread.join(60)

    def _client(self, number: int) -> None:
        sent = 0
        while not self.done.is_set():
            name = uuid.uuid4().hex
            join = '1' if (number + sent) % 2 else '0'
            sent += 1
            if join == '1':
                with self.lock:
                    self.joined.add(name)
            started = time.monotonic()
            try:
                response = self.cluster.enqueue(
                    count=3, name=name, join=join, **self.params)
            except requests.RequestException as exc:
                result = (None, None, repr(exc))
            else:
                result = (response.status_code,
                          response.json()['tasks']
                          if response.status_code == 200 else None, None)
            with self.lock:
                self.results[name] = result
                self.slowest = max(self.slowest, time.monotonic() - started)

    def count(self, status: int) -> int:
        with self.lock:
            return sum(1 for result in self.results.values()
                       if result[0] == status)

    def committed(self) -> set[str]:
        with self.lock:
            return {task for status, tasks, _ in self.results.values()
                    if status == 200 for task in tasks}

    def failed(self) -> list[str]:
        with self.lock:
            return [name for name, (status, _, _) in self.results.items()
                    if status is not None and status != 200]

    def unanswered(self) -> dict[str, str]:
        with self.lock:
            return {name: error for name, (status, _, error)
                    in self.results.items() if status is None}


def noticed_outages(worker) -> int:
    """How often ``worker`` logged that it cannot go on: the backend
    unavailable, or its threads waiting for a lapsed lease (which the
    heartbeat, still in the outage it reported before, does not report
    again)."""
    output = worker.output()
    return output.count(UNAVAILABLE) + output.count(LAPSED)


def test_redis_stopped_and_killed_during_commits_and_consumption(
        cluster, queue_server):
    """Four clients commit tasks without pause, two workers run them;
    Redis is stopped (SIGTERM), started, killed (SIGKILL), started, each
    time for OUTAGE seconds.  Every request that answered 200 must have
    its tasks run exactly once, no task of a request that failed may run,
    no request may hang.

    Commands in flight when Redis goes away may be applied without their
    reply reaching the client: test_lost_replies makes each such case
    happen on cue; this test meets them by chance.
    """
    cluster.web()
    workers = [cluster.worker(name, concurrent_limit=2, lease_timeout=2,
                              staged_grace=STAGED_GRACE)
               for name in ('w1', 'w2')]

    def outage(stop) -> None:
        """Stop Redis while requests and tasks flow; start it again."""
        commits, failures = burst.count(200), burst.count(500)
        since = time.time()
        cluster.wait_until(lambda: burst.count(200) >= commits +
                           COMMITS_BETWEEN, f'{COMMITS_BETWEEN} commits')
        cluster.wait_until(lambda: cluster.ledger.pids_since(since) == {
            w.pid for w in workers}, 'both workers to run tasks')
        noticed = [noticed_outages(w) for w in workers]
        stop()
        down = time.monotonic()
        cluster.wait_until(lambda: burst.count(500) > failures,
                           'failed commits')
        cluster.wait_until(
            lambda: all(noticed_outages(w) > n
                        for w, n in zip(workers, noticed, strict=True)),
            'both workers to notice')
        time.sleep(max(0.0, down + OUTAGE - time.monotonic()))  # OUTAGE
        queue_server.start()

    with Burst(cluster, work='0.005') as burst:
        outage(queue_server.stop)   # a clean shutdown (SIGTERM)
        outage(queue_server.kill)   # a crash; Redis's AOF fsyncs always
        cluster.wait_until(lambda: burst.count(200) >= COMMITS_BETWEEN * 3,
                           'commits after the outages')

    committed = burst.committed()
    failed = {name: cluster.ledger.added(name) for name in burst.failed()}
    cluster.wait_until(
        lambda: committed <= ran(cluster) and cluster.settled(),
        'every committed task to run and the queue to settle (the '
        'assertions below say what is wrong)',
        STAGED_GRACE + 15, fail=False)

    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    summary = (f'{len(burst.results)} requests: {burst.count(200)} '
               f'committed ({len(committed)} tasks), {len(failed)} failed '
               f'({sum(map(len, failed.values()))} tasks); '
               f'{sum(runs.values())} runs; queue now: {cluster.counts()}; '
               f'slowest request {burst.slowest:.2f}s')
    print(summary)
    assert burst.unanswered() == {}, summary
    # G6: a request meeting a dead Redis fails fast (socket_timeout = 2).
    assert burst.slowest < 5, summary
    assert burst.count(500) == len(failed) > 0, summary
    # The fault app's after-commit hook agrees with the HTTP answers.
    assert cluster.ledger.committed() == committed, summary
    # G2, and exactly once: no consumer died.  G1: nothing of a failed
    # request ran.
    anomalies = {
        'committed, never ran': sorted(committed - set(runs)),
        'committed, ran more than once': sorted(
            task for task in committed if runs[task] > 1),
        'failed, ran anyway (tasks alone in their transaction)': sorted(
            task for name, tasks in failed.items()
            if name not in burst.joined for task in tasks if runs[task]),
        'failed, ran anyway (tasks beside another resource)': sorted(
            task for name, tasks in failed.items()
            if name in burst.joined for task in tasks if runs[task]),
        'ran, never added': sorted(set(runs) - committed - {
            task for tasks in failed.values() for task in tasks}),
    }
    anomalies = {k: v for k, v in anomalies.items() if v}
    assert anomalies == {}, (
        f'{summary}\n' + ''.join(f'{kind}: {len(tasks)} task(s), e.g. '
                                 f'{tasks[:3]}\n'
                                 for kind, tasks in anomalies.items())
        + cluster.report())
    assert all(w.running for w in workers)


def ran(cluster) -> set[str]:
    return {run[0] for run in cluster.ledger.runs()}


def test_a_worker_waits_idly_while_redis_is_down_and_resumes(
        cluster, queue_server):
    worker = cluster.worker('w1', concurrent_limit=2)
    cluster.wait_for_runs(cluster.add())
    noticed = worker.output().count(UNAVAILABLE)

    queue_server.stop()
    cluster.wait_until(lambda: worker.output().count(UNAVAILABLE) > noticed,
                       'the worker to notice')
    before = cpu_seconds(worker.pid)
    started = time.monotonic()
    time.sleep(3)  # the outage whose CPU cost is measured
    used = cpu_seconds(worker.pid) - before
    down = time.monotonic() - started
    queue_server.start()
    restarted = time.monotonic()
    [task] = cluster.add()
    cluster.wait_for_runs([task])
    resumed = time.monotonic() - restarted

    print(f'worker used {used:.2f} CPU-s in {down:.1f}s without Redis; '
          f'ran a new task {resumed:.1f}s after Redis was back')
    assert used < 0.5, (used, cluster.report())
    assert cluster.ledger.runs(task) == [(task, 1, worker.pid)]
    assert 'queue backend is back' in worker.output()
