"""Our queue on more than one Redis: Cluster primaries, and Sentinel.

    python benchmarks/topologies.py [--quick] [--tasks N] [--samples M]
                                    [--repeat K] [--json FILE]

Starts its own servers (wsgi_taskqueue.testing_ha and testing_cluster) on
free ports and stops them.  Rows:

cluster N primaries (N = 1, 2, 3; no replicas), six queues spread over
    the primaries (their ``{queue}`` hash tags):
    enqueue (tasks/s)  N committed transactions of one task each, the
                       queues in turn, from one thread;
    drain (tasks/s)    six threads, one per queue, reserve 10 and
                       acknowledge them (``reserve`` / ``ack``, the
                       backend's own loop without the WSGI dispatch) until
                       all N are done;
    server µs/task     CPU of all redis-servers (``INFO cpu``) over the
                       enqueue and the drain, per task;
    primary µs/task    the same on the busiest primary, per task of its
                       queues: 10^6 / that is what one primary could take
                       if it were the only limit (a projection).
    memory B/task      ``used_memory`` of the primaries per queued task.
one queue, 6 shards, 3 primaries: the same with one queue of six shards
    (``shards = 6``) instead of six queues.
1 slot vs 3 slots: three primaries, a queue on each; in turn, a commit of
    one task to one queue, and of one task to each of the three queues
    (one transaction, three slots: its stage and promotion go to the
    three primaries at once); p50, p99 in ms.
sentinel vs url: one primary with two replicas and three Sentinels; the
    same queue reached by ``redis+sentinel://`` and by a plain
    ``redis://`` URL to the primary, in turn: the latency of a commit of
    one task, and of that commit plus the reserve and acknowledgement of
    its task (p50, p99 in ms).

Everything runs on this machine, the clients in one Python process: with
two cores the clients, not Redis, set the rates.  The per-task server CPU
is what carries over to bigger machines.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

import redis
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import registry, taskqueue
from wsgi_taskqueue.backends.redis.sharded import ShardedRedisQueue
from wsgi_taskqueue.status import Report
from wsgi_taskqueue.testing_cluster import ClusterServers
from wsgi_taskqueue.testing_ha import SentinelGroup

QUEUES = 6
PRIMARIES = (1, 2, 3)
PREFETCH = 10


def spread(servers: ClusterServers, url: str) -> list:
    """QUEUES queues, as evenly spread over the primaries as can be."""
    share = -(-QUEUES // servers.primaries)
    queues = []
    for name in servers.spread_names(share, prefix='bench')[:QUEUES]:
        queue = wsgi_taskqueue.RedisQueue(url=url)
        wsgi_taskqueue.register_queue(name, queue)
        queues.append(queue)
    return queues


def server_cpu(ports) -> dict:
    cpu = {}
    for port in ports:
        info = redis.Redis('127.0.0.1', port).info('cpu')
        cpu[port] = info['used_cpu_user'] + info['used_cpu_sys']
    return cpu


def used_memory(ports) -> int:
    return sum(redis.Redis('127.0.0.1', port).info('memory')['used_memory']
               for port in ports)


def drain(queue, slot: str, tasks: int, done: list) -> None:
    """Reserve and acknowledge until ``tasks`` were taken."""
    finished = []
    while len(done) < tasks:
        messages = queue.reserve(slot, PREFETCH, 0.05, done=finished)
        finished = [(m, Report('x', 1, '200 OK', 0.0)) for m in messages]
        done.extend(messages)
    queue.ack(slot, finished)


def cluster_row(primaries: int, tasks: int, sharded: bool = False) -> dict:
    """Six queues spread over the primaries, or one queue of six shards."""
    with ClusterServers(primaries=primaries, replicas=0) as servers:
        if sharded:
            hot = ShardedRedisQueue(url=servers.url, shards=QUEUES)
            wsgi_taskqueue.register_queue('hot', hot)
            queues, tags = [hot] * QUEUES, [f'hot~{n}' for n in range(QUEUES)]
        else:
            queues = spread(servers, servers.url)
            tags = [queue.name for queue in queues]
        names = list(dict.fromkeys(queue.name for queue in queues))
        ports = [s.port for s in servers.servers]
        queues_on: dict = {}
        for tag in tags:
            port = servers.primary_of(tag).port
            queues_on[port] = queues_on.get(port, 0) + 1
        memory, cpu = used_memory(ports), server_cpu(ports)
        started = time.perf_counter()
        for number in range(tasks):
            with transaction.manager:
                taskqueue.add('/job', queue=queues[number % QUEUES].name)
        enqueue = time.perf_counter() - started
        memory = (used_memory(ports) - memory) / tasks
        done: list = []
        threads = [threading.Thread(target=drain, args=(
            queue, f'bench#{number + 1}', tasks, done))
            for number, queue in enumerate(queues)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        drained = time.perf_counter() - started
        used = {port: seconds - cpu[port]
                for port, seconds in server_cpu(ports).items()}
        for name in names:
            registry.unregister_queue(name).close()
    # Server CPU per task on each primary, over the tasks of its queues
    # (or shards: a transaction's shard is random, so they share evenly).
    per_task = [used[port] / (tasks * share / QUEUES)
                for port, share in queues_on.items()]
    return {'enqueue': tasks / enqueue, 'drain': tasks / drained,
            'server us/task': sum(used.values()) / tasks * 1e6,
            'primary us/task': max(per_task) * 1e6,
            'projected tasks/s per primary': 1 / max(per_task),
            'memory B/task': memory}


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method='inclusive')
    return cuts[49], cuts[98]


def slot_rows(samples: int) -> dict:
    """Commits to one slot and to three slots on three primaries, in
    turn."""
    with ClusterServers(primaries=3, replicas=0) as servers:
        names = servers.spread_names(1, prefix='slot')
        for name in names:
            wsgi_taskqueue.register_queue(
                name, wsgi_taskqueue.RedisQueue(url=servers.url))
        spans = {'commit, 1 slot': names[:1],
                 'commit, 3 slots on 3 primaries': names}
        latency = {row: [] for row in spans}
        for _ in range(samples + 10):  # 10 of warm-up each
            for row, queues in spans.items():
                started = time.perf_counter()
                with transaction.manager:
                    for name in queues:
                        taskqueue.add('/job', queue=name)
                latency[row].append((time.perf_counter() - started) * 1000)
        for name in names:
            registry.unregister_queue(name).close()
    rows = {}
    for row, samples_ms in latency.items():
        p50, p99 = percentiles(samples_ms[10:])
        rows[row] = {'commit p50 ms': p50, 'commit p99 ms': p99}
    return rows


def sentinel_rows(samples: int) -> dict:
    with SentinelGroup() as group:
        plain_url = f'redis://127.0.0.1:{group.primary_port()}/0'
        queues = {'sentinel': wsgi_taskqueue.RedisQueue(url=group.url),
                  'url': wsgi_taskqueue.RedisQueue(url=plain_url)}
        for kind, queue in queues.items():
            wsgi_taskqueue.register_queue(kind, queue)
        commit = {kind: [] for kind in queues}
        round_trip = {kind: [] for kind in queues}
        for _ in range(samples + 10):  # 10 of warm-up each
            for kind, queue in queues.items():
                started = time.perf_counter()
                with transaction.manager:
                    taskqueue.add('/job', queue=kind)
                committed = time.perf_counter()
                [message] = queue.reserve('bench#1', 1, 1)
                queue.ack('bench#1', [(message, Report('x', 1, '200 OK',
                                                       0.0))])
                ended = time.perf_counter()
                commit[kind].append((committed - started) * 1000)
                round_trip[kind].append((ended - started) * 1000)
        for kind in queues:
            registry.unregister_queue(kind).close()
    rows = {}
    for kind in queues:
        p50, p99 = percentiles(commit[kind][10:])
        r50, r99 = percentiles(round_trip[kind][10:])
        rows[kind] = {'commit p50 ms': p50, 'commit p99 ms': p99,
                      'commit+reserve+ack p50 ms': r50,
                      'commit+reserve+ack p99 ms': r99}
    return rows


def median_rows(runs: list[dict]) -> dict:
    rows = {}
    for run in runs:
        for row, values in run.items():
            for metric, value in values.items():
                rows.setdefault(row, {}).setdefault(metric, []).append(value)
    return {row: {metric: statistics.median(v) for metric, v in m.items()
                  if None not in v}
            for row, m in rows.items()}


def table(rows: dict) -> str:
    metrics = list(dict.fromkeys(m for values in rows.values()
                                 for m in values))
    width = max(len(row) for row in rows) + 2
    lines = []
    for metric in metrics:
        lines.append(f'{metric}:')
        for row, values in rows.items():
            if metric in values:
                lines.append(f'  {row:<{width}}{values[metric]:>12,.2f}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='a smoke run: 300 tasks, 20 samples, 1 run')
    parser.add_argument('--tasks', type=int, help='tasks per row (10000)')
    parser.add_argument('--samples', type=int,
                        help='latency samples per URL (500)')
    parser.add_argument('--repeat', type=int, help='runs (3)')
    parser.add_argument('--json', metavar='FILE')
    args = parser.parse_args(argv)
    tasks = args.tasks or (300 if args.quick else 10_000)
    samples = args.samples or (20 if args.quick else 500)
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.monotonic()
    runs = []
    for _ in range(repeat):
        run = {f'cluster {n} primar{"y" if n == 1 else "ies"}':
               cluster_row(n, tasks) for n in PRIMARIES}
        run['one queue, 6 shards, 3 primaries'] = cluster_row(
            3, tasks, sharded=True)
        run.update(slot_rows(samples))
        run.update({f'{kind}': values for kind, values
                    in sentinel_rows(samples).items()})
        runs.append(run)
    rows = median_rows(runs)
    print(f'{tasks} tasks per cluster row over {QUEUES} queues, {samples} '
          f'latency samples per URL, median of {repeat} run(s); took '
          f'{time.monotonic() - started:.0f}s.')
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as file:
            json.dump({'tasks': tasks, 'samples': samples, 'runs': runs,
                       'rows': rows}, file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
