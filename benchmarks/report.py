"""The tables: per metric and row, the median over the runs, the min-max
spread, and how it compares (to the best peer and the floor, to one worker
process, or to a request that adds no task)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import systems


@dataclass
class Metric:
    """One table of results: its unit, which way is better, its format."""

    name: str
    unit: str
    higher_is_better: bool
    fmt: str

    def best(self, values):
        return (max if self.higher_is_better else min)(values)

    @property
    def better(self) -> str:
        return 'higher' if self.higher_is_better else 'lower'


#: Side by side with the peers and the floors: ratios to the best peer
#: and to floor (a).
SIDE_BY_SIDE = [
    Metric('enqueue', 'jobs/s', True, ',.0f'),
    Metric('drain', 'jobs/s', True, ',.0f'),
    Metric('latency p50', 'ms', False, '.3g'),
    Metric('latency p90', 'ms', False, '.3g'),
    Metric('latency p99', 'ms', False, '.3g'),
    Metric('memory', 'bytes of Redis memory per queued job', False, ',.0f'),
    Metric('enqueue commands', 'Redis commands per job enqueued (for '
                               'us: per committed transaction), those '
                               'inside Lua scripts included', False, '.3g'),
    Metric('drain commands', 'Redis commands per job drained, from the '
                             'worker\'s start to the last job', False,
           '.3g'),
    Metric('enqueue redis cpu', 'us of redis-server CPU per job enqueued',
           False, '.3g'),
    Metric('drain redis cpu', 'us of redis-server CPU per job drained',
           False, '.3g'),
    Metric('job completion', 'ms from the start of the last task of a '
                             'closed 1,000-task job to the start of its '
                             'on_complete task, median', False, '.3g'),
    Metric('job completion by close', 'ms from the commit of the close of '
                                      'a 1,000-task job whose tasks all '
                                      'ran to the start of its on_complete '
                                      'task, median', False, '.3g'),
]
#: The scaling rows, by worker processes; ratios to one process.
SCALING = Metric('drain by worker processes', 'jobs/s', True, ',.0f')
#: The web rows, by tasks per request; differences to no task.
WEB = Metric('commit overhead in a web request', 'ms per request', False,
             '.3g')

_LABEL = 24


def medians(results: dict) -> dict:
    """Per row and metric, the median over the runs."""
    return {name: {metric: statistics.median(values)
                   for metric, values in result['values'].items()
                   if not metric.endswith(' by name')}
            for name, result in results.items()}


def tables(results: dict) -> str:
    by_row = medians(results)
    lines = []
    for metric in SIDE_BY_SIDE:
        lines += _side_by_side(metric, results, by_row)
        if metric.name.endswith('commands'):
            lines += _breakdown(results, f'{metric.name} by name')
    lines += _scaling(results, by_row)
    lines += _web(results, by_row)
    return '\n'.join(lines)


def _side_by_side(metric: Metric, results, medians) -> list[str]:
    rows = {name: m[metric.name] for name, m in medians.items()
            if metric.name in m}
    if not rows:
        return []
    peers = [value for name, value in rows.items() if name in systems.PEERS]
    references = [('best peer', metric.best(peers) if peers else None),
                  ('floor', rows.get('floor'))]
    lines = _title(metric, 'ratios are this / reference', 'system',
                   [f'x {ref}' for ref, _ in references])
    for name, median in rows.items():
        lines.append(_row(name, median, results[name]['values'][metric.name],
                          metric.fmt, [_ratio(median, value)
                                       for _, value in references]))
    return lines + ['']


def _breakdown(results, key: str) -> list[str]:
    """Commands per job by name, each the median over the runs."""
    lines = ['  by command:']
    for name, result in results.items():
        runs = result['values'].get(key)
        if not runs:
            continue
        commands = sorted({command for run in runs for command in run})
        per_job = {command: statistics.median(run.get(command, 0.0)
                                              for run in runs)
                   for command in commands}
        shown = sorted(((count, command) for command, count in
                        per_job.items() if count >= 0.005), reverse=True)
        lines.append(f'  {name:<{_LABEL - 2}}' + ', '.join(
            f'{command} {count:.3g}' for count, command in shown))
    return lines + ['']


def _scaling(results, medians) -> list[str]:
    keys = sorted({key for m in medians.values() for key in m
                   if key.startswith('drain x')},
                  key=lambda key: int(key.removeprefix('drain x')))
    if not keys:
        return []
    lines = _title(SCALING, 'one queue; ratios are this / 1 process',
                   'system, processes', ['x 1 process'])
    for name, m in medians.items():
        for key in keys:
            if key in m:
                lines.append(_row(
                    f'{name}, {key.removeprefix("drain x")}', m[key],
                    results[name]['values'][key], SCALING.fmt,
                    [_ratio(m[key], m.get(keys[0]))]))
    return lines + ['']


def _web(results, medians) -> list[str]:
    lines = []
    for name, m in medians.items():
        variants = [int(key.removeprefix('web ')) for key in m
                    if key.startswith('web ')]
        if not variants:
            continue
        lines += _title(WEB, 'waitress, keep-alive client on loopback',
                        f'{name}, tasks added', ['+ ms', '+ ms per task'])
        for tasks in variants:
            median = m[f'web {tasks}']
            extra = median - m['web 0']
            lines.append(_row(
                str(tasks), median, results[name]['values'][f'web {tasks}'],
                WEB.fmt, [f'{extra:+.3g}', f'{extra / tasks:+.3g}'] if tasks
                else ['-', '-']))
        lines.append('')
    return lines


def _title(metric: Metric, note: str, label: str,
           columns: list[str]) -> list[str]:
    return [f'{metric.name} ({metric.unit}, {metric.better} is better; '
            f'{note})',
            f'  {label:<{_LABEL - 2}}{"median":>10}  {"min-max":<21}'
            + ''.join(f'{column:>14}' for column in columns)]


def _row(label: str, median: float, values: list[float], fmt: str,
         ratios: list[str]) -> str:
    spread = f'{min(values):{fmt}}-{max(values):{fmt}}'
    return (f'  {label:<{_LABEL - 2}}{median:>10{fmt}}  {spread:<21}'
            + ''.join(f'{r:>14}' for r in ratios))


def _ratio(value: float, reference: float | None) -> str:
    if not reference:
        return '-'
    r = value / reference
    return f'{r:,.0f}' if r >= 100 else f'{r:.3g}'
