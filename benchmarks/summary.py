"""The performance table of the docs, written by the benchmark itself.

``run.py --docs FILE`` writes, from the run it just made, a reStructuredText
fragment that ``docs/performance.rst`` includes: the machine, our commit,
the headline rows with their ratios to the peers, and the full tables as
printed.  No number in it is copied by hand.
"""
from __future__ import annotations

import os
import platform

import report

#: (label, metric, our row, reference rows): each line of the headline
#: table; the first reference row that was measured is the one shown, and
#: ``'best peer'`` is the best of the peers' rows for that metric.
ROWS = [
    ('drain, default configuration (tasks/s)', 'drain', 'ours',
     ['best peer']),
    ('drain, prefetch 4 (tasks/s)', 'drain', 'ours_prefetch4',
     ['best peer']),
    ('drain, prefetch 100 (tasks/s)', 'drain', 'ours_prefetch100',
     ['best peer']),
    ('1-task transactions against huey in an after-commit hook (tasks/s)',
     'enqueue', 'ours', ['huey_after_commit']),
    ('1-task transactions against bare huey (tasks/s)', 'enqueue', 'ours',
     ['huey']),
    ('100-task transactions (tasks/s)', 'enqueue', 'ours_txn100',
     ['best peer']),
    ('the same with a SQLite row (tasks/s)', 'enqueue',
     'ours_sqlite_txn100', ['best peer']),
    ('latency p50 (ms)', 'latency p50', 'ours', ['huey']),
    ('latency p99 (ms)', 'latency p99', 'ours', ['huey']),
    ('Redis memory per queued task (bytes)', 'memory', 'ours', ['huey']),
    ('Redis commands per 1-task transaction', 'enqueue commands', 'ours',
     ['huey']),
    ('Redis commands per drained task', 'drain commands', 'ours',
     ['huey']),
    ('Redis CPU per 1-task transaction (µs)', 'enqueue redis cpu', 'ours',
     ['huey']),
    ('Redis CPU per drained task (µs)', 'drain redis cpu', 'ours',
     ['huey']),
]

_METRICS = {metric.name: metric for metric in report.SIDE_BY_SIDE}

#: The targets of the "fast by default" work, each checked against the run:
#: (what, our value, the bound it must meet, whether higher is better),
#: values and bounds being functions of the medians (None: not measured).
TARGETS = [
    ('drain, default configuration, at least 2.5 times the best peer\'s',
     lambda m: _get(m, 'ours', 'drain'),
     lambda m: _times(2.5, _best_peer(m, 'drain')), True),
    ('drain, prefetch 100 (recommended for throughput), at least 4 times '
     'the best peer\'s', lambda m: _get(m, 'ours_prefetch100', 'drain'),
     lambda m: _times(4, _best_peer(m, 'drain')), True),
    ('1-task transactions at least as fast as huey\'s enqueue in an '
     'after-commit hook', lambda m: _get(m, 'ours', 'enqueue'),
     lambda m: _get(m, 'huey_after_commit', 'enqueue'), True),
    ('1-task transactions at least 0.8 times bare huey\'s enqueue',
     lambda m: _get(m, 'ours', 'enqueue'),
     lambda m: _times(0.8, _get(m, 'huey', 'enqueue')), True),
    ('Redis commands per 1-task transaction at most 7 (half of 14)',
     lambda m: _get(m, 'ours', 'enqueue commands'), lambda m: 7, False),
    ('Redis commands per drained task at most 5.5 (half of 11)',
     lambda m: _get(m, 'ours', 'drain commands'), lambda m: 5.5, False),
    ('Redis CPU per task (enqueue and drain) at most huey\'s (µs)',
     lambda m: _sum(_get(m, 'ours', 'enqueue redis cpu'),
                    _get(m, 'ours', 'drain redis cpu')),
     lambda m: _sum(_get(m, 'huey', 'enqueue redis cpu'),
                    _get(m, 'huey', 'drain redis cpu')), False),
    ('Redis memory per queued task at most 3 times huey\'s (bytes)',
     lambda m: _get(m, 'ours', 'memory'),
     lambda m: _times(3, _get(m, 'huey', 'memory')), False),
    ('latency p50 at most huey\'s (ms)',
     lambda m: _get(m, 'ours', 'latency p50'),
     lambda m: _get(m, 'huey', 'latency p50'), False),
    ('latency p99 at most 1.5 ms', lambda m: _get(m, 'ours', 'latency p99'),
     lambda m: 1.5, False),
    ('a web request adding 1 task at most 0.15 ms slower (ms)',
     lambda m: _difference(_get(m, 'ours_web', 'web 1'),
                           _get(m, 'ours_web', 'web 0')),
     lambda m: 0.15, False),
    ('4 worker processes against 1 at least the bare redis-py floor\'s '
     'ratio', lambda m: _ratio(m, 'ours'), lambda m: _ratio(m, 'floor'),
     True),
]


def rst(results: dict, meta: dict, printed: str) -> str:
    """The fragment: ``meta`` says what was run where (see run.py)."""
    medians = report.medians(results)
    lines = [
        '.. Written by benchmarks/run.py --docs from its last run; '
        'do not edit.',
        '',
        f'Measured on {meta["date"]} by ``benchmarks/run.py`` '
        f'({meta["repeat"]} run(s) per system, round-robin, medians; '
        f'{meta["jobs"]:,} jobs per enqueue and drain run, '
        f'{meta["samples"]} latency samples, {meta["requests"]} web '
        f'requests per variant; {meta["seconds"]:.0f} s), our code at '
        f'{meta["revision"]}; on {machine()}, load average '
        f'{meta["load"]:.1f} at the start; Python {meta["python"]}, '
        f'redis-server {meta["redis_server"]}, ' + ', '.join(
            f'{package} {version}'
            for package, version in meta['packages'].items()) + '.',
        '',
        '.. list-table::',
        '   :header-rows: 1',
        '',
        '   * - measure',
        '     - ours',
        '     - reference',
        '     - ratio',
    ]
    for label, metric, ours, references in ROWS:
        row = _row(medians, label, _METRICS[metric], ours, references)
        if row:
            lines += row
    lines += _scaling(medians) + _web(medians)
    lines += ['', 'Against the targets:', '']
    for what, value, bound, higher in TARGETS:
        mine, limit = value(medians), bound(medians)
        if mine is None or limit is None:
            continue
        met = mine >= limit if higher else mine <= limit
        lines.append(f'* {what}: {_number(mine)} against '
                     f'{_number(limit)}, {"met" if met else "**missed**"}.')
    lines += ['', 'The full tables, as the run printed them::', '']
    lines += ['    ' + line if line else '' for line in printed.splitlines()]
    return '\n'.join(lines) + '\n'


def machine() -> str:
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.partition(':')[2].strip()
                    break
    except OSError:
        pass
    return (f'{os.cpu_count()} cores ({model or platform.machine()}), '
            f'{platform.system()} {platform.release()}')


def _reference(medians, metric, name):
    if name != 'best peer':
        value = medians.get(name, {}).get(metric.name)
        return (name, value) if value is not None else None
    peers = {peer: m[metric.name] for peer, m in medians.items()
             if peer in report.systems.PEERS and metric.name in m}
    if not peers:
        return None
    best = metric.best(peers.values())
    return next((peer, value) for peer, value in peers.items()
                if value == best)


def _row(medians, label, metric, ours, references) -> list[str]:
    value = medians.get(ours, {}).get(metric.name)
    found = [found for found in (_reference(medians, metric, name)
                                 for name in references) if found]
    if value is None or not found:
        return []
    peer, reference = found[0]
    return [f'   * - {label}', f'     - {value:{metric.fmt}}',
            f'     - {reference:{metric.fmt}} ({peer})',
            f'     - {value / reference:.3g}' if reference else '     - -']


def _scaling(medians) -> list[str]:
    lines = []
    for name in ('ours', 'floor'):
        m = medians.get(name, {})
        if all(f'drain x{n}' in m for n in (1, 2, 4)):
            lines += [f'   * - {name}: 2 / 4 worker processes against 1',
                      f'     - {m["drain x2"] / m["drain x1"]:.2f} / '
                      f'{m["drain x4"] / m["drain x1"]:.2f}',
                      f'     - {m["drain x1"]:,.0f} tasks/s with 1',
                      '     - -']
    return lines


def _web(medians) -> list[str]:
    m = medians.get('ours_web', {})
    if not all(f'web {n}' in m for n in (0, 1, 10)):
        return []
    return ['   * - a web request adding 1 / 10 tasks (ms more)',
            f'     - +{(m["web 1"] - m["web 0"]):.3f} / '
            f'+{(m["web 10"] - m["web 0"]):.3f}',
            f'     - {m["web 0"]:.3f} ms without tasks',
            '     - -']


def _number(value: float) -> str:
    return f'{value:,.0f}' if abs(value) >= 100 else f'{value:.3g}'


def _get(medians, row, metric):
    return medians.get(row, {}).get(metric)


def _best_peer(medians, metric):
    peers = [m[metric] for name, m in medians.items()
             if name in report.systems.PEERS and metric in m]
    return max(peers) if peers else None


def _times(factor, value):
    return None if value is None else factor * value


def _sum(*values):
    return None if None in values else sum(values)


def _difference(value, reference):
    return None if value is None or reference is None else value - reference


def _ratio(medians, row):
    m = medians.get(row, {})
    if 'drain x4' not in m or not m.get('drain x1'):
        return None
    return m['drain x4'] / m['drain x1']
