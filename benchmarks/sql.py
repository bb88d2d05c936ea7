"""SQL queues side by side: ours on PostgreSQL beside procrastinate and
pgqueuer, ours on SQLite beside huey's SQLite storage; one no-op job, one
worker thread.  (Oban's Python package is not among them: it needs Python
3.12 or later, and this project's machines have 3.11.)

    python benchmarks/sql.py [--jobs N] [--repeat K]

Starts a private PostgreSQL (initdb + pg_ctl, a free port) and uses a
temporary SQLite file; measures each system K times round-robin and prints
the median per metric with the ratio to the best peer of the same
database.  Exits 1 if a measurement failed or ran a job other than exactly
once.  See README.rst for what is measured.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import threading
import time

import sqlalchemy as sa
import transaction
import zope.sqlalchemy
from sqlalchemy import orm

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.sqltesting import PostgresServer

#: Latency samples per run, and the idle pause before each (so that each
#: job meets a waiting worker, not a busy one).
SAMPLES = 20
IDLE = 0.2


class Counter:
    """Counts job runs; ``wait(n)`` until n ran."""

    def __init__(self):
        self.count = 0
        #: perf_counter() of the last run's start.
        self.last = 0.0
        self._changed = threading.Condition()

    def hit(self):
        with self._changed:
            self.last = time.perf_counter()
            self.count += 1
            self._changed.notify_all()

    def wait(self, wanted: int, timeout: float = 600) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.count >= wanted,
                                          timeout):
                raise RuntimeError(f'{self.count} of {wanted} jobs ran')


def rate(jobs: int, seconds: float) -> float:
    return jobs / seconds


def drain_rate(counter: Counter, jobs: int, started: float) -> float:
    """Jobs per second from ``started`` until the last job ran (not until
    the worker noticed the queue is empty and stopped); RuntimeError
    unless exactly ``jobs`` ran."""
    if counter.count != jobs:
        raise RuntimeError(f'{counter.count} runs of {jobs} jobs')
    return rate(jobs, counter.last - started)


def latencies(counter: Counter, send) -> float:
    """The median, in ms, of SAMPLES times from calling ``send`` (which
    enqueues one job) to the job's start, a worker waiting idle."""
    samples = []
    for _ in range(SAMPLES):
        time.sleep(IDLE)  # the idle worker is the scenario measured
        before = counter.count
        started = time.perf_counter()
        send()
        counter.wait(before + 1)
        samples.append(counter.last - started)
    return statistics.median(samples) * 1000


class Ours:
    """Our SQL queue on ``url``: tasks are POSTs to a no-op WSGI app."""

    def __init__(self, url: str):
        self.url = url
        self.counter = Counter()
        self.engine = sa.create_engine(url)
        self.rows = sa.Table('bench_rows', sa.MetaData(),
                             sa.Column('id', sa.Integer, primary_key=True),
                             sa.Column('job', sa.Integer))
        self.rows.metadata.create_all(self.engine)
        self.session = orm.scoped_session(orm.sessionmaker(bind=self.engine))
        zope.sqlalchemy.register(self.session)

    def app(self, environ, start_response):
        self.counter.hit()
        start_response('200 OK', [])
        return [b'']

    def fresh(self) -> None:
        for name in wsgi_taskqueue.registry.queue_names():
            wsgi_taskqueue.unregister_queue(name).close()
        queue = wsgi_taskqueue.SqlQueue(url=self.url, status_ttl=3600)
        queue.store.init()
        queue.reset()
        wsgi_taskqueue.register_queue('default', queue)
        self.queue = queue
        self.counter = Counter()

    def enqueue(self, jobs: int, per_transaction: int = 1,
                with_row: bool = False) -> float:
        self.fresh()
        started = time.perf_counter()
        for first in range(0, jobs, per_transaction):
            with transaction.manager:
                for job in range(first, min(first + per_transaction, jobs)):
                    if with_row:
                        self.session().execute(self.rows.insert().values(
                            job=job))
                        zope.sqlalchemy.mark_changed(self.session())
                    taskqueue.add('/noop', method='POST', payload=None)
        return rate(jobs, time.perf_counter() - started)

    def drain(self, jobs: int, prefetch: int = 1) -> float:
        self.enqueue(jobs, per_transaction=100)
        consumer = wsgi_taskqueue.Consumer(self.app, name='bench',
                                           poll_interval=0.2,
                                           prefetch=prefetch)
        started = time.perf_counter()
        consumer.start()
        self.counter.wait(jobs)
        consumer.stop(10)
        return drain_rate(self.counter, jobs, started)

    def latency(self) -> float:
        self.fresh()
        consumer = wsgi_taskqueue.Consumer(self.app, name='bench')
        consumer.start()

        def send():
            with transaction.manager:
                taskqueue.add('/noop', method='POST', payload=None)
        try:
            return latencies(self.counter, send)
        finally:
            consumer.stop(10)

    def measure(self, jobs: int) -> dict:
        return {'enqueue': self.enqueue(jobs),
                'enqueue txn100': self.enqueue(jobs, 100),
                'enqueue with row': self.enqueue(jobs, with_row=True),
                'drain': self.drain(jobs),
                # Ten tasks per reserve, as pgqueuer fetches by default.
                'drain prefetch 10': self.drain(jobs, prefetch=10),
                'latency p50 ms': self.latency()}


class Procrastinate:
    """procrastinate 3 with its psycopg connector; its worker at
    concurrency 1 (``wait=False``: it stops once the queue is empty)."""

    def __init__(self, url: str):
        import procrastinate
        self.conninfo = sa.engine.make_url(url).set(
            drivername='postgresql').render_as_string(hide_password=False)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=self.conninfo))
        self.counter = Counter()

        @self.app.task(name='noop')
        def noop():
            self.counter.hit()
        self.noop = noop
        with self.app.open():
            self.app.schema_manager.apply_schema()

    def fresh(self) -> None:
        import psycopg
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute('DELETE FROM procrastinate_events')
            connection.execute('DELETE FROM procrastinate_jobs')
        self.counter = Counter()

    def enqueue(self, jobs: int, per_transaction: int = 1) -> float:
        self.fresh()
        with self.app.open():
            started = time.perf_counter()
            if per_transaction == 1:
                for _ in range(jobs):
                    self.noop.defer()
            else:
                for first in range(0, jobs, per_transaction):
                    self.noop.batch_defer(
                        *[{}] * min(per_transaction, jobs - first))
            return rate(jobs, time.perf_counter() - started)

    def drain(self, jobs: int) -> float:
        self.enqueue(jobs, 100)

        async def work():
            async with self.app.open_async():
                await self.app.run_worker_async(
                    concurrency=1, wait=False, install_signal_handlers=False,
                    delete_jobs='always')
        started = time.perf_counter()
        asyncio.run(work())
        return drain_rate(self.counter, jobs, started)

    def latency(self) -> float:
        self.fresh()
        loop = asyncio.new_event_loop()

        async def work():
            async with self.app.open_async():
                await self.app.run_worker_async(
                    concurrency=1, install_signal_handlers=False,
                    delete_jobs='always')
        worker = loop.create_task(work())

        def run():
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(worker)
            loop.close()
        thread = threading.Thread(target=run)
        thread.start()
        # The worker's app has its pool on the worker's loop: jobs are
        # deferred through an app of their own, as a web process would.
        import procrastinate
        sender = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(
                conninfo=self.conninfo))
        try:
            with sender.open():
                return latencies(self.counter, sender.configure_task(
                    name='noop').defer)
        finally:
            loop.call_soon_threadsafe(worker.cancel)
            thread.join(10)

    def measure(self, jobs: int) -> dict:
        return {'enqueue': self.enqueue(jobs),
                'enqueue txn100': self.enqueue(jobs, 100),
                'drain': self.drain(jobs), 'latency p50 ms': self.latency()}


class Pgqueuer:
    """pgqueuer with psycopg: its sync enqueue on an autocommit connection
    (in an explicit transaction when a row goes with the job), its
    ``QueueManager`` in one event loop (its default batch of 10)."""

    def __init__(self, url: str):
        import psycopg
        from pgqueuer import PsycopgDriver, Queries
        self.conninfo = sa.engine.make_url(url).set(
            drivername='postgresql').render_as_string(hide_password=False)
        self.counter = Counter()
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute('CREATE TABLE IF NOT EXISTS pgq_bench_rows '
                               '(id serial PRIMARY KEY, job integer)')

        async def install():
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True)
            async with connection:
                queries = Queries(PsycopgDriver(connection))
                if not await queries.schema_is_installed():
                    await queries.install()
        asyncio.run(install())

    def fresh(self) -> None:
        import psycopg
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute('TRUNCATE pgqueuer, pgqueuer_log, '
                               'pgq_bench_rows')
        self.counter = Counter()

    def enqueue(self, jobs: int, per_transaction: int = 1,
                with_row: bool = False) -> float:
        import psycopg
        from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries
        self.fresh()
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            queries = SyncQueries(SyncPsycopgDriver(connection))
            started = time.perf_counter()
            for first in range(0, jobs, per_transaction):
                count = min(per_transaction, jobs - first)
                with connection.transaction():
                    if with_row:
                        connection.execute('INSERT INTO pgq_bench_rows (job) '
                                           'VALUES (%s)', (first,))
                    if count == 1:
                        queries.enqueue('noop', None)
                    else:
                        queries.enqueue(['noop'] * count, [None] * count,
                                        [0] * count)
            return rate(jobs, time.perf_counter() - started)

    def _manager(self, connection):
        from pgqueuer import PsycopgDriver, Queries, QueueManager
        manager = QueueManager(Queries(PsycopgDriver(connection)))

        @manager.entrypoint('noop')
        async def noop(job):
            self.counter.hit()
        return manager

    def drain(self, jobs: int) -> float:
        import psycopg
        from pgqueuer.domain.types import QueueExecutionMode
        self.enqueue(jobs, 100)

        async def work():
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True)
            async with connection:
                await self._manager(connection).run(
                    mode=QueueExecutionMode.drain)
        started = time.perf_counter()
        asyncio.run(work())
        return drain_rate(self.counter, jobs, started)

    def latency(self) -> float:
        import psycopg
        from pgqueuer.adapters.drivers.psycopg import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries
        self.fresh()
        loop = asyncio.new_event_loop()
        running = threading.Event()
        managers = []

        async def work():
            connection = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True)
            async with connection:
                managers.append(self._manager(connection))
                loop.call_later(0.5, running.set)
                await managers[0].run()
        thread = threading.Thread(target=lambda: loop.run_until_complete(
            work()))
        thread.start()
        running.wait(30)
        try:
            with psycopg.connect(self.conninfo,
                                 autocommit=True) as connection:
                queries = SyncQueries(SyncPsycopgDriver(connection))
                return latencies(self.counter,
                                 lambda: queries.enqueue('noop', None))
        finally:
            loop.call_soon_threadsafe(managers[0].shutdown.set)
            thread.join(30)
            loop.close()

    def measure(self, jobs: int) -> dict:
        return {'enqueue': self.enqueue(jobs),
                'enqueue txn100': self.enqueue(jobs, 100),
                'enqueue with row': self.enqueue(jobs, with_row=True),
                'drain': self.drain(jobs), 'latency p50 ms': self.latency()}


class HueySqlite:
    """huey's SqliteHuey, a thread worker (huey has no transactions)."""

    def __init__(self, path: str):
        from huey import SqliteHuey
        self.huey = SqliteHuey(filename=path)
        self.counter = Counter()

        @self.huey.task()
        def noop():
            self.counter.hit()
        self.noop = noop

    def fresh(self) -> None:
        self.huey.flush()
        self.counter = Counter()

    def enqueue(self, jobs: int) -> float:
        self.fresh()
        started = time.perf_counter()
        for _ in range(jobs):
            self.noop()
        return rate(jobs, time.perf_counter() - started)

    def drain(self, jobs: int) -> float:
        self.enqueue(jobs)
        consumer = self.huey.create_consumer(
            workers=1, worker_type='thread', periodic=False,
            initial_delay=0.01, check_worker_health=False)
        started = time.perf_counter()
        consumer.start()
        self.counter.wait(jobs)
        seconds = time.perf_counter() - started
        consumer.stop(graceful=True)
        if self.counter.count != jobs:
            raise RuntimeError(f'{self.counter.count} runs of {jobs} jobs')
        return rate(jobs, seconds)

    def latency(self) -> float:
        self.fresh()
        consumer = self.huey.create_consumer(
            workers=1, worker_type='thread', periodic=False,
            initial_delay=0.01, check_worker_health=False)
        consumer.start()
        try:
            return latencies(self.counter, self.noop)
        finally:
            consumer.stop(graceful=True)

    def measure(self, jobs: int) -> dict:
        return {'enqueue': self.enqueue(jobs), 'drain': self.drain(jobs),
                'latency p50 ms': self.latency()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jobs', type=int, default=2000)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix='bench-sql-')
    with PostgresServer() as server:
        systems = {
            'postgresql': {'ours': Ours(server.url),
                           'procrastinate': Procrastinate(server.url),
                           'pgqueuer': Pgqueuer(server.url)},
            'sqlite': {'ours': Ours(f'sqlite:///{directory}/ours.db'),
                       'huey': HueySqlite(f'{directory}/huey.db')},
        }
        results: dict = {}
        failed = False
        for _ in range(args.repeat):
            for database, peers in systems.items():
                for name, system in peers.items():
                    try:
                        measured = system.measure(args.jobs)
                    except Exception as exc:  # reported, then exit 1
                        print(f'{database} {name}: failed: {exc!r}',
                              file=sys.stderr)
                        failed = True
                        continue
                    for metric, value in measured.items():
                        results.setdefault((database, metric), {}).setdefault(
                            name, []).append(value)
        print_table(results, args)
    return 1 if failed else 0


def print_table(results: dict, args) -> None:
    print(f'{args.jobs} jobs per run, median of {args.repeat} runs: jobs '
          f'per second, or milliseconds (less is better) for the latency; '
          f'ratio: ours / best peer')
    for (database, metric), by_system in sorted(results.items()):
        medians = {name: statistics.median(values)
                   for name, values in by_system.items()}
        peers = [value for name, value in medians.items() if name != 'ours']
        best = min if 'ms' in metric else max
        line = '  '.join(f'{name} {value:9.1f}'
                         for name, value in sorted(medians.items()))
        ratio = (f'  ratio {medians["ours"] / best(peers):.2f}'
                 if peers and 'ours' in medians else '')
        print(f'{database:10} {metric:17} {line}{ratio}')


if __name__ == '__main__':
    sys.exit(main())
