"""Side-by-side benchmark: our queue, its peers and bare Redis, one server.

    python benchmarks/run.py [--quick] [--repeat K] [--systems a,b] [--json F]

Starts a private redis-server, measures every system K times (round-robin,
so drift hits all alike, the server flushed before each measurement) and
prints per metric the median, the min-max spread and ratios to the best
peer and to the floor. Exits 1 if any measurement failed or any drain did
not run each job exactly once. See README.rst for what is measured.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

from wsgi_taskqueue.testing import RedisServer

import systems
from systems import measure

PACKAGES = ('redis', 'hiredis', 'huey', 'dramatiq', 'celery', 'rq')


class Metric:
    """One table of results: its unit, which way is better, its format."""

    def __init__(self, name: str, unit: str, higher_is_better: bool,
                 fmt: str):
        self.name, self.unit, self.fmt = name, unit, fmt
        self.higher_is_better = higher_is_better

    def best(self, values):
        return (max if self.higher_is_better else min)(values)


METRICS = [
    Metric('enqueue', 'jobs/s', True, ',.0f'),
    Metric('drain', 'jobs/s', True, ',.0f'),
    Metric('latency p50', 'ms', False, '.3g'),
    Metric('latency p90', 'ms', False, '.3g'),
    Metric('latency p99', 'ms', False, '.3g'),
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 200 jobs, 20 latency samples, '
                             'one repeat (unless given explicitly)')
    parser.add_argument('--repeat', type=int, help='runs per system (5)')
    parser.add_argument('--jobs', type=int,
                        help='jobs per enqueue and drain run (10000)')
    parser.add_argument('--samples', type=int,
                        help='latency samples per run (200)')
    parser.add_argument('--idle', type=float, default=0.0, metavar='SECONDS',
                        help='pause before each latency sample (0): '
                             'longer shows polling workers and CPU wake-up')
    parser.add_argument('--systems', type=lambda s: s.split(','),
                        default=default_systems(),
                        help='comma-separated, of: ' + ','.join(
                            systems.FLOORS + (systems.OURS,) + systems.PEERS))
    parser.add_argument('--json', metavar='FILE',
                        help='also write the raw results to FILE')
    args = parser.parse_args(argv)
    for name in args.systems:
        if importlib.util.find_spec(f'systems.{name}') is None:
            parser.error(f'no benchmarks/systems/{name}.py')
    args.repeat = args.repeat or (1 if args.quick else 5)
    args.jobs = args.jobs or (200 if args.quick else 10_000)
    args.samples = args.samples or (20 if args.quick else 200)
    return args


def default_systems() -> list[str]:
    ours = importlib.util.find_spec(f'systems.{systems.OURS}') is not None
    return list(systems.FLOORS + (systems.OURS,) * ours + systems.PEERS)


def measure_once(module, args, flush) -> tuple[dict[str, float], int]:
    """One run of each of a system's measurements: metric values, runs."""
    values = {}
    flush()
    values['enqueue'] = args.jobs / module.enqueue(args.jobs)
    flush()
    seconds, runs = module.drain(args.jobs)
    values['drain'] = (args.jobs - 1) / seconds
    if hasattr(module, 'latency'):
        flush()
        samples = module.latency(args.samples, args.idle)
        cuts = statistics.quantiles(samples, n=100, method='inclusive')
        for p in (50, 90, 99):
            values[f'latency p{p}'] = cuts[p - 1]
    return values, runs


def run(args, flush) -> dict:
    """Measure every system ``args.repeat`` times; the raw results."""
    modules = {name: importlib.import_module(f'systems.{name}')
               for name in args.systems}
    results = {name: {'runs': [], 'errors': [],
                      **{metric.name: [] for metric in METRICS}}
               for name in args.systems}
    for repeat in range(1, args.repeat + 1):
        for name, module in modules.items():
            started = time.monotonic()
            try:
                values, runs = measure_once(module, args, flush)
            except Exception as error:
                results[name]['errors'].append(str(error))
                print(f'[{repeat}/{args.repeat}] {name} FAILED: {error}',
                      file=sys.stderr, flush=True)
                continue
            results[name]['runs'].append(runs)
            for metric, value in values.items():
                results[name][metric].append(value)
            print(f'[{repeat}/{args.repeat}] {name}: '
                  f'{time.monotonic() - started:.1f}s', file=sys.stderr,
                  flush=True)
    return results


def failures(results: dict, jobs: int) -> list[str]:
    return [f'{name}: {problem}'
            for name, result in results.items()
            for problem in result['errors'] + [
                f'drain ran {runs} jobs, not {jobs}'
                for runs in result['runs'] if runs != jobs]]


def report(results: dict, args) -> str:
    """The tables: per metric, per system median, spread and ratios."""
    lines = [
        f'{args.jobs} jobs per enqueue/drain run, {args.samples} latency '
        f'samples per run ({args.idle}s idle before each), {args.repeat} '
        'run(s) per system; one worker process with one thread.',
        'Python ' + platform.python_version() + ', ' + ', '.join(
            f'{p} {importlib.metadata.version(p)}' for p in PACKAGES),
        '',
    ]
    for metric in METRICS:
        medians = {name: statistics.median(r[metric.name])
                   for name, r in results.items() if r[metric.name]}
        if not medians:
            continue
        peers = [v for name, v in medians.items() if name in systems.PEERS]
        references = [('best peer', metric.best(peers) if peers else None),
                      ('floor', medians.get('floor'))]
        better = 'higher' if metric.higher_is_better else 'lower'
        lines.append(f'{metric.name} ({metric.unit}, {better} is better; '
                     'ratios are this / reference)')
        lines.append(f'  {"system":<22}{"median":>10}  {"min-max":<21}'
                     + ''.join(f'{"x " + ref:>12}' for ref, _ in references))
        for name, median in medians.items():
            values = results[name][metric.name]
            spread = (f'{min(values):{metric.fmt}}-'
                      f'{max(values):{metric.fmt}}')
            ratios = ''.join(f'{ratio(median, value):>12}'
                             for _, value in references)
            lines.append(f'  {name:<22}{median:>10{metric.fmt}}  '
                         f'{spread:<21}{ratios}')
        lines.append('')
    return '\n'.join(lines)


def ratio(value: float, reference: float | None) -> str:
    if not reference:
        return '-'
    r = value / reference
    return f'{r:,.0f}' if r >= 100 else f'{r:.3g}'


def main(argv=None) -> int:
    args = parse_args(argv)
    with RedisServer() as server:
        os.environ[measure.URL_ENV] = server.url
        results = run(args, server.client().flushall)
        redis_version = server.client().info('server')['redis_version']
    print(f'redis-server {redis_version}; ' + report(results, args))
    problems = failures(results, args.jobs)
    for problem in problems:
        print('FAILED', problem)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'jobs': args.jobs, 'samples': args.samples,
                       'idle': args.idle, 'repeat': args.repeat,
                       'redis_server': redis_version,
                       'python': platform.python_version(),
                       'packages': {p: importlib.metadata.version(p)
                                    for p in PACKAGES},
                       'results': results, 'failures': problems}, f, indent=2)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
