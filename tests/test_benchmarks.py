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
ENQUEUE_ROWS = FLOORS | PEERS | {'huey_after_commit', 'ours', 'ours_txn100',
                                 'ours_sqlite', 'ours_sqlite_txn100'}
DRAIN_ROWS = FLOORS | PEERS | {'dramatiq_prefetch100', 'ours',
                               'ours_prefetch1', 'ours_prefetch4',
                               'ours_prefetch100', 'ours_delayed'}
LATENCY_ROWS = PEERS | {'floor', 'dramatiq_prefetch100', 'huey_after_commit',
                        'ours'}

#: Metric -> the rows that must have it.
EXPECTED = {
    'enqueue': ENQUEUE_ROWS, 'memory': ENQUEUE_ROWS,
    'enqueue commands': ENQUEUE_ROWS, 'enqueue redis cpu': ENQUEUE_ROWS,
    'enqueue commands by name': ENQUEUE_ROWS,
    'drain': DRAIN_ROWS, 'drain commands': DRAIN_ROWS,
    'drain redis cpu': DRAIN_ROWS, 'drain commands by name': DRAIN_ROWS,
    **{f'latency p{p}': LATENCY_ROWS for p in (50, 90, 99)},
    **{f'drain x{n}': {'floor', 'ours'} for n in (1, 2, 4)},
    **{f'web {n}': {'ours_web'} for n in (0, 1, 10)},
    'job completion': {'ours_job'}, 'job completion by close': {'ours_job'},
}

TABLES = ['enqueue (jobs/s', 'drain (jobs/s', 'latency p50', 'latency p90',
          'latency p99', 'memory (bytes', 'enqueue commands (Redis',
          'drain commands (Redis', 'by command:', 'enqueue redis cpu (us',
          'drain redis cpu (us', 'drain by worker processes',
          'commit overhead in a web request', 'job completion (ms',
          'job completion by close (ms']


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('benchmark')
    results, docs = folder / 'results.json', folder / 'results.inc'
    finished = subprocess.run(
        [sys.executable, RUN, '--quick', '--jobs', '20', '--samples', '3',
         '--requests', '3', '--json', str(results), '--docs', str(docs)],
        capture_output=True, text=True, timeout=300)
    return finished, json.loads(results.read_text()), docs.read_text()


def test_the_smoke_run_succeeds_with_every_job_run_exactly_once(smoke_run):
    finished, results, _ = smoke_run
    assert results['failures'] == [], finished.stderr
    assert finished.returncode == 0, finished.stdout + finished.stderr


def test_every_row_of_every_table_is_measured_once(smoke_run):
    _, results, _ = smoke_run
    for metric, rows in EXPECTED.items():
        measured = {name for name, result in results['results'].items()
                    if metric in result['values']}
        assert measured == rows, metric
        for name in rows:
            assert len(results['results'][name]['values'][metric]) == 1


def test_every_table_is_printed(smoke_run):
    finished, _, _ = smoke_run
    for title in TABLES:
        assert title in finished.stdout, title


def test_the_docs_table_is_written_from_the_run(smoke_run):
    """``--docs`` writes the fragment docs/performance.rst includes: the
    commit and machine measured, every headline row, the full tables."""
    finished, results, docs = smoke_run
    assert results['revision'].split(', ')[-1] in docs
    assert ' cores (' in docs
    for label in ('drain, default configuration', 'huey in an after-commit '
                  'hook', 'against bare huey', 'commands per 1-task '
                  'transaction', 'commands per drained task',
                  'CPU per drained task', 'memory per queued task',
                  '2 / 4 worker processes', 'a web request adding'):
        assert label in docs, label
    assert finished.stdout.strip().splitlines()[-1].strip() in docs


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
                           ('postgresql', 'pgqueuer'), ('sqlite', 'huey')):
        for metric in (' drain ', ' enqueue ', ' latency p50 ms '):
            row = next(line for line in finished.stdout.splitlines()
                       if line.startswith(database) and metric in line)
            assert 'ours' in row and peer in row and 'ratio' in row
    row = next(line for line in finished.stdout.splitlines()
               if line.startswith('postgresql') and ' with row ' in line)
    assert 'ours' in row and 'pgqueuer' in row and 'ratio' in row
