"""benchmarks/topologies.py still runs end to end: a smoke run with tiny
numbers produces every row."""
import json
import os
import subprocess
import sys

RUN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'benchmarks', 'topologies.py')


def test_every_row_is_measured(tmp_path):
    results = tmp_path / 'results.json'
    finished = subprocess.run(
        [sys.executable, RUN, '--quick', '--tasks', '60', '--samples', '5',
         '--json', str(results)], capture_output=True, text=True,
        timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = json.loads(results.read_text())['rows']
    assert set(rows) == {'cluster 1 primary', 'cluster 2 primaries',
                         'cluster 3 primaries',
                         'one queue, 6 shards, 3 primaries', 'sentinel',
                         'url', 'commit, 1 slot',
                         'commit, 3 slots on 3 primaries'}
    for name in ('cluster 1 primary', 'cluster 3 primaries',
                 'one queue, 6 shards, 3 primaries'):
        assert set(rows[name]) == {
            'enqueue', 'drain', 'server us/task', 'primary us/task',
            'projected tasks/s per primary', 'memory B/task'}, name
        assert rows[name]['enqueue'] > 0 and rows[name]['drain'] > 0
    assert set(rows['commit, 1 slot']) == set(
        rows['commit, 3 slots on 3 primaries']) == {'commit p50 ms',
                                                     'commit p99 ms'}
    assert set(rows['sentinel']) == set(rows['url']) == {
        'commit p50 ms', 'commit p99 ms', 'commit+reserve+ack p50 ms',
        'commit+reserve+ack p99 ms'}
    # Every promotion went through at once (none left to the background).
    assert 'retrying in the background' not in finished.stderr
