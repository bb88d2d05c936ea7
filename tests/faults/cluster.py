"""Web and worker processes of the fault app, which tests kill.

Built on functional.harness: a Cluster is a Deployment whose ``processes``
are the ones that must stay up (a wait fails at once if one of them dies);
processes a test kills or expects to exit move to ``retired``, and every
process, retired or not, appears in failure reports.
"""
from __future__ import annotations

import itertools
import os
import pathlib
import string
import subprocess
import time
import uuid

import requests
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.testing import free_port

from .faultapp import RELEASE_ALL, Ledger
from functional.harness import (
    OUTPUT_TAIL,
    START_TIMEOUT,
    WAIT_TIMEOUT,
    Deployment,
    Process,
    WaitFailed,
)

__all__ = ['Cluster', 'FaultProcess', 'SECRET', 'WaitFailed', 'cpu_seconds']

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATE = string.Template((HERE / 'fault.ini.in').read_text())

#: The secret the fault app's queue signs tasks with.
SECRET = 'fault-secret-1'

#: Consumer settings for quick faults: a consumer is gone one second after
#: its last heartbeat; sweeps and polls are frequent.
CONSUMER_DEFAULTS = {
    'concurrent_limit': 1,
    'lease_timeout': 1,
    'poll_interval': 0.5,
    'retry_delay': 0.2,
    'staged_grace': 30,
    'stop_timeout': 10,
}

#: A short timeout: a request meeting a dead Redis or database fails fast.
#: A SQLite file has no server to die: its timeout is only how long a
#: writer waits for its turn, which on a loaded machine (the suite beside
#: other work on two cores) can stretch past a few seconds.
QUEUE_DEFAULTS = {'redis': {'socket_timeout': 2}, 'sql': {'timeout': 2},
                  'sqlite': {'timeout': 15}}


class FaultProcess(Process):
    """A ``wsgi-taskqueue`` command; each start has a log file of its own
    (a worker restarted under the same name keeps both logs)."""

    _numbers = itertools.count(1)

    def __init__(self, command: str, ini: pathlib.Path, label: str):
        number = next(self._numbers)
        self.label = label
        super().__init__(
            command, ini,
            title=f'#{number} {label}: wsgi-taskqueue {command} {ini.name}',
            log_path=ini.with_name(f'{label}-{number}.log'),
            pythonpath=[str(HERE.parent)])

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log_path.read_text(errors='replace')

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def report(self) -> str:
        state = ('running' if self.running
                 else f'exited with status {self.popen.returncode}')
        output = self.output()
        if len(output) > OUTPUT_TAIL:
            output = '[...]\n' + output[-OUTPUT_TAIL:]
        return f'--- {self.title}, pid {self.pid} ({state}) ---\n{output}'


class Cluster(Deployment):
    """The processes, ledger and flags of one fault test, in its
    ``directory``; ``redis_url`` is the URL of the suite's Redis, flushed
    (or of a SQL queue's database, its tables emptied)."""

    def __init__(self, directory: pathlib.Path, redis_url: str):
        super().__init__(directory)
        self.redis_url = redis_url
        self.kind = 'redis' if redis_url.startswith('redis') else 'sql'
        self.retired: list[FaultProcess] = []
        self.flags = directory / 'flags'
        self.flags.mkdir()
        self.ledger = Ledger(str(directory / 'ledger.sqlite'))
        self.url: str | None = None
        self.web_process: FaultProcess | None = None
        #: The queue as the test process sees it: to enqueue without a web
        #: process, and to look into Redis.
        if self.kind == 'redis':
            self.queue = wsgi_taskqueue.RedisQueue(
                url=redis_url, secrets=[SECRET], socket_timeout=5)
        else:
            self.queue = wsgi_taskqueue.SqlQueue(
                url=redis_url, secrets=[SECRET], timeout=5)
        wsgi_taskqueue.register_queue('default', self.queue)

    # -- processes ---------------------------------------------------------

    def write_ini(self, label: str, consumer: dict | None = None,
                  redis_url: str | None = None,
                  **queue_settings) -> pathlib.Path:
        """An ini for one process; a worker's has a [taskqueue-server]
        section with ``consumer`` over CONSUMER_DEFAULTS.  ``redis_url``
        (a proxy's, say) replaces the test Redis's."""
        defaults = QUEUE_DEFAULTS[
            'sqlite' if self.redis_url.startswith('sqlite') else self.kind]
        settings = dict(defaults, **queue_settings)
        text = TEMPLATE.substitute(
            ledger=self.ledger.path, flags=self.flags, type=self.kind,
            redis_url=redis_url or self.redis_url, secret=SECRET,
            port=free_port(),
            queue_settings=''.join(f'{k} = {v}\n'
                                   for k, v in settings.items()))
        if consumer is not None:
            text += '\n[taskqueue-server]\n' + ''.join(
                f'{k} = {v}\n'
                for k, v in dict(CONSUMER_DEFAULTS, **consumer).items())
        path = self.directory / f'{label}.ini'
        path.write_text(text)
        return path

    def web(self, redis_url: str | None = None, **queue_settings) -> str:
        """Serve the fault app without consumers; return its URL."""
        self.url = self.serve(self.write_ini('web', None, redis_url,
                                             **queue_settings))
        self.web_process = self.processes[-1]
        return self.url

    def worker(self, name: str, wait: bool = True,
               redis_url: str | None = None, queue_settings: dict | None = None,
               sections: str = '', **consumer) -> FaultProcess:
        """A worker whose consumer is called ``name``; with ``wait``,
        return once its consumer started and its signal handlers are in
        place.  ``queue_settings`` go to its [taskqueue] section;
        ``sections`` (ini text, ``$redis_url`` and ``$secret`` filled in)
        are added to its ini."""
        ini = self.write_ini(f'worker-{name}', dict(consumer, name=name),
                             redis_url, **(queue_settings or {}))
        if sections:
            ini.write_text(ini.read_text() + '\n' + string.Template(
                sections).substitute(redis_url=redis_url or self.redis_url,
                                     secret=SECRET))
        process = self._start('worker', ini, label=f'worker-{name}')
        if wait:
            self.wait_for_output(process, 'worker running',
                                 f'worker {name} to start', START_TIMEOUT)
        return process

    def _start(self, command: str, ini: pathlib.Path,
               label: str | None = None) -> FaultProcess:
        process = FaultProcess(command, ini, label or command)
        self.processes.append(process)
        return process

    def kill(self, process: FaultProcess) -> None:
        """kill -9, as the OOM killer or a power cut does."""
        self.retire(process)
        process.popen.kill()
        process.popen.wait()

    def retire(self, process: FaultProcess) -> None:
        """From now on ``process`` may exit without failing the waits."""
        if process in self.processes:
            self.processes.remove(process)
            self.retired.append(process)

    def wait_until(self, condition, what: str,
                   timeout: float = WAIT_TIMEOUT, fail: bool = True) -> bool:
        """Deployment.wait_until, plus ``fail=False``: after ``timeout``,
        return False instead of failing (the caller's assertions then say
        what is wrong).  A process that must stay up and died still fails
        at once."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return True
            except Exception as exc:
                raise WaitFailed(f'{exc!r} while waiting for {what}\n'
                                 + self.report()) from exc
            dead = [p.title for p in self.processes if not p.running]
            if dead:
                raise WaitFailed(f'{", ".join(dead)} exited while waiting '
                                 f'for {what}\n' + self.report())
            if time.monotonic() > deadline:
                if not fail:
                    return False
                raise WaitFailed(f'no {what} within {timeout}s\n'
                                 + self.report())
            time.sleep(0.05)

    def wait_for_exit(self, process: FaultProcess,
                      timeout: float = WAIT_TIMEOUT) -> int:
        self.retire(process)
        try:
            return process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitFailed(f'{process.title} did not exit within '
                             f'{timeout}s\n' + self.report()) from None

    def wait_for_output(self, process: FaultProcess, text: str, what: str,
                        timeout: float = WAIT_TIMEOUT) -> None:
        self.wait_until(lambda: text in process.output(), what, timeout)

    def report(self) -> str:
        processes = self.retired + self.processes
        return '\n'.join(process.report() for process in processes)

    def stop(self) -> None:
        self.raise_flag(RELEASE_ALL)
        super().stop()
        for process in self.retired:
            if process.running:
                process.popen.kill()
                process.popen.wait()
        self.ledger.close()

    # -- tasks ---------------------------------------------------------------

    def enqueue(self, count: int = 1, name: str | None = None,
                timeout: float = 30, headers: dict | None = None,
                **params) -> requests.Response:
        """One enqueue request to the web process, with ``headers``;
        ``name`` is the request's key in the ledger's ``added`` table."""
        return requests.post(
            f'{self.url}/enqueue', timeout=timeout, headers=headers,
            params=dict(params, request=name or uuid.uuid4().hex,
                        count=count))

    def add(self, count: int = 1, **params) -> list[str]:
        """Enqueue from the test process: one transaction of ``count``
        tasks; return their ids."""
        with transaction.manager:
            return [taskqueue.add('/task', method='POST', payload=None,
                                  params=params) for _ in range(count)]

    def raise_flag(self, name: str) -> None:
        (self.flags / name).touch()

    def wait_for_start(self, task_id: str, count: int = 1) -> list[tuple]:
        """Wait until a blocking task started ``count`` times; return the
        starts (task_id, attempt, pid)."""
        self.wait_until(lambda: len(self.ledger.starts(task_id)) >= count,
                        f'start #{count} of task {task_id}')
        return self.ledger.starts(task_id)

    def wait_for_runs(self, task_ids, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until each of ``task_ids`` ran at least once."""
        wanted = set(task_ids)

        def all_ran():
            ran = {run[0] for run in self.ledger.runs()}
            return wanted <= ran
        self.wait_until(all_ran, f'runs of {len(wanted)} task(s)', timeout)

    # -- the queue -----------------------------------------------------------

    def write_raw(self, messages) -> None:
        """Put ``messages`` straight into the queue's storage, ahead of
        what is pending, as whoever can write to Redis or the database
        could."""
        if self.kind == 'redis':
            self.queue.client.lpush(self.queue.pending_key, *messages)
            return
        with self.queue.store.transaction() as connection:
            connection.execute(self.queue.tasks_table.insert(), [
                {'queue': self.queue.name, 'state': 'ready', 'due': 0,
                 'message': message} for message in messages])

    def counts(self) -> dict:
        return self.queue.counts()

    def settled(self) -> bool:
        """Nothing staged, pending, delayed or in flight: no task can run
        any more unless someone adds one."""
        counts = self.counts()
        return not (counts['staged'] or counts['pending'] or
                    counts['delayed'] or counts['processing'])

    def dead_letters(self) -> list:
        return wsgi_taskqueue.dead_letters('default')

    def lease_expired(self, name: str) -> bool:
        """Whether the consumer ``name`` holds no live lease (by the
        backend's clock, as the consumers judge it)."""
        return not any(consumer['name'] == name and consumer['alive']
                       for consumer in self.queue.consumers())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from
    /proc/<pid>/stat."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rpartition(')')[2].split()
    # Fields 14 and 15 of proc(5), counted from 1; after the command name
    # (field 2) the list starts at field 3.
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf('SC_CLK_TCK')

