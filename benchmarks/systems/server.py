"""The harness's own redis-server, as an instrument.

Every measurement starts from an empty server; the server's own counters
tell what a system costs it: memory per queued job, and commands and CPU
time per job over an enqueue and a drain.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import redis

#: Environment variable holding the URL of the harness's own redis-server.
#: Deliberately no default: a benchmark must never touch someone's 6379.
URL_ENV = 'BENCH_REDIS_URL'

#: Commands the harness itself sends while counting.
_OWN_COMMANDS = {'config|resetstat', 'info'}


def url() -> str:
    return os.environ[URL_ENV]


@functools.cache
def client() -> redis.Redis:
    return redis.Redis.from_url(url())


def flush() -> None:
    client().flushall()


def data_memory() -> int:
    """Bytes the keys take: each key's ``MEMORY USAGE`` (all its elements
    sampled), plus the expiry table's share (``MEMORY STATS``).

    Not ``used_memory``: memory a previous system's clients and workers
    left allocated is released while a later one enqueues, and made a
    system's memory per job come out negative.
    """
    redis_client = client()
    with redis_client.pipeline(transaction=False) as pipe:
        for key in redis_client.scan_iter(count=1000):
            pipe.memory_usage(key, samples=0)
        keys = sum(size or 0 for size in pipe.execute())
    database = redis_client.memory_stats().get('db.0') or {}
    return keys + database.get('overhead.hashtable.expires', 0)


def blocked_clients() -> int:
    """Clients waiting in a blocking command: workers parked for work."""
    return client().info('clients')['blocked_clients']


@dataclass
class Usage:
    """What ``n`` jobs cost the server, per job."""

    #: Commands executed, those inside Lua scripts included.
    commands: float
    #: Microseconds of redis-server CPU time (user + system).
    cpu: float
    #: ``commands`` by command name.
    by_command: dict[str, float]


class UsageCounter:
    """Counts what the server does from its creation on (``CONFIG
    RESETSTAT``, then ``INFO commandstats`` and ``INFO cpu``)."""

    def __init__(self):
        client().config_resetstat()
        self._cpu = _cpu_seconds()

    def per_job(self, n: int) -> Usage:
        """What the server did so far, per job of ``n``."""
        cpu = _cpu_seconds() - self._cpu
        calls = {name.removeprefix('cmdstat_'): stat['calls']
                 for name, stat in client().info('commandstats').items()
                 if name.removeprefix('cmdstat_') not in _OWN_COMMANDS}
        return Usage(sum(calls.values()) / n, cpu / n * 1e6,
                     {name: count / n for name, count in calls.items()})


def _cpu_seconds() -> float:
    cpu = client().info('cpu')
    return cpu['used_cpu_user'] + cpu['used_cpu_sys']
