"""Redis deployments of more than one server, for tests and benchmarks: a
Sentinel group (a primary, its replicas, three Sentinels) here, a Cluster
in ``testing_cluster``, all on free ports of 127.0.0.1, in temporary
directories, stopped afterwards.  Sentinels run as ``redis-server CONF
--sentinel`` (what Debian's redis-sentinel runs).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from .testing import RedisServer, free_port, make_certificates, tls_options

__all__ = ['SentinelGroup', 'wait_until']

#: How long a Sentinel or Cluster node waits before it judges a silent
#: primary down: short, so that a test's failover takes seconds.
DOWN_AFTER_MS = 1000
#: A primary syncs a new replica at once (Redis waits 5 s by default, for
#: more replicas to share one transfer).
NO_SYNC_DELAY = ('--repl-diskless-sync-delay', '0')


def wait_until(condition, what: str, timeout: float = 30.0,
               interval: float = 0.05):
    """Return ``condition()``'s first true value; RuntimeError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except redis.RedisError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f'no {what} within {timeout}s')
        time.sleep(interval)


def node_client(port: int, **kwargs) -> redis.Redis:
    return redis.Redis('127.0.0.1', port, socket_timeout=5, **kwargs)


class SentinelGroup:
    """A primary with ``replicas`` replicas, watched by three Sentinels
    under ``service``; with ``tls``, every one of them speaks only TLS,
    to each other too, with certificates of a throw-away CA."""

    def __init__(self, replicas: int = 2, service: str = 'taskqueue',
                 tls: bool = False):
        self.service = service
        self.tls = tls
        self.directory = tempfile.mkdtemp(prefix='wsgi-taskqueue-sentinel-')
        #: Connection settings of the group's own clients.
        self.client_kwargs = {}
        if tls:
            make_certificates(self.directory)
            self.client_kwargs = dict(ssl=True, ssl_ca_certs=os.path.join(
                self.directory, 'ca.crt'))
        servers = dict(tls=tls, certificates=self.directory if tls else None)
        primary = RedisServer(options=NO_SYNC_DELAY, **servers)
        self.servers = [primary] + [
            RedisServer(options=('--replicaof', '127.0.0.1',
                                 str(primary.port), *NO_SYNC_DELAY),
                        **servers)
            for _ in range(replicas)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        hosts = ','.join(f'127.0.0.1:{p}' for p in self.sentinel_ports)
        if self.tls:
            return (f'rediss+sentinel://{hosts}/{self.service}/0'
                    f'?ssl_ca_certs={self.client_kwargs["ssl_ca_certs"]}')
        return f'redis+sentinel://{hosts}/{self.service}/0'

    def start(self) -> SentinelGroup:
        for server in self.servers:
            server.start()
        primary = self.servers[0].port
        for number, port in enumerate(self.sentinel_ports):
            conf = os.path.join(self.directory, f'sentinel-{number}.conf')
            with open(conf, 'w') as file:
                if self.tls:  # the same options, in a configuration file
                    options = tls_options(self.directory)
                    file.write(f'port 0\ntls-port {port}\n'
                               'tls-replication yes\n' + ''.join(
                                   f'{name[2:]} {value}\n' for name, value
                                   in zip(options[::2], options[1::2],
                                          strict=True)))
                else:
                    file.write(f'port {port}\n')
                file.write(
                    'bind 127.0.0.1\n'
                    f'dir {self.directory}\n'
                    f'sentinel monitor {self.service} 127.0.0.1 {primary} 2\n'
                    f'sentinel down-after-milliseconds {self.service} '
                    f'{DOWN_AFTER_MS}\n'
                    f'sentinel failover-timeout {self.service} 10000\n'
                    f'sentinel parallel-syncs {self.service} 2\n')
            self.sentinels.append(subprocess.Popen(
                [shutil.which('redis-server'), conf, '--sentinel',
                 '--loglevel', 'warning'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.wait_settled()
        return self

    def sentinel(self, number: int = 0) -> redis.Redis:
        return node_client(self.sentinel_ports[number], **self.client_kwargs)

    def primary_port(self) -> int:
        """The primary's port, as the first Sentinel sees it."""
        return int(self.sentinel().sentinel_get_master_addr_by_name(
            self.service)[1])

    def primary(self) -> RedisServer:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def wait_settled(self, timeout: float = 30.0, replicas=None) -> int:
        """Wait until every Sentinel agrees on one primary that is up and
        sees the other Sentinels, no failover is in progress, the primary
        has ``replicas`` (default: every other running server) in sync,
        and every Sentinel sees one it could promote (a SENTINEL FAILOVER
        without one aborts); return the primary's port."""
        running = [s for s in self.servers if s.process is not None]
        if replicas is None:
            replicas = len(running) - 1

        def settled():
            ports = set()
            for number in range(len(self.sentinel_ports)):
                state = self.sentinel(number).sentinel_master(self.service)
                # A failover still reconfiguring the replicas refuses the
                # next SENTINEL FAILOVER (INPROG).
                if (state['is_odown'] or state['is_sdown']
                        or state['num-other-sentinels'] < 2
                        or 'failover_in_progress' in state['flags']):
                    return None
                ports.add(int(state['port']))
            if len(ports) != 1:
                return None
            [port] = ports
            for number in range(len(self.sentinel_ports)):
                if replicas and not self._promotable(number, port):
                    return None
            info = node_client(port, **self.client_kwargs).info('replication')
            online = sum(info[f'slave{n}']['state'] == 'online'
                         for n in range(info['connected_slaves']))
            if info['role'] != 'master' or online < replicas:
                return None
            return port
        return wait_until(settled, 'settled Sentinel group', timeout)

    def _promotable(self, number: int, port: int) -> int:
        """Replicas of the primary at ``port`` that Sentinel ``number``
        could promote: up, linked to it, as of their last INFO (Sentinel
        refreshes a replica's every 10 s, so a replica just reconfigured
        may look linked to another server for that long)."""
        return sum(
            1 for replica in self.sentinel(number).sentinel_slaves(
                self.service)
            if not (replica['is_sdown'] or replica['is_disconnected'])
            and replica['master-link-status'] == 'ok'
            and int(replica['master-port']) == port)

    def failover(self) -> int:
        """SENTINEL FAILOVER; return the new primary's port once every
        Sentinel names it and a replica follows it (the old primary, which
        keeps running, becomes a replica some seconds later)."""
        before = self.primary_port()
        self.sentinel().execute_command('SENTINEL', 'FAILOVER', self.service)
        wait_until(lambda: self.primary_port() != before, 'failover')
        return self.wait_settled(replicas=1)

    def kill_primary(self) -> RedisServer:
        """kill -9 of the primary; return its server (stopped)."""
        server = self.primary()
        server.kill()
        return server

    def revive(self, server: RedisServer) -> None:
        """Start a killed server again: the Sentinels make it a replica of
        whichever server is primary now."""
        server.start()
        self.wait_settled(60)

    def flush(self) -> None:
        """Empty the primary, and wait until the replicas are empty too."""
        client = node_client(self.wait_settled(), **self.client_kwargs)
        client.flushall()
        client.execute_command('WAIT', len(self.servers) - 1, 5000)
        client.close()

    def stop(self) -> None:
        for process in self.sentinels:
            process.send_signal(signal.SIGTERM)
        for process in self.sentinels:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for server in self.servers:
            server.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
