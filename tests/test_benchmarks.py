"""The benchmark harness (benchmarks/run.py) still runs end to end.

One smoke run with tiny numbers, in a subprocess as ``make benchmark``
runs it (the harness imports every peer, which sets process-wide state):
every row of every table is produced, and no measurement failed, so
every job and task it ran ran exactly once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'benchmarks', 'run.py')

FLOORS = {'floor', 'floor_pipelined'}
PEERS = {'huey', 'dramatiq', 'celery', 'rq'}
ENQUEUE_ROWS = FLOORS | PEERS | {'ours', 'ours_txn100', 'ours_sqlite',
                                 'ours_sqlite_txn100'}
DRAIN_ROWS = FLOORS | PEERS | {'dramatiq_prefetch100', 'ours',
                               'ours_prefetch4', 'ours_prefetch100'}
LATENCY_ROWS = PEERS | {'floor', 'dramatiq_prefetch100', 'ours'}

#: Metric -> the rows that must have it.
EXPECTED = {
    'enqueue': ENQUEUE_ROWS, 'memory': ENQUEUE_ROWS,
    'drain': DRAIN_ROWS, 'commands': DRAIN_ROWS, 'redis cpu': DRAIN_ROWS,
    'commands by name': DRAIN_ROWS,
    **{f'latency p{p}': LATENCY_ROWS for p in (50, 90, 99)},
    **{f'drain x{n}': {'floor', 'ours'} for n in (1, 2, 4)},
    **{f'web {n}': {'ours_web'} for n in (0, 1, 10)},
}

TABLES = ['enqueue (jobs/s', 'drain (jobs/s', 'latency p50', 'latency p90',
          'latency p99', 'memory (bytes', 'commands (Redis', 'by command:',
          'redis cpu (us', 'drain by worker processes',
          'commit overhead in a web request']


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp('benchmark') / 'results.json'
    finished = subprocess.run(
        [sys.executable, RUN, '--quick', '--jobs', '20', '--samples', '3',
         '--requests', '3', '--json', str(results)],
        capture_output=True, text=True, timeout=300)
    return finished, json.loads(results.read_text())


def test_the_smoke_run_succeeds_with_every_job_run_exactly_once(smoke_run):
    finished, results = smoke_run
    assert results['failures'] == [], finished.stderr
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_every_row_of_every_table_is_measured_once(smoke_run):
    _, results = smoke_run
    for metric, rows in EXPECTED.items():
        measured = {name for name, result in results['results'].items()
                    if metric in result['values']}
        assert measured == rows, metric
        for name in rows:
            assert len(results['results'][name]['values'][metric]) == 1


def test_every_table_is_printed(smoke_run):
    finished, _ = smoke_run
    for title in TABLES:
        assert title in finished.stdout, title


def test_the_sql_benchmark_runs_every_row_once():
    """benchmarks/sql.py with tiny numbers: every system of each database
    measured, every job run exactly once (else it exits 1)."""
    finished = subprocess.run(
        [sys.executable, os.path.join(os.path.dirname(RUN), 'sql.py'),
         '--jobs', '20', '--repeat', '1'],
        capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = [line.split()[:2] for line in finished.stdout.splitlines()[1:]]
    assert {database for database, _ in rows} == {'postgresql', 'sqlite'}
    for database, peer in (('postgresql', 'procrastinate'),
                           ('sqlite', 'huey')):
        for metric in (' drain ', ' enqueue ', ' latency p50 ms '):
            row = next(line for line in finished.stdout.splitlines()
                       if line.startswith(database) and metric in line)
            assert 'ours' in row and peer in row and 'ratio' in row
