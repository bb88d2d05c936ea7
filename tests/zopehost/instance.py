"""Zope instances as a site runs them: ``mkwsgiinstance``, then the stock
``runwsgi etc/zope.ini`` in a subprocess, configured through zope.conf and
a ``package-includes`` slug only."""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import time

import requests

from wsgi_taskqueue.testing import free_port, stop_process

from xdist_sharing import locked

BIN = pathlib.Path(sys.executable).parent
ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Zope 5.x lives in an environment of its own (it needs ZODB < 6.3); the
#: suite builds it once, beside the test environment.
ZOPE5_ENV = ROOT / '.venv-zope5'
ZOPE5_REQUIREMENTS = ['Zope[wsgi] >= 5.14, < 6', 'ZODB < 6.3']
#: Held by a process while it installs from the source tree (which writes
#: its egg-info) or into an environment or eggs directory of the suite's:
#: workers of a parallel run, or parallel runs, one at a time.
BUILD_LOCK = ROOT / '.build.lock'
#: The test site's views, importable as if installed.
TESTAPP = pathlib.Path(__file__).resolve().parent / 'zopeapp'
START_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0
ADMIN = ('admin', 'admin-password')


def zope5_bin() -> pathlib.Path:
    """The bin folder of the Zope 5 environment, built if missing, and
    installed again when the package's dependencies (setup.cfg) changed
    since; one process at a time (parallel workers, parallel runs)."""
    runwsgi = ZOPE5_ENV / 'bin' / 'runwsgi'
    stamp = ZOPE5_ENV / 'setup.cfg.sha256'
    wanted = hashlib.sha256((ROOT / 'setup.cfg').read_bytes()).hexdigest()
    with locked(BUILD_LOCK):
        if not (ZOPE5_ENV / 'bin' / 'pip').exists():
            subprocess.run([sys.executable, '-m', 'venv', str(ZOPE5_ENV)],
                           check=True)
        if not runwsgi.exists() or not stamp.exists() \
                or stamp.read_text() != wanted:
            subprocess.run([str(ZOPE5_ENV / 'bin' / 'pip'), 'install',
                            '--quiet', '-e', f'{ROOT}[redis,zope]', 'ZEO',
                            *ZOPE5_REQUIREMENTS], check=True)
            stamp.write_text(wanted)
    return runwsgi.parent


class ZopeInstance:
    """An instance home in ``directory``: ``zope_conf`` is appended to the
    generated zope.conf (``%import wsgi_taskqueue`` and the sections, or a
    ZEO ``<zodb_db>``), the package ZCML goes in as a slug."""

    def __init__(self, directory: pathlib.Path, zope_conf: str,
                 zodb: str | None = None, bin_dir: pathlib.Path = BIN):
        self.directory = directory
        self.bin_dir = bin_dir
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.process: subprocess.Popen | None = None
        subprocess.run([str(bin_dir / 'mkwsgiinstance'), '-d', str(directory),
                        '-u', ':'.join(ADMIN)], check=True,
                       stdout=subprocess.DEVNULL)
        etc = directory / 'etc'
        self.stock_zope_ini = (etc / 'zope.ini').read_text()
        # The one line of zope.ini a site changes anyway: where it listens.
        (etc / 'zope.ini').write_text(self.stock_zope_ini.replace(
            'port = 8080', f'port = {self.port}'))
        conf = (etc / 'zope.conf').read_text()
        if zodb is not None:  # replace the FileStorage database
            start = conf.index('<zodb_db main>')
            end = conf.index('</zodb_db>', start) + len('</zodb_db>')
            conf = conf[:start] + zodb + conf[end:]
        (etc / 'zope.conf').write_text(conf + '\n' + zope_conf)
        includes = etc / 'package-includes'
        includes.mkdir(exist_ok=True)
        (includes / 'wsgi_taskqueue-configure.zcml').write_text(
            '<include package="wsgi_taskqueue" />\n')
        (includes / 'testapp-configure.zcml').write_text(
            '<include package="taskqueue_zope_testapp" />\n')

    @property
    def log_path(self) -> pathlib.Path:
        return self.directory / 'runwsgi.log'

    def start(self) -> ZopeInstance:
        env = dict(os.environ, PYTHONUNBUFFERED='1',
                   PYTHONPATH=os.pathsep.join(filter(None, [
                       str(TESTAPP), os.environ.get('PYTHONPATH', '')])))
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                [str(self.bin_dir / 'runwsgi'), 'etc/zope.ini'],
                cwd=self.directory, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        self.wait_until(self._answers, 'answer HTTP', START_TIMEOUT)
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        code, self.process = stop_process(self.process, timeout), None
        return code

    def get(self, path: str, auth=ADMIN, **kwargs) -> requests.Response:
        return requests.get(self.url + path, auth=auth, timeout=30, **kwargs)

    def records(self) -> list[dict]:
        return self.get('/@@records', auth=None).json()

    def record_of(self, task_id: str) -> dict:
        """Wait for the record of ``task_id``; return it."""
        found = []

        def recorded():
            found[:] = [r for r in self.records() if r['task_id'] == task_id]
            return found
        self.wait_until(recorded, f'task {task_id} to run')
        return found[0]

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors='replace')[-6000:]
        except FileNotFoundError:
            return ''

    def wait_until(self, condition, what: str,
                   timeout: float = WAIT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f'Zope exited (status {self.process.returncode}) '
                    f'waiting to {what}:\n{self.output()}')
            if time.monotonic() > deadline:
                raise AssertionError(f'Zope did not {what} within {timeout}s'
                                     f':\n{self.output()}')
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + '/@@records', timeout=2).ok
        except requests.RequestException:
            return False
