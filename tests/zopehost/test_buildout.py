"""``buildout/`` as collective.taskqueue's README laid it out: bin/buildout
on a fresh directory, then the ZEO server, the web instance and the worker
instance started by their scripts; a task added on the web instance runs
in the worker."""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from wsgi_taskqueue.testing import RedisServer, free_port

from .instance import BUILD_LOCK, ROOT, TESTAPP
from xdist_sharing import locked

#: zc.buildout and its recipes, in an environment of their own (as a site
#: installs them: ``pip install zc.buildout``).
BUILDOUT_ENV = ROOT / '.venv-buildout'
START_TIMEOUT = 90.0

pytestmark = pytest.mark.slow


def buildout_env() -> pathlib.Path:
    """bin/buildout of the environment, built by one process at a time."""
    script = BUILDOUT_ENV / 'bin' / 'buildout'
    with locked(BUILD_LOCK):
        if not script.exists():
            subprocess.run([sys.executable, '-m', 'venv', str(BUILDOUT_ENV)],
                           check=True)
            subprocess.run([str(BUILDOUT_ENV / 'bin' / 'pip'), 'install',
                            '--quiet', 'zc.buildout'], check=True)
    return script


class Script:
    """A ``bin/`` script run in the foreground (``fg``), its output in a
    file."""

    def __init__(self, directory: pathlib.Path, name: str):
        self.log = directory / f'{name}.log'
        with open(self.log, 'wb') as log:
            self.process = subprocess.Popen(
                [str(directory / 'bin' / name), 'fg'], cwd=directory,
                stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors='replace')[-4000:]


def wait_until(condition, what, scripts, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        for script in scripts:
            if script.process.poll() is not None:
                raise AssertionError(f'{script.log.stem} exited waiting to '
                                     f'{what}:\n{script.output()}')
        if time.monotonic() > deadline:
            raise AssertionError(f'no {what} within {timeout}s:\n' + '\n'.join(
                script.output() for script in scripts))
        time.sleep(0.1)


def answers(url):
    try:
        return requests.get(url + '/@@records', timeout=2).ok
    except requests.RequestException:
        return False


#: Pins on the command line, as a site's [versions] would have them.
ZOPE_VERSIONS = {
    'zope6': [],
    'zope5': ['versions:Zope=5.14.2', 'versions:ZODB=6.2'],
}


@pytest.mark.parametrize('zope', sorted(ZOPE_VERSIONS))
def test_the_buildout_builds_a_web_and_a_worker_instance_that_run_tasks(
        tmp_path, zope):
    directory = tmp_path / 'site'
    directory.mkdir()
    shutil.copy(ROOT / 'buildout' / 'buildout.cfg', directory)
    zeo, web, worker = free_port(), free_port(), free_port()
    buildout = buildout_env()
    with RedisServer(unix_socket=True) as redis:
        with locked(BUILD_LOCK):  # the eggs directory, the develop egg
            subprocess.run([
                str(buildout), '-c', 'buildout.cfg',
                f'buildout:develop={ROOT}',
                # Eggs are kept between runs (a fresh machine downloads
                # them).
                f'buildout:eggs-directory={BUILDOUT_ENV / "eggs"}',
                f'redis:socket={redis.socket_path}',
                f'zeoserver:zeo-address=127.0.0.1:{zeo}',
                f'instance:http-address=127.0.0.1:{web}',
                f'worker:http-address=127.0.0.1:{worker}',
                # The test site's views, as a site adds its own package.
                f'instance:extra-paths={TESTAPP}',
                'instance:zcml=wsgi_taskqueue taskqueue_zope_testapp',
                *ZOPE_VERSIONS[zope],
            ], cwd=directory, check=True, stdout=subprocess.DEVNULL)
        # The instance script puts its eggs on sys.path: which Zope it is.
        script = (directory / 'bin' / 'instance').read_text()
        assert f'Zope-{zope[-1]}.' in script
        scripts = [Script(directory, 'zeoserver')]
        try:
            web_url, worker_url = (f'http://127.0.0.1:{web}',
                                   f'http://127.0.0.1:{worker}')
            # One after the other: the first start of an instance creates
            # the site's root objects, and two at once would conflict.
            scripts.append(Script(directory, 'instance'))
            wait_until(lambda: answers(web_url), 'web instance', scripts)
            scripts.append(Script(directory, 'worker'))
            wait_until(lambda: answers(worker_url), 'worker', scripts)
            response = requests.get(f'{web_url}/@@enqueue?create=from-web',
                                    auth=('admin', 'admin'), timeout=30)
            assert response.status_code == 200, response.text
            task_id = response.text
            records = []

            def ran():
                records[:] = [r for r in requests.get(
                    f'{web_url}/@@records', timeout=10).json()
                    if r['task_id'] == task_id]
                return records
            wait_until(ran, 'task run', scripts)
            [record] = records
            assert record['found'] is True and record['user'] == 'admin'
            logs = directory / 'var' / 'log'
            assert 'started 1 task queue consumer' in (
                logs / 'worker.log').read_text()
            assert 'consumer' not in (logs / 'instance.log').read_text()
        finally:
            for script in reversed(scripts):
                script.stop()
