"""Instructions of our client per 1-task transaction and per drained task.

    python benchmarks/instructions.py [--small N] [--large M]

Times on a shared machine are noisy; instruction counts are not.  Runs,
under ``valgrind --tool=callgrind``, a Python process that against a
private ``redis-server`` either commits transactions of one task
(``taskqueue.add('/job', params=...)`` in a ``transaction``, signed, as
the benchmark's ``ours`` row does) or drains such tasks with the real
``Consumer`` in the same process (one thread, the default ``prefetch``,
dispatching into :mod:`systems.ours_app`); each with N and with M of them,
so that start-up cancels out of (count(M) - count(N)) / (M - N).  Only our
side is counted, not Redis's (``INFO commandstats`` is the benchmark's).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile

from wsgi_taskqueue.testing import RedisServer

HERE = os.path.dirname(os.path.abspath(__file__))
#: Peers whose enqueue can be counted the same way, for comparison.
PEERS = ('huey', 'huey_after_commit')


def workload(what: str, n: int, url: str, prefetch: str) -> None:
    """Run in the measured process: ``n`` commits, or a drain of ``n``."""
    import threading

    import transaction

    import wsgi_taskqueue

    from systems import probe, server
    from systems.ours_app import add, app_factory

    if what in PEERS:
        os.environ[server.URL_ENV] = url
        send = importlib.import_module(f'systems.{what}').send
        for i in range(n):
            send(i, 0.0)
        return
    queue = wsgi_taskqueue.RedisQueue(url=url, secrets=['benchmark-secret'])
    wsgi_taskqueue.register_queue('default', queue)
    queue.reset()
    if what == 'commit':
        for i in range(n):
            with transaction.manager:
                add(i, 0.0)
        queue.close()
        return
    with transaction.manager:
        for i in range(n):
            add(i, 0.0)
    inner = app_factory({})
    ran = [0]
    finished = threading.Event()

    def app(environ, start_response):
        answer = inner(environ, start_response)
        ran[0] += 1
        if ran[0] == n:
            finished.set()
        return answer
    with probe.Probe.create(n) as jobs:
        os.environ[probe.ENV] = jobs.path
        consumer = wsgi_taskqueue.Consumer(
            app, name='counted',
            prefetch=int(prefetch) if prefetch.isdigit() else prefetch)
        consumer.start()
        finished.wait()
        consumer.stop(10)
        jobs.check_once()
    queue.close()


def instructions(what: str, n: int, url: str, prefetch: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, 'callgrind.out')
        subprocess.run(
            ['valgrind', '--tool=callgrind', f'--callgrind-out-file={out}',
             sys.executable, __file__, '--run', what, '--n', str(n),
             '--url', url, '--prefetch', prefetch],
            check=True, capture_output=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
                os.environ.get('PYTHONPATH'), HERE]))))
        with open(out) as f:
            return int(re.search(r'^summary: (\d+)', f.read(), re.M)[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--small', type=int, default=100)
    parser.add_argument('--large', type=int, default=600)
    parser.add_argument('--prefetch', default='auto')
    parser.add_argument('--what', default='commit,drain')
    parser.add_argument('--run', help=argparse.SUPPRESS)
    parser.add_argument('--n', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--url', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        workload(args.run, args.n, args.url, args.prefetch)
        return 0
    with RedisServer() as redis_server:
        for what in args.what.split(','):
            small = instructions(what, args.small, redis_server.url,
                                 args.prefetch)
            large = instructions(what, args.large, redis_server.url,
                                 args.prefetch)
            per = (large - small) / (args.large - args.small)
            unit = 'drained task' if what == 'drain' else 'enqueue'
            print(f'{what}: {per:,.0f} instructions per {unit} '
                  f'(prefetch {args.prefetch})', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
