"""Where our consumer's time goes: py-spy on a drain of our worker.

    python benchmarks/profile_ours.py [--prefetch P] [--drains D] [--jobs N]

Starts a private redis-server and the worker of :mod:`systems.ours` (one
consumer, one thread, prefetch ``P``), attaches ``py-spy record`` to it,
makes ``N`` tasks pending at once and stops sampling when all of them ran;
``D`` times, with a new worker each time. Prints the functions with the
largest share of the dispatch thread's wall-clock samples (``--idle``:
waiting for Redis's replies counts), by their own time and with what they
call; time parked in ``BLMOVE`` waiting for work is left out.

py-spy does not stop the worker to sample it, but on a small machine its
own CPU time slows the worker and Redis and inflates the waits for Redis:
keep the rate low (the drain rate under py-spy is printed, to compare with
the benchmark's) and add drains for more samples. Needs py-spy (``pip install
py-spy``) and the right to ptrace the worker.
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from wsgi_taskqueue.testing import RedisServer

from systems import probe, server

#: A frame of the app's view: the thread that has it dispatches the tasks.
APP_FRAME = 'ours_app.py'
#: A frame that means the consumer is parked waiting for work.
PARKED = '.blmove ('
#: Frames of our code: the library and the benchmark's app.
OUR_CODE = (' (wsgi_taskqueue/', ' (systems/')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--prefetch', type=int, default=1)
    parser.add_argument('--drains', type=int, default=10,
                        help='drains profiled, their samples added (10)')
    parser.add_argument('--jobs', type=int, default=10_000,
                        help='tasks per drain (10000)')
    parser.add_argument('--rate', type=int, default=200,
                        help='samples per second (200)')
    parser.add_argument('--top', type=int, default=15,
                        help='functions shown per table (15)')
    return parser.parse_args(argv)


def record(jobs: int, prefetch: int, rate: int, output: str) -> float:
    """Drain ``jobs`` tasks through our worker under py-spy; its rate, in
    tasks per second (py-spy's own CPU use slows it down)."""
    from systems import ours  # reads the server's URL when imported

    py_spy = shutil.which('py-spy', path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get('PATH', '')]))
    if py_spy is None:
        raise SystemExit('py-spy not found: pip install py-spy')
    with probe.Probe.create(jobs) as runs, \
            ours.worker(prefetch).running(runs.path) as running:
        running.wait(server.blocked_clients, 1, interval=0.01)
        spy = subprocess.Popen(
            [py_spy, 'record', '--pid', str(running.processes[0][0].pid),
             '--idle', '--threads', '--function', '--nonblocking',
             '--rate', str(rate), '--format', 'raw', '--output', output],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        spy.stdout.readline()  # 'Sampling process ...': attached
        ours.burst(jobs)
        running.wait(runs.ran, jobs, interval=0.01)
        spy.send_signal(signal.SIGINT)
        _, errors = spy.communicate(timeout=60)
        if spy.returncode:
            raise SystemExit(f'py-spy failed: {errors}')
        runs.check_once()
        return (jobs - 1) / (max(runs.stamps) - min(runs.stamps))


def dispatch_stacks(output: str) -> list[tuple[list[str], int]]:
    """The dispatch thread's stacks (frames outermost first) and their
    sample counts, parked ones left out."""
    threads = collections.defaultdict(list)
    with open(output) as f:
        for line in f:
            stack, _, count = line.rstrip('\n').rpartition(' ')
            thread, *frames = stack.split(';')
            threads[thread].append((frames, int(count)))
    dispatching = [stacks for stacks in threads.values()
                   if any(APP_FRAME in frame for frames, _ in stacks
                          for frame in frames)]
    if len(dispatching) != 1:
        raise SystemExit(f'expected one dispatch thread, found '
                         f'{len(dispatching)}')
    return [(frames, count) for frames, count in dispatching[0]
            if frames and not any(PARKED in frame for frame in frames)]


def summary(stacks: list[tuple[list[str], int]], jobs: int, rate: int,
            top: int) -> str:
    total = sum(count for _, count in stacks)
    own = collections.Counter()
    inclusive = collections.Counter()
    for frames, count in stacks:
        own[_function(frames[-1])] += count
        for frame in {_function(frame) for frame in frames}:
            if any(code in frame for code in OUR_CODE):
                inclusive[frame] += count
    per_task = total / rate / jobs * 1e6
    lines = [f'{total} samples of the dispatch thread at {rate}/s: '
             f'{per_task:.0f} us per task, wall clock (waits for Redis '
             f'included, parked time not)']
    for title, counter in (('own time', own),
                           ('total time, our functions', inclusive)):
        lines += ['', f'top {top} by {title}:',
                  f'  {"share":>6} {"us/task":>8}  function']
        for frame, count in counter.most_common(top):
            lines.append(f'  {count / total:6.1%} '
                         f'{count / total * per_task:8.1f}  {frame}')
    return '\n'.join(lines)


def _function(frame: str) -> str:
    """``name (package/module.py:12)`` -> ``name (package/module.py)``."""
    name, _, where = frame.partition(' (')
    return f'{name} ({where.rstrip(")").rpartition(":")[0]})'


def main(argv=None) -> int:
    args = parse_args(argv)
    speeds, stacks = [], []
    with RedisServer() as redis_server, \
            tempfile.TemporaryDirectory(prefix='bench-profile-') as directory:
        os.environ[server.URL_ENV] = redis_server.url
        for drain in range(args.drains):
            output = os.path.join(directory, f'stacks-{drain}.txt')
            server.flush()
            speeds.append(record(args.jobs, args.prefetch, args.rate, output))
            stacks += dispatch_stacks(output)
    print(f'{args.drains} drains of {args.jobs} tasks, prefetch '
          f'{args.prefetch}, at {statistics.median(speeds):,.0f} tasks/s '
          f'(median) under py-spy; ' + summary(
              stacks, args.drains * args.jobs, args.rate, args.top))
    return 0


if __name__ == '__main__':
    sys.exit(main())
