"""A Redis Cluster for tests and benchmarks: primaries, each with its
replicas, on free ports of 127.0.0.1, in temporary directories, stopped
afterwards; slots moved and primaries failed over on cue.
"""
from __future__ import annotations

import shutil
import subprocess

import redis
from redis.crc import key_slot

from .testing import RedisServer, free_port
from .testing_ha import DOWN_AFTER_MS, NO_SYNC_DELAY, node_client, wait_until

__all__ = ['ClusterServers']


class ClusterServers:
    """A Redis Cluster of ``primaries`` primaries with ``replicas`` replicas
    each, made by ``redis-cli --cluster create`` (which wants three
    primaries at least; fewer, without replicas, are joined by hand)."""

    def __init__(self, primaries: int = 3, replicas: int = 1):
        self.primaries = primaries
        self.replicas = replicas
        #: The bus port of each server (by default its port + 10000,
        #: which may not exist).
        self.bus_ports = [free_port()
                          for _ in range(primaries * (1 + replicas))]
        self.servers = [
            RedisServer(options=(
                '--cluster-enabled', 'yes',
                '--cluster-config-file', 'nodes.conf',
                '--cluster-node-timeout', str(DOWN_AFTER_MS),
                '--cluster-port', str(bus_port),
                '--cluster-require-full-coverage', 'no', *NO_SYNC_DELAY))
            for bus_port in self.bus_ports]

    @property
    def url(self) -> str:
        return 'redis+cluster://' + ','.join(
            f'127.0.0.1:{s.port}' for s in self.servers[:self.primaries])

    def start(self) -> ClusterServers:
        for server in self.servers:
            server.start()
        if self.primaries < 3:
            if self.replicas:
                raise ValueError('fewer than three primaries: no replicas')
            first = node_client(self.servers[0].port)
            for server, bus_port in zip(self.servers[1:], self.bus_ports[1:],
                                        strict=True):
                first.execute_command('CLUSTER', 'MEET', '127.0.0.1',
                                      server.port, bus_port)
            share = 16384 // self.primaries
            for number, server in enumerate(self.servers):
                end = (16383 if number == self.primaries - 1
                       else (number + 1) * share - 1)
                node_client(server.port).execute_command(
                    'CLUSTER', 'ADDSLOTSRANGE', number * share, end)
        else:
            redis_cli = shutil.which('redis-cli')
            if redis_cli is None:
                raise RuntimeError('redis-cli not found on PATH; install it '
                                   '(Debian: apt-get install redis-tools, '
                                   'which redis-server depends on)')
            subprocess.run(
                [redis_cli, '--cluster', 'create',
                 *(f'127.0.0.1:{s.port}' for s in self.servers),
                 '--cluster-replicas', str(self.replicas), '--cluster-yes'],
                check=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        self.wait_settled()
        return self

    def client(self, port: int) -> redis.Redis:
        return node_client(port)

    def nodes(self) -> list[dict]:
        """CLUSTER NODES of a live node: dicts of id, port, role, slots."""
        for server in self.servers:
            if server.process is None:
                continue
            text = node_client(server.port).execute_command(
                'CLUSTER', 'NODES').decode()
            nodes = []
            for line in text.splitlines():
                fields = line.split()
                flags = fields[2].split(',')
                nodes.append({
                    'id': fields[0],
                    'port': int(fields[1].split('@')[0].rpartition(':')[2]),
                    'role': 'primary' if 'master' in flags else 'replica',
                    'failed': 'fail' in flags or 'fail?' in flags,
                    'slots': fields[8:]})
            return nodes
        raise RuntimeError('no cluster node is running')

    def wait_settled(self, timeout: float = 60.0) -> None:
        """Every running node says the cluster is ok and knows every other
        running node; every slot is served by a running primary, the same
        one in every node's view (after a failover the others learn of
        the new primary by gossip, some time later under load)."""
        running = [s for s in self.servers if s.process is not None]

        def settled():
            views = set()
            for server in running:
                client = node_client(server.port)
                info = client.execute_command('CLUSTER', 'INFO').decode()
                if 'cluster_state:ok' not in info:
                    return False
                slots = client.execute_command('CLUSTER', 'SLOTS')
                served = sum(int(end) - int(start) + 1
                             for start, end, *_ in slots)
                if served != 16384:
                    return False
                views.add(frozenset((int(start), int(end), int(primary[1]))
                                    for start, end, primary, *_ in slots))
            if len(views) > 1:
                return False
            live = {s.port for s in running}
            nodes = [n for n in self.nodes() if n['port'] in live]
            if len(nodes) != len(running) or any(n['failed'] for n in nodes):
                return False
            # Replicas in sync: only those may take over from a primary.
            return all(
                node_client(n['port']).info('replication').get(
                    'master_link_status') == 'up'
                for n in nodes if n['role'] == 'replica')
        wait_until(settled, 'settled cluster', timeout)

    def spread_names(self, per_primary: int, prefix: str = 'q') -> list[str]:
        """Queue names whose hash tags put ``per_primary`` of them on each
        primary (``prefix`` followed by a number)."""
        names, on = [], {}
        for number in range(100_000):
            name = f'{prefix}{number}'
            port = self.primary_of(name).port
            if on.get(port, 0) < per_primary:
                on[port] = on.get(port, 0) + 1
                names.append(name)
                if len(names) == per_primary * self.primaries:
                    return names
        raise RuntimeError('no spread of queue names found')

    def primary_of(self, key: str) -> RedisServer:
        """The primary that serves ``key``'s slot."""
        slot = key_slot(key.encode())
        port = self._owner(slot, self.nodes())['port']
        return next(s for s in self.servers if s.port == port)

    def move_slot(self, slot: int, target: RedisServer,
                  between=None, before=None) -> None:
        """Migrate ``slot`` to the primary ``target`` key by key, as
        ``redis-cli --cluster reshard`` does; ``before()`` runs once the
        slot is marked as migrating, ``between()`` after each batch of
        keys (while the slot is half migrated)."""
        nodes = self.nodes()
        by_port = {n['port']: n for n in nodes}
        source = self._owner(slot, nodes)
        if source['port'] == target.port:
            return
        to = node_client(target.port)
        source_client = node_client(source['port'])
        to.execute_command('CLUSTER', 'SETSLOT', slot, 'IMPORTING',
                           source['id'])
        source_client.execute_command('CLUSTER', 'SETSLOT', slot, 'MIGRATING',
                                      by_port[target.port]['id'])
        if before is not None:
            before()
        while True:
            keys = source_client.execute_command(
                'CLUSTER', 'GETKEYSINSLOT', slot, 20)
            if not keys:
                break
            source_client.execute_command(
                'MIGRATE', '127.0.0.1', target.port, '', 0, 5000,
                'KEYS', *keys)
            if between is not None:
                between()
        target_id = by_port[target.port]['id']
        for node in nodes:
            if node['role'] == 'primary' and not node['failed']:
                node_client(node['port']).execute_command(
                    'CLUSTER', 'SETSLOT', slot, 'NODE', target_id)

    @staticmethod
    def _owner(slot: int, nodes: list[dict]) -> dict:
        for node in nodes:
            if node['role'] != 'primary':
                continue
            for spec in node['slots']:
                if spec.startswith('['):
                    continue
                start, _, end = spec.partition('-')
                if int(start) <= slot <= int(end or start):
                    return node
        raise RuntimeError(f'no primary serves slot {slot}')

    def flush(self) -> None:
        # Each server says what it is: the view of another node (CLUSTER
        # NODES) may still call a new cluster's replica a primary.
        for server in self.servers:
            if server.process is not None:
                client = node_client(server.port)
                if client.execute_command('ROLE')[0] in (b'master',
                                                         'master'):
                    client.flushall()

    def stop(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> ClusterServers:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
