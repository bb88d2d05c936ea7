"""The examples, served as a user serves them: ``wsgi-taskqueue serve`` or
``worker`` in subprocesses, from copies of the examples' ini files."""
from __future__ import annotations

import configparser
import contextlib
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import requests

from wsgi_taskqueue.testing import free_port

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / 'examples'

#: The Pyramid and Flask examples are imported from their folders (as if
#: installed with ``pip install -e examples/pyramid_app``).
PYTHONPATH = [str(EXAMPLES / 'pyramid_app'), str(EXAMPLES / 'flask')]

#: Generous for a loaded two-core machine; a hang still fails in time.
START_TIMEOUT = 30.0
WAIT_TIMEOUT = 30.0
#: serve.STOP_TIMEOUT lets tasks in flight finish; ours finish at once.
STOP_TIMEOUT = 15.0
#: How much of each process's output a failure message shows.
OUTPUT_TAIL = 6000


class WaitFailed(AssertionError):
    """A wait timed out, or a process died; the message has the output of
    every process."""


class Process:
    """One ``wsgi-taskqueue`` command in a subprocess.

    Its output goes to a file, not a pipe, which nobody would read while
    the test runs and which would block the process once full.
    """

    def __init__(self, command: str, ini: pathlib.Path,
                 title: str | None = None,
                 log_path: pathlib.Path | None = None,
                 pythonpath: list[str] = PYTHONPATH,
                 variables: dict | None = None,
                 argv: list[str] | None = None, env: dict | None = None):
        """``argv`` (with ``title`` and ``log_path``): another command than
        ``wsgi-taskqueue``, run in the folder of ``ini``; ``env``: more
        environment variables."""
        self.title = title or f'wsgi-taskqueue {command} {ini.name}'
        self.log_path = log_path or ini.with_name(f'{command}-{ini.stem}.log')
        path = pythonpath + os.environ.get('PYTHONPATH', '').split(os.pathsep)
        env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}),
                   PYTHONPATH=os.pathsep.join(filter(None, path)))
        argv = argv or [
            sys.executable, '-m', 'wsgi_taskqueue', command, str(ini),
            *(f'{k}={v}' for k, v in (variables or {}).items())]
        with open(self.log_path, 'wb') as log:
            self.popen = subprocess.Popen(
                argv, cwd=ini.parent, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM, as a process manager stops it; SIGKILL if it hangs."""
        if self.running:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def report(self) -> str:
        state = ('running' if self.running
                 else f'exited with status {self.popen.returncode}')
        output = self.log_path.read_text(errors='replace')[-OUTPUT_TAIL:]
        return f'--- {self.title} ({state}) ---\n{output}'


class Deployment:
    """The processes of one test, in the test's own directory.

    Ini files are copies of the examples with a free port; the test's
    Redis is passed as the examples' users pass theirs, as the command's
    ``redis_url=URL`` argument.  ``%(here)s`` puts the apps' SQLite files
    beside the copies.
    """

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.processes: list[Process] = []
        #: The NAME=VALUE arguments of the commands serving each ini.
        self.variables: dict[pathlib.Path, dict] = {}

    def ini(self, example: str, redis_url: str | None = None,
            database_url: str | None = None) -> pathlib.Path:
        """Copy ``examples/<example>`` here, on a free port, to be served
        with ``redis_url`` for its Redis queues and ``database_url`` for
        its PostgreSQL queue and app database."""
        parser = configparser.RawConfigParser()  # keeps %(here)s as it is
        parser.optionxform = str
        parser.read(EXAMPLES / example)
        parser['server:main']['listen'] = f'127.0.0.1:{free_port()}'
        variables = {}
        for name, value in (('redis_url', redis_url),
                            ('database_url', database_url)):
            if name in parser.defaults():
                if value is None:
                    raise ValueError(f'{example} needs a {name}')
                variables[name] = value
        if variables:
            self.variables[self.directory / pathlib.Path(example).name] = \
                variables
        target = self.directory / pathlib.Path(example).name
        with open(target, 'w') as file:
            parser.write(file)
        return target

    def serve(self, ini: pathlib.Path) -> str:
        """Start ``wsgi-taskqueue serve``; return the app's URL once it
        answers."""
        process = self._start('serve', ini)
        url = 'http://' + _listen(ini)
        self.wait_until(lambda: _answers(url), f'{process.title} to answer',
                        START_TIMEOUT)
        return url

    def worker(self, ini: pathlib.Path) -> Process:
        return self._start('worker', ini)

    def wait_until(self, condition, what: str,
                   timeout: float = WAIT_TIMEOUT) -> None:
        """Poll ``condition`` until it is true; fail at once if it raises
        or a process died, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except Exception as exc:
                raise WaitFailed(f'{exc!r} while waiting for {what}\n'
                                 + self.report()) from exc
            if any(not process.running for process in self.processes):
                raise WaitFailed(f'a process exited while waiting for '
                                 f'{what}\n' + self.report())
            if time.monotonic() > deadline:
                raise WaitFailed(f'no {what} within {timeout}s\n'
                                 + self.report())
            time.sleep(0.05)

    def report(self) -> str:
        """The output of every process, for failure messages."""
        return '\n'.join(process.report() for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def _start(self, command: str, ini: pathlib.Path) -> Process:
        process = Process(command, ini, variables=self.variables.get(ini))
        self.processes.append(process)
        return process


def _listen(ini: pathlib.Path) -> str:
    parser = configparser.RawConfigParser()
    parser.read(ini)
    return parser['server:main']['listen']


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return False
    return True


def runs_by_task(database: pathlib.Path, table: str
                 ) -> dict[str, list[sqlite3.Row]]:
    """The rows of ``table`` (one per task run, with a ``task_id``) in an
    example app's SQLite ``database``, by task id."""
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        runs: dict = {}
        for row in db.execute(f'SELECT * FROM {table}'):
            runs.setdefault(row['task_id'], []).append(row)
        return runs


def notes(url: str) -> list[dict]:
    """``GET /notes`` of an example app."""
    response = requests.get(f'{url}/notes', timeout=10)
    response.raise_for_status()
    return response.json()
