"""Private PostgreSQL and MariaDB servers for tests and benchmarks.

As with ``testing.RedisServer``, a suite never touches a database someone
else runs: each server is made in a temporary directory (``initdb`` and
``pg_ctl``; ``mariadb-install-db`` and ``mariadbd``), listens on a free
port of 127.0.0.1 and is removed afterwards.  Run as root, the servers run
as the ``postgres`` and ``mysql`` users the Debian packages create (neither
starts as root).

One server can serve several processes (the workers of a parallel test
run): the process that started it passes on ``handle()``, the others
attach with ``PostgresServer(**handle)``, and each uses a database of its
own (``create_database``).  Any of them can stop it.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from .testing import free_port, stop_process

__all__ = ['PostgresServer', 'MariaDBServer']


class _Server:
    """What both servers share: a directory, a port, waiting on a
    condition with a deadline."""

    #: The system user a server runs as when we are root.
    system_user = ''

    def __init__(self, port: int | None = None,
                 directory: str | None = None):
        """A new server in a temporary directory; or, with the ``port``
        and ``directory`` of a running one (its ``handle()``), that
        server."""
        self.running = directory is not None
        self.port = port or free_port()
        self.directory = directory or tempfile.mkdtemp(
            prefix=f'wsgi-taskqueue-{self.kind}-')
        self.data = os.path.join(self.directory, 'data')
        if self.running:
            return
        if os.getuid() == 0:
            user = pwd.getpwnam(self.system_user)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._initialize()

    def handle(self) -> dict:
        """What another process needs to use (and stop) this server."""
        return {'port': self.port, 'directory': self.directory}

    @property
    def url(self) -> str:
        """The URL of the database ``tasks``."""
        return self.database_url('tasks')

    def _command(self, *args) -> list[str]:
        """``args`` run as the server's user when we are root."""
        if os.getuid() == 0:
            return ['setpriv', f'--reuid={self.system_user}',
                    f'--regid={self.system_user}', '--init-groups', *args]
        return list(args)

    def _run(self, *args) -> None:
        result = subprocess.run(self._command(*args), capture_output=True,
                                text=True, cwd=self.directory)
        if result.returncode:
            raise RuntimeError(f'{args[0]} failed ({result.returncode}): '
                               f'{result.stderr or result.stdout}')

    def _wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f'{self.kind} on port {self.port} did not '
                                   f'{what} within {timeout}s')
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)


def _postgres_bin(program: str) -> str:
    found = shutil.which(program) or next(iter(sorted(
        glob.glob(f'/usr/lib/postgresql/*/bin/{program}'), reverse=True)),
        None)
    if found is None:
        raise RuntimeError(f'{program!r} not found; install PostgreSQL '
                           f'(Debian: apt-get install postgresql)')
    return found


class PostgresServer(_Server):
    """A PostgreSQL cluster of its own, database ``tasks``, user
    ``postgres`` trusted on 127.0.0.1."""

    kind = 'postgresql'
    system_user = 'postgres'

    def __init__(self, port: int | None = None,
                 directory: str | None = None):
        super().__init__(port, directory)
        #: Whether the database ``tasks`` exists (made at the first start).
        self._created = self.running

    def _initialize(self) -> None:
        self._run(_postgres_bin('initdb'), '-D', self.data, '-U', 'postgres',
                  '--auth=trust', '-E', 'UTF8', '--no-sync')

    def database_url(self, database: str) -> str:
        return f'postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}'

    def create_database(self, database: str) -> str:
        """Create ``database``; return its URL."""
        self._run(_postgres_bin('createdb'), '-h', '127.0.0.1', '-p',
                  str(self.port), '-U', 'postgres', database)
        return self.database_url(database)

    def start(self, timeout: float = 30.0) -> PostgresServer:
        # fsync off: a killed server keeps what it committed (the page
        # cache survives it), which is all the fault tests need.
        self._run(_postgres_bin('pg_ctl'), '-D', self.data, '-w',
                  '-t', str(int(timeout)), '-l',
                  os.path.join(self.directory, 'log'), '-o',
                  f'-p {self.port} -k {self.directory} '
                  f'-c listen_addresses=127.0.0.1 -c fsync=off '
                  f'-c max_connections=200', 'start')
        self.running = True
        if not self._created:
            self.create_database('tasks')
            self._created = True
        return self

    def stop(self, mode: str = 'fast') -> None:
        """Stop the server; ``mode='immediate'`` is a crash (no
        checkpoint; what committed is recovered on the next start)."""
        if self.running:
            self._run(_postgres_bin('pg_ctl'), '-D', self.data, '-w',
                      '-m', mode, 'stop')
            self.running = False

    def kill(self) -> None:
        self.stop('immediate')


class MariaDBServer(_Server):
    """A MariaDB server of its own, database ``tasks``, user ``root``
    without a password (grant tables skipped: nothing but the suite can
    reach 127.0.0.1:port of a throw-away directory)."""

    kind = 'mariadb'
    system_user = 'mysql'

    def __init__(self, port: int | None = None,
                 directory: str | None = None):
        super().__init__(port, directory)
        self.socket = os.path.join(self.directory, 'mysqld.sock')
        self.pid_file = os.path.join(self.directory, 'mysqld.pid')
        #: The server, if this object started it (not if it attached).
        self.process: subprocess.Popen | None = None

    def _initialize(self) -> None:
        install = shutil.which('mariadb-install-db')
        if install is None:
            raise RuntimeError("'mariadb-install-db' not found; install "
                               "MariaDB (Debian: apt-get install "
                               "mariadb-server)")
        self._run(install, '--no-defaults', f'--datadir={self.data}',
                  '--auth-root-authentication-method=normal',
                  '--skip-test-db', '--skip-name-resolve')

    def database_url(self, database: str) -> str:
        return f'mysql+pymysql://root@127.0.0.1:{self.port}/{database}'

    def create_database(self, database: str) -> str:
        """Create ``database`` (if missing); return its URL."""
        self._sql(f'CREATE DATABASE IF NOT EXISTS {database} '
                  f'CHARACTER SET utf8mb4')
        return self.database_url(database)

    def start(self, timeout: float = 30.0) -> MariaDBServer:
        server = shutil.which('mariadbd') or '/usr/sbin/mariadbd'
        self.process = subprocess.Popen(self._command(
            server, '--no-defaults', f'--datadir={self.data}',
            f'--port={self.port}', '--bind-address=127.0.0.1',
            f'--socket={self.socket}',
            f'--pid-file={self.pid_file}',
            '--skip-grant-tables', '--skip-name-resolve', '--skip-log-bin',
            '--innodb-buffer-pool-size=32M',
            '--innodb-flush-log-at-trx-commit=2', '--max-connections=200',
            f'--log-error={os.path.join(self.directory, "error.log")}'),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until(self._answers, timeout, 'start')
        self.running = True
        self.create_database('tasks')
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)
            self.process = None
        elif self.running:
            self._stop_attached(signal.SIGTERM, timeout)
        self.running = False

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        elif self.running:
            self._stop_attached(signal.SIGKILL, 10.0)
        self.running = False

    def _stop_attached(self, signal_number: int, timeout: float) -> None:
        """Signal the server another process started, by its pid file;
        wait until it removed that file (its last act on a SIGTERM) or,
        killed, until its port is closed."""
        with open(self.pid_file) as file:
            os.kill(int(file.read()), signal_number)
        if signal_number == signal.SIGKILL:
            self._wait_until(lambda: not self._answers(), timeout, 'stop')
        else:
            self._wait_until(lambda: not os.path.exists(self.pid_file),
                             timeout, 'stop')

    def _connect(self):
        import pymysql
        return pymysql.connect(host='127.0.0.1', port=self.port, user='root',
                               connect_timeout=1)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f'mariadbd on port {self.port} exited '
                               f'(status {self.process.returncode})')
        try:
            self._connect().close()
            return True
        except Exception:  # noqa: BLE001 -- not up yet, whatever it says
            return False

    def _sql(self, statement: str) -> None:
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()
