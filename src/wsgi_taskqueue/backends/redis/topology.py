"""Where a queue's Redis is: one server, a Sentinel group, or a Cluster.

The decision is made here, once, from the URL or the settings; the queue
sees a ``Route``: the connection pool, the thread connections and the
client of the server that holds its keys.

* Single (``redis://``, ``rediss://``, ``unix://``, host/port): one pool.
* Sentinel (``redis+sentinel://h1:p1,h2:p2/service[/db]``): the pool of
  redis-py's ``Sentinel.master_for``.  Every connection made from it
  (the pool's, the thread connections', the blocking waiters') asks the
  Sentinels for the primary when it connects, and a ``READONLY`` reply
  (the server it talks to was demoted) disconnects it; the Sentinels'
  events make every connection of the process connect again before its
  next command: after a failover each finds the new primary (sentinel.py).
* Cluster (``redis+cluster://h1:p1,h2:p2``): redis-py's ``RedisCluster``
  discovers which primary serves which slot; the queue talks to that
  primary through a pool of its own.  One queue's keys share the ``{Q}``
  hash tag, hence one slot, and route.py follows it as it moves.
"""
from __future__ import annotations

import threading
import time
import urllib.parse

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...errors import BackendUnavailable
from .bounds import DEFAULT_MAX_CONNECTIONS, BoundedPool
from .connection import CLIENT_NAMES, describe_url

__all__ = ['topology_for']

#: At most one topology refresh (Cluster) or question to the Sentinels per
#: interval after errors: a dead primary must not be asked about by every
#: failing command.
REFRESH_INTERVAL = 0.5

#: URL schemes of a Sentinel group, without and with TLS.
SENTINEL_SCHEMES = ('redis+sentinel', 'rediss+sentinel')

_topologies: dict = {}
_topologies_lock = threading.Lock()


def topology_for(*, url=None, host='127.0.0.1', port=6379, db=0,
                 username=None, password=None, unix_socket_path=None,
                 socket_timeout=5.0, sentinels=(), service_name=None,
                 sentinel_password=None, cluster=False,
                 max_connections=DEFAULT_MAX_CONNECTIONS):
    """The shared topology of these settings (one per process, so that the
    queues of one Redis are written in one round trip)."""
    on_unix_socket = dict(socket_timeout=socket_timeout,
                          socket_connect_timeout=socket_timeout,
                          # The pool serves reads and idempotent writes
                          # (discard, reset): once more after a failure, as
                          # after a restart.  The scripts that move tasks
                          # run on thread connections that never re-send.
                          retry=Retry(NoBackoff(), 1),
                          client_name=CLIENT_NAMES['pool'])
    # TCP keepalive notices a peer that vanished without a word; a unix
    # socket has no such option (redis-py refuses it there).
    common = dict(on_unix_socket, socket_keepalive=True)
    # A thread waits for a connection of the pool at most as long as for
    # a reply (bounds.py).
    bounds = dict(max_connections=max_connections, timeout=socket_timeout)
    scheme = urllib.parse.urlsplit(url).scheme if url else None
    tls: dict = {}
    if scheme in SENTINEL_SCHEMES or sentinels or service_name:
        if url:
            if sentinels or service_name:
                raise ValueError('give the Sentinels either in url or in '
                                 'sentinels and service_name, not both')
            sentinels, service_name, db, username, password, tls = (
                _parse_sentinel_url(url))
        if not sentinels or not service_name:
            raise ValueError('a Sentinel group needs sentinels (host:port '
                             '...) and service_name')
        addresses = tuple(_address(a) for a in _split(sentinels))
        key = ('sentinel', addresses, service_name, db, username, password,
               sentinel_password, socket_timeout, max_connections,
               tuple(sorted(tls.items())))
        from .sentinel import SentinelTopology  # which builds on this module
        return _shared(key, lambda: SentinelTopology(
            addresses, service_name, db, username, password,
            sentinel_password, dict(common, **tls), bounds))
    if scheme == 'redis+cluster' or cluster:
        if url and scheme == 'redis+cluster':
            addresses, username, password = _parse_cluster_url(url)
        elif url:
            parts = urllib.parse.urlsplit(url)
            addresses = ((parts.hostname, parts.port or 6379),)
            username = parts.username or username
            password = parts.password or password
        else:
            addresses = ((host, port),)
        key = ('cluster', addresses, username, password, socket_timeout,
               max_connections)
        return _shared(key, lambda: ClusterTopology(
            addresses, username, password, common, bounds))
    if url:
        key = ('url', url, socket_timeout, max_connections)
        return _shared(key, lambda: SingleTopology(
            BoundedPool.from_url(url, **bounds, **(
                on_unix_socket if scheme == 'unix' else common)),
            describe_url(url)))
    key = (host, port, db, username, password, unix_socket_path,
           socket_timeout, max_connections)
    return _shared(key, lambda: SingleTopology(
        BoundedPool(
            db=db, **bounds, username=username, password=password,
            **({'connection_class': redis.UnixDomainSocketConnection,
                'path': unix_socket_path, **on_unix_socket}
               if unix_socket_path
               else {'host': host, 'port': port, **common})),
        (unix_socket_path or f'{host}:{port}') + f'/{db}'))


def _shared(key, make):
    with _topologies_lock:
        if key not in _topologies:
            _topologies[key] = make()
        return _topologies[key]


def _split(text) -> list[str]:
    if isinstance(text, str):
        text = text.replace(',', ' ').split()
    return [item.strip() for item in text if item.strip()]


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(':')
    if not host or not port.isdigit():
        raise ValueError(f'expected host:port, not {text!r}')
    return host.strip('[]'), int(port)


def _credentials(netloc: str):
    userinfo, _, hosts = netloc.rpartition('@')
    username = password = None
    if userinfo:
        username, _, password = userinfo.partition(':')
        username = urllib.parse.unquote(username) or None
        password = urllib.parse.unquote(password) or None
    return hosts, username, password


def _parse_sentinel_url(url: str):
    """redis+sentinel://[user:password@]h:p[,h:p...]/service[/db], or
    rediss+sentinel://...[?ssl_ca_certs=...] (TLS to the Sentinels and to
    the primary: the TLS options of redis-py's rediss:// URLs)."""
    parts = urllib.parse.urlsplit(url)
    tls = parts.scheme == 'rediss+sentinel'
    if parts.fragment or (parts.query and not tls):
        raise ValueError(f'a redis+sentinel URL takes no query: {url!r}')
    hosts, username, password = _credentials(parts.netloc)
    path = [p for p in parts.path.split('/') if p]
    if not hosts or not 1 <= len(path) <= 2 or (
            len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f'expected {parts.scheme}://[user:password@]'
                         'host:port[,host:port...]/service_name[/db]')
    db = int(path[1]) if len(path) == 2 else 0
    return (hosts, path[0], db, username, password,
            _tls_options(parts.query) if tls else {})


#: The query keys of a rediss+sentinel URL, as redis-py reads them in a
#: rediss:// URL.
TLS_OPTIONS = {'ssl_ca_certs': str, 'ssl_ca_path': str, 'ssl_certfile': str,
               'ssl_keyfile': str, 'ssl_cert_reqs': str,
               'ssl_check_hostname': lambda value: value.lower() in (
                   '1', 'true', 'yes', 'on')}


def _tls_options(query: str) -> dict:
    options = {'ssl': True}
    for name, value in urllib.parse.parse_qsl(query, strict_parsing=bool(
            query)):
        if name not in TLS_OPTIONS:
            raise ValueError(f'a rediss+sentinel URL takes only '
                             f'{", ".join(TLS_OPTIONS)}, not {name!r}')
        options[name] = TLS_OPTIONS[name](value)
    return options


def _parse_cluster_url(url: str):
    """redis+cluster://[user:password@]h:p[,h:p...]"""
    parts = urllib.parse.urlsplit(url)
    hosts, username, password = _credentials(parts.netloc)
    if not hosts or parts.path.strip('/') or parts.query:
        raise ValueError('expected redis+cluster://[user:password@]host:port'
                         '[,host:port...] (a cluster has only db 0)')
    return tuple(_address(a) for a in _split(hosts)), username, password


class SingleTopology:
    """One Redis server."""

    kind = 'single'

    def __init__(self, pool: redis.ConnectionPool, where: str):
        self.pool = pool
        self.where = where
        self.client = redis.Redis(connection_pool=pool)

    def group_for(self, tag: str):
        return self.pool

    def pool_for(self, slot: int) -> redis.ConnectionPool:
        return self.pool

    def client_for(self, pool) -> redis.Redis:
        return self.client

    def moved(self, error) -> None:
        # A node of a Cluster reached as one server: the keys of another
        # node's slots are refused (MOVED), and would be every time.
        raise BackendUnavailable(
            f'Redis at {self.where} is a node of a Redis Cluster ({error}): '
            f'use url = redis+cluster://host:port,... or cluster = true'
        ) from error

    def lost(self) -> None:
        pass

    def watch(self) -> None:
        pass

    def pools(self) -> list:
        return [self.pool]

    def disconnect(self) -> None:
        self.pool.disconnect()


class ClusterTopology:
    """A Redis Cluster: redis-py's RedisCluster finds the primary of each
    slot; the queue's own commands go through a pool per primary."""

    kind = 'cluster'

    def __init__(self, addresses, username, password, common, bounds):
        self.addresses = addresses
        self.credentials = dict(username=username, password=password)
        self.common = common
        self.bounds = bounds
        self.where = 'redis+cluster://' + ','.join(
            f'{h}:{p}' for h, p in addresses)
        self._discovery = None
        self._pools: dict = {}
        self._clients: dict = {}
        self._lock = threading.Lock()
        self._refreshed = 0.0

    @property
    def discovery(self):
        """redis-py's RedisCluster, which learns which primary serves
        which slot (it is not used for the queue's commands)."""
        with self._lock:
            if self._discovery is None:
                from redis.cluster import ClusterNode, RedisCluster
                self._discovery = RedisCluster(
                    startup_nodes=[ClusterNode(h, p)
                                   for h, p in self.addresses],
                    max_connections=self.bounds['max_connections'],
                    **self.credentials, **dict(
                        self.common, client_name=CLIENT_NAMES['discovery']))
            return self._discovery

    def group_for(self, tag: str):
        # The queues of every slot are staged and promoted together, one
        # script per slot (a script may only touch the keys of one slot),
        # sent to every primary at once (fanout.py).
        return self

    def pool_for(self, slot: int) -> redis.ConnectionPool:
        node = self.discovery.nodes_manager.get_node_from_slot(slot)
        return self.pool_at(node.host, node.port)

    def watch(self) -> None:
        pass  # RedisCluster learns of failovers from MOVED replies

    def client_for(self, pool) -> redis.Redis:
        """A client of one primary: the queue's reads and idempotent writes
        outside the scripts go to the primary of its slot (a MOVED reply
        to them is BackendUnavailable, retried later; see Talking)."""
        with self._lock:
            client = self._clients.get(pool)
            if client is None:
                client = self._clients[pool] = redis.Redis(
                    connection_pool=pool)
            return client

    def moved(self, error) -> None:
        """The slot of ``error`` (MOVED) is served elsewhere now."""
        self.discovery.nodes_manager.move_slot(error)

    def lost(self) -> None:
        """A primary did not answer: perhaps it failed over; learn the
        slots again (at most once per REFRESH_INTERVAL)."""
        with self._lock:
            if time.monotonic() - self._refreshed < REFRESH_INTERVAL:
                return
            self._refreshed = time.monotonic()
        try:
            self.discovery.nodes_manager.initialize()
        except redis.RedisError:
            pass  # every startup node is down: the next command says so

    def primaries(self) -> list[redis.ConnectionPool]:
        return [self.pool_at(node.host, node.port)
                for node in self.discovery.get_primaries()]

    def pools(self) -> list:
        with self._lock:
            return list(self._pools.values())

    def pool_at(self, host: str, port: int) -> redis.ConnectionPool:
        """The pool of the primary at host:port, made on first use."""
        with self._lock:
            pool = self._pools.get((host, port))
            if pool is None:
                pool = self._pools[(host, port)] = BoundedPool(
                    host=host, port=port, **self.credentials, **self.common,
                    **self.bounds)
            return pool

    def disconnect(self) -> None:
        for pool in self.pools():
            pool.disconnect()
        if self._discovery is not None:
            self._discovery.close()
