"""Helpers for tests: an app's own, and this package's.

``RecordingQueue`` and ``recording`` let an app's test suite see the tasks
its views enqueued (only those of committed transactions) and run them.

``RedisServer`` is a private ``redis-server``: tests must never touch a
Redis someone else runs (the one on 6379 may hold real data), so each
suite starts its own server on a free port, in a temporary directory, and
stops it afterwards (``sqltesting`` does the same for PostgreSQL and
MariaDB).
"""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .backends.local import LocalQueue
from .backends.sync import drain
from .registry import get_queue, queue_names, register_queue, unregister_queue
from .task import Task

__all__ = ['RecordingQueue', 'recording', 'RedisServer', 'free_port',
           'stop_process']


class RecordingQueue(LocalQueue):
    """An in-process queue that only keeps what committed transactions
    enqueued, for the test to look at and run; nothing consumes it."""

    def recorded(self) -> list[Task]:
        """The tasks waiting to run, in order (their signatures unchecked:
        a test may record with any secret)."""
        with self._changed:
            messages = list(self._pending)
        return [self.codec.decode_unverified(message) for message in messages]

    def run(self, app, retry_max_count: int = 10) -> list[dict]:
        """Dispatch the recorded tasks into ``app``, and those they add in
        turn, as a consumer would (retries at once); return the status
        record of each task run, in order."""
        return [self.task_status(task_id) for task_id
                in drain(self, app, retry_max_count=retry_max_count)]

    def clear(self) -> None:
        self.reset()


@contextlib.contextmanager
def recording(queue: str = 'default', **options):
    """Record the tasks of ``queue`` for the ``with`` block (a
    RecordingQueue with ``options`` takes its place, then the queue that
    was there comes back)::

        with recording() as tasks:
            app.post('/order')          # a view that adds a task
        [task] = tasks.recorded()
        assert task.path == '/send-confirmation'
        tasks.run(app)
    """
    previous = get_queue(queue) if queue in queue_names() else None
    recorder = RecordingQueue(queue, **options)
    register_queue(queue, recorder)
    try:
        yield recorder
    finally:
        unregister_queue(queue)
        if previous is not None:
            register_queue(queue, previous)



#: Where free_port looks: from here to the kernel's ephemeral range.
LOWEST_PORT = 10000
#: The ports free_port handed out in this process: never one twice.
_handed_out: set[int] = set()


def _ports() -> range:
    """The ports below the kernel's ephemeral range; in a pytest-xdist
    worker, the worker's share of them (no two workers pick one port)."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as file:
            ephemeral = int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768  # Linux's default
    # A range set to start lower leaves no room below it: look anywhere.
    ports = range(LOWEST_PORT, ephemeral if ephemeral > 20000 else 65536)
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')
    count = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if worker.startswith('gw') and count > 1:
        share = len(ports) // count
        start = LOWEST_PORT + int(worker[2:]) % count * share
        ports = range(start, start + share)
    return ports


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    It is below the kernel's ephemeral range: a port the kernel picks
    (``bind`` to port 0) is one an outgoing connection can take as its own
    end before the server the port was meant for binds it, which under
    load it does.  Never the same port twice in one process.
    """
    ports = _ports()
    for _ in range(1000):
        port = random.choice(ports)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f'no free port in {ports}')


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM ``process``, SIGKILL it if it has not ended within
    ``timeout`` seconds; return its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def make_certificates(directory: str) -> None:
    """A throw-away CA (ca.crt) and a certificate for 127.0.0.1 that it
    signed (server.crt, server.key), in ``directory``."""
    def openssl(*args):
        subprocess.run(['openssl', *args], cwd=directory, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
            '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=test CA')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout',
            'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    with open(os.path.join(directory, 'san.ext'), 'w') as ext:
        ext.write('subjectAltName=IP:127.0.0.1\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt',
            '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
            '-extfile', 'san.ext', '-out', 'server.crt')


def tls_options(directory: str) -> list[str]:
    """redis-server's options to serve TLS with the certificates of
    ``directory`` (``make_certificates``), clients unauthenticated."""
    return ['--tls-cert-file', os.path.join(directory, 'server.crt'),
            '--tls-key-file', os.path.join(directory, 'server.key'),
            '--tls-ca-cert-file', os.path.join(directory, 'ca.crt'),
            '--tls-auth-clients', 'no']


class RedisServer:
    """A ``redis-server`` subprocess on a free port of 127.0.0.1.

    ``appendonly=True`` makes it durable across :meth:`restart` (the fault
    tests stop and restart Redis and expect committed tasks to survive).
    """

    def __init__(self, port: int | None = None, appendonly: bool = False,
                 executable: str = 'redis-server', tls: bool = False,
                 unix_socket: bool = False, options: tuple = (),
                 certificates: str | None = None):
        self.executable = shutil.which(executable)
        if self.executable is None:
            raise RuntimeError(
                f'{executable!r} not found on PATH; install it '
                '(Debian: apt-get install redis-server)')
        self.port = port or free_port()
        self.appendonly = appendonly
        self.tls = tls
        #: More command-line options (``('--replicaof', host, port)``...).
        self.options = tuple(options)
        self.directory = tempfile.mkdtemp(prefix='wsgi-taskqueue-redis-')
        #: A unix socket the server listens on beside its port, or None.
        self.socket_path = self._path('redis.sock') if unix_socket else None
        self.process: subprocess.Popen | None = None
        #: The directory of ca.crt, server.crt and server.key (TLS): given
        #: (shared by the servers of a group), or made here.
        self.certificates = certificates or self.directory
        if tls and certificates is None:
            make_certificates(self.directory)

    @property
    def url(self) -> str:
        if self.tls:
            return (f'rediss://127.0.0.1:{self.port}/0'
                    f'?ssl_ca_certs={self.certificate("ca.crt")}')
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.tls:
            listen = ['--port', '0', '--tls-port', str(self.port),
                      *tls_options(self.certificates),
                      '--tls-replication', 'yes']
        else:
            listen = ['--port', str(self.port)]
        if self.socket_path:
            listen += ['--unixsocket', self.socket_path,
                       '--unixsocketperm', '700']
        args = [
            self.executable, *listen, '--bind', '127.0.0.1',
            '--dir', self.directory, '--save', '',
            '--appendonly', 'yes' if self.appendonly else 'no',
            '--appendfsync', 'always',
            '--daemonize', 'no', '--loglevel', 'warning', *self.options,
        ]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until(self._answers, timeout, 'start')
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; with AOF on, everything acknowledged is kept."""
        if self.process is None:
            return
        stop_process(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def client(self, **kwargs):
        import redis
        return redis.Redis.from_url(self.url, **kwargs)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def certificate(self, name: str) -> str:
        return os.path.join(self.certificates, name)

    def _answers(self) -> bool:
        if self.tls:
            return self._answers_tls()
        try:
            with socket.create_connection(('127.0.0.1', self.port), 0.5) as s:
                s.sendall(b'PING\r\n')
                return s.recv(16).startswith(b'+PONG')
        except OSError:
            return False

    def _answers_tls(self) -> bool:
        import redis
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def _wait_until(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f'redis-server on port {self.port} exited during {what} '
                    f'(status {self.process.returncode})')
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'redis-server on port {self.port} did not {what} '
                    f'within {timeout}s')
            time.sleep(0.02)
