"""Side-by-side benchmark: our queue, its peers and bare Redis, one server.

    python benchmarks/run.py [--quick] [--repeat K] [--systems a,b] [--json F]

Starts a private redis-server, measures every system K times (round-robin,
so drift hits all alike, the server flushed before each measurement) and
prints per metric the median, the min-max spread and ratios to the best
peer and to the floor, then our own tables (scaling, web requests). Exits
1 if any measurement failed or ran a job other than exactly once. See
README.rst for what is measured.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import summary

import wsgi_taskqueue
from wsgi_taskqueue.testing import RedisServer

import report
import systems
from systems import measure, server

PACKAGES = ('wsgi-taskqueue', 'redis', 'hiredis', 'huey', 'dramatiq',
            'celery', 'rq', 'transaction', 'WebOb', 'waitress', 'SQLAlchemy',
            'zope.sqlalchemy')

#: Worker processes of the scaling rows.
PROCESSES = (1, 2, 4)


def enqueue(module, args) -> dict:
    seconds, memory, usage = measure.enqueue(module.push, args.jobs)
    return {'enqueue': args.jobs / seconds, 'memory': memory,
            'enqueue commands': usage.commands,
            'enqueue redis cpu': usage.cpu,
            'enqueue commands by name': usage.by_command}


def drain(module, args) -> dict:
    seconds, usage = measure.drain(module.WORKER, module.push, args.jobs)
    return {'drain': (args.jobs - 1) / seconds,
            'drain commands': usage.commands, 'drain redis cpu': usage.cpu,
            'drain commands by name': usage.by_command}


def latency(module, args) -> dict:
    samples = measure.latency(module.WORKER, module.send, args.samples,
                              args.idle)
    cuts = statistics.quantiles(samples, n=100, method='inclusive')
    return {f'latency p{p}': cuts[p - 1] for p in (50, 90, 99)}


#: Tasks per job of the job rows (fewer when ``--jobs`` is smaller).
JOB_TASKS = 1000


def job(module, args) -> dict:
    by_task, by_close = measure.job_completion(
        module.WORKER, module.job, module.close, min(JOB_TASKS, args.jobs),
        max(3, args.samples // 20))
    return {'job completion': statistics.median(by_task),
            'job completion by close': statistics.median(by_close)}


def scaling(module, args) -> dict:
    return {f'drain x{processes}': (args.jobs - 1) / measure.burst_drain(
                module.WORKER, module.burst, args.jobs, processes)
            for processes in PROCESSES}


def web(module, args) -> dict:
    return {f'web {tasks}': seconds * 1000
            for tasks, seconds in module.web(args.requests).items()}


#: Each measurement: what a system module must define for it (see
#: systems/__init__.py), and how it is taken.
MEASUREMENTS = {
    'enqueue': (('push',), enqueue),
    'drain': (('push', 'WORKER'), drain),
    'latency': (('send', 'WORKER'), latency),
    'scaling': (('burst', 'WORKER'), scaling),
    'job': (('job', 'close', 'WORKER'), job),
    'web': (('web',), web),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 200 jobs, 20 latency samples, '
                             '20 web requests, one repeat (unless given '
                             'explicitly)')
    parser.add_argument('--repeat', type=int, help='runs per system (5)')
    parser.add_argument('--jobs', type=int,
                        help='jobs per enqueue and drain run (10000)')
    parser.add_argument('--samples', type=int,
                        help='latency samples per run (200)')
    parser.add_argument('--requests', type=int,
                        help='web requests per variant and run (1000)')
    parser.add_argument('--idle', type=float, default=0.0, metavar='SECONDS',
                        help='pause before each latency sample (0): '
                             'longer shows polling workers and CPU wake-up')
    parser.add_argument('--systems', type=lambda s: s.split(','),
                        default=list(systems.FLOORS + systems.OURS
                                     + systems.PEERS),
                        help='comma-separated, of: ' + ','.join(
                            systems.FLOORS + systems.OURS + systems.PEERS))
    parser.add_argument('--json', metavar='FILE',
                        help='also write the raw results to FILE')
    parser.add_argument('--docs', metavar='FILE',
                        help='also write the performance table of the docs '
                             '(docs/benchmark-results.inc) to FILE')
    args = parser.parse_args(argv)
    for name in args.systems:
        if importlib.util.find_spec(f'systems.{name}') is None:
            parser.error(f'no benchmarks/systems/{name}.py')
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.jobs = args.jobs or (200 if args.quick else 10_000)
    args.samples = args.samples or (20 if args.quick else 200)
    args.requests = args.requests or (20 if args.quick else 1000)
    return args


def plan(module) -> list[str]:
    """The measurements a system module takes part in."""
    able = [name for name, (needs, _) in MEASUREMENTS.items()
            if all(hasattr(module, attribute) for attribute in needs)]
    chosen = list(getattr(module, 'MEASURES', able))
    unable = set(chosen) - set(able)
    if unable:
        raise ValueError(f'{module.__name__} lacks what '
                         f'{", ".join(sorted(unable))} needs')
    return chosen


def run(args) -> dict:
    """Measure every system ``args.repeat`` times; the raw results."""
    modules = {name: importlib.import_module(f'systems.{name}')
               for name in args.systems}
    plans = {name: plan(module) for name, module in modules.items()}
    results = {name: {'errors': [], 'values': {}} for name in modules}
    for repeat in range(1, args.repeat + 1):
        for name, module in modules.items():
            for measurement in plans[name]:
                prefix = f'[{repeat}/{args.repeat}] {name} {measurement}'
                started = time.monotonic()
                try:
                    values = MEASUREMENTS[measurement][1](module, args)
                except Exception as error:
                    results[name]['errors'].append(f'{measurement}: {error}')
                    print(f'{prefix} FAILED: {error}', file=sys.stderr,
                          flush=True)
                    continue
                for metric, value in values.items():
                    results[name]['values'].setdefault(metric, []).append(
                        value)
                print(f'{prefix}: {time.monotonic() - started:.1f}s',
                      file=sys.stderr, flush=True)
    return results


def failures(results: dict) -> list[str]:
    return [f'{name}: {error}' for name, result in results.items()
            for error in result['errors']]


def versions() -> dict[str, str]:
    return {package: importlib.metadata.version(package)
            for package in PACKAGES}


def revision(short: bool = False) -> str:
    """Which code of ours was measured: where the package was imported
    from (unless ``short``), its git commit, and whether it differs from
    it (read-only git)."""
    package = os.path.dirname(wsgi_taskqueue.__file__)

    def git(*args) -> subprocess.CompletedProcess:
        return subprocess.run(['git', '--no-optional-locks', *args],
                              cwd=package, capture_output=True, text=True)
    try:
        commit = git('rev-parse', '--short', 'HEAD')
        changed = git('diff', '--quiet', 'HEAD', '--', '.').returncode
    except OSError:
        return package
    if commit.returncode:
        return package
    return ('' if short else f'{package}, ') + (
        f'git {commit.stdout.strip()}'
        + (' with uncommitted changes' if changed else ''))


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = os.getloadavg()[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M UTC')
    with RedisServer() as redis_server:
        os.environ[server.URL_ENV] = redis_server.url
        results = run(args)
        redis_version = redis_server.client().info('server')['redis_version']
    print(f'redis-server {redis_version}; {args.jobs} jobs per enqueue/drain '
          f'run, {args.samples} latency samples per run ({args.idle}s idle '
          f'before each), {args.requests} web requests per variant and run, '
          f'{args.repeat} run(s) per system; one worker process with one '
          f'thread unless said otherwise; took '
          f'{time.monotonic() - started:.0f}s.')
    print(f'Our code: {revision()}. Python '
          f'{platform.python_version()}, ' + ', '.join(
              f'{package} {version}' for package, version
              in versions().items()))
    print()
    printed = report.tables(results)
    print(printed)
    problems = failures(results)
    for problem in problems:
        print('FAILED', problem)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'jobs': args.jobs, 'samples': args.samples,
                       'requests': args.requests, 'idle': args.idle,
                       'repeat': args.repeat, 'redis_server': redis_version,
                       'python': platform.python_version(),
                       'revision': revision(),
                       'packages': versions(), 'results': results,
                       'failures': problems}, f, indent=2)
    if args.docs:
        with open(args.docs, 'w') as f:
            f.write(summary.rst(results, {
                'date': date, 'repeat': args.repeat, 'jobs': args.jobs,
                'samples': args.samples, 'requests': args.requests,
                'seconds': time.monotonic() - started, 'load': load,
                'revision': revision(short=True),
                'python': platform.python_version(),
                'redis_server': redis_version, 'packages': versions()},
                printed))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
