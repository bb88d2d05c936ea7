"""The examples, served as a user serves them: ``wsgi-taskqueue serve`` or
``worker`` in subprocesses, from copies of the examples' ini files."""
from __future__ import annotations

import configparser
import os
import pathlib
import subprocess
import sys
import time

import requests

from wsgi_taskqueue.testing import free_port

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / 'examples'

#: The Pyramid example is imported from its folder (as if installed with
#: ``pip install -e examples/pyramid_app``).
PYTHONPATH = [str(EXAMPLES / 'pyramid_app')]

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
                 pythonpath: list[str] = PYTHONPATH):
        self.title = title or f'wsgi-taskqueue {command} {ini.name}'
        self.log_path = log_path or ini.with_name(f'{command}-{ini.stem}.log')
        path = pythonpath + os.environ.get('PYTHONPATH', '').split(os.pathsep)
        env = dict(os.environ, PYTHONUNBUFFERED='1',
                   PYTHONPATH=os.pathsep.join(filter(None, path)))
        with open(self.log_path, 'wb') as log:
            self.popen = subprocess.Popen(
                [sys.executable, '-m', 'wsgi_taskqueue', command, str(ini)],
                cwd=ini.parent, env=env, stdin=subprocess.DEVNULL,
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

    Ini files are copies of the examples with a free port and the test's
    Redis; ``%(here)s`` then puts the apps' SQLite files beside them.
    """

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.processes: list[Process] = []

    def ini(self, example: str, redis_url: str | None = None,
            database_url: str | None = None, **queue_settings
            ) -> pathlib.Path:
        """Copy ``examples/<example>`` here, on a free port, using
        ``redis_url`` for its Redis queues and ``database_url`` for its
        PostgreSQL queues and app database; ``queue_settings`` go into its
        [taskqueue] section."""
        parser = configparser.RawConfigParser()  # keeps %(here)s as it is
        parser.optionxform = str
        parser.read(EXAMPLES / example)
        parser['server:main']['listen'] = f'127.0.0.1:{free_port()}'
        for section in parser.sections():
            if parser[section].get('type') == 'redis':
                if redis_url is None:
                    raise ValueError(f'{example} needs a redis_url')
                parser[section]['url'] = redis_url
            for key in ('url', 'sqlalchemy.url'):
                if parser[section].get(key, '').startswith('postgresql'):
                    if database_url is None:
                        raise ValueError(f'{example} needs a database_url')
                    parser[section][key] = database_url
        parser['taskqueue'].update(queue_settings)
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
        process = Process(command, ini)
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
