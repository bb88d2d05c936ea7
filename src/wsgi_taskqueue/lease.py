"""A consumer's lease on its name, kept by a heartbeat, and the recovery
sweep that every live consumer runs for those that are gone.

The lease makes names exclusive (two processes sharing one would take each
other's tasks in flight) and tells the living from the gone: when a lease
runs out, any live consumer's sweep requeues what the gone one held, so
recovery needs neither stable names nor the gone process's return.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from .errors import BackendUnavailable, ConsumerNameInUse
from .outage import Outage

__all__ = ['Lease', 'PROCESS_ID']

log = logging.getLogger('wsgi_taskqueue.consumer')

#: Tells this process from an earlier one with the same pid (a container
#: restarted under the same host name runs its process as pid 1 again).
PROCESS_ID = uuid.uuid4().hex


class Lease:
    """The lease of ``consumer`` (a Consumer: its backend, name and
    timeouts, and ``info()`` for operators)."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.backend = consumer.backend
        self.name = consumer.name
        self.token = uuid.uuid4().hex

    def __repr__(self) -> str:
        return repr(self.consumer)

    def acquire(self) -> None:
        """Take the name, or raise ConsumerNameInUse."""
        consumer = self.consumer
        if not self.backend.acquire(self.name, self.token,
                                    consumer.lease_timeout, consumer.info()) \
                and not self._take_over_from_a_gone_process():
            raise ConsumerNameInUse(
                f'consumer name {self.name!r} of queue {consumer.queue!r} is '
                f'in use by another live process; give each consumer its '
                f'own name (its lease expires {consumer.lease_timeout:g}s '
                f'after that process is gone)')

    def keep(self, stopping: threading.Event) -> None:
        """Renew the lease until ``stopping``; once healthy for a whole
        lease period, sweep up after consumers that are gone.  Set
        ``stopping`` if another process took the name over."""
        consumer = self.consumer
        interval = consumer.lease_timeout / 3
        healthy_since = None
        outage = Outage(self, stopping)
        while not stopping.wait(interval):
            try:
                if not self.backend.acquire(self.name, self.token,
                                            consumer.lease_timeout,
                                            consumer.info()):
                    log.error('%r: another process took over the name; '
                              'stopping', self)
                    stopping.set()
                    return
                outage.over()
                now = time.monotonic()
                healthy_since = healthy_since or now
                # Right after an outage every lease looks expired; give
                # the live consumers a lease period to renew theirs.
                if now - healthy_since >= consumer.lease_timeout:
                    self._sweep()
            except BackendUnavailable as exc:
                healthy_since = None
                outage.report(exc)
            except Exception:
                log.exception('%r: heartbeat failed', self)

    def release(self) -> None:
        try:
            self.backend.release(self.name, self.token)
        except BackendUnavailable:
            pass  # The lease expires by itself.

    def _take_over_from_a_gone_process(self) -> bool:
        """Restarted after a crash, a consumer finds its name still leased
        to its previous process; when that process ran on this host and is
        gone, take the name over at once (its leftovers are requeued next)
        rather than failing until the lease runs out."""
        consumer = self.consumer
        for holder in self.backend.consumers():
            if (holder['name'] == self.name
                    and holder.get('host') == socket.gethostname()
                    and isinstance(holder.get('pid'), int)
                    and not _runs(holder['pid'], holder.get('process'))
                    and self.backend.acquire(
                        self.name, self.token, consumer.lease_timeout,
                        consumer.info(), gone_pid=holder['pid'])):
                log.warning('%r: took the name over from process %d, which '
                            'is gone', self, holder['pid'])
                return True
        return False

    def _sweep(self) -> None:
        consumer = self.consumer
        report = self.backend.sweep(consumer.staged_grace,
                                    consumer.max_deliveries)
        if report['consumers']:
            log.warning('%r: requeued %d task(s) of gone consumer(s) %s; '
                        '%d dead-lettered after too many deliveries', self,
                        report['requeued'], ', '.join(report['consumers']),
                        report['dead'])
        for batch in report['batches']:
            log.warning('%r: promoted staged batch %s: its transaction '
                        'voted, then its process stopped before promoting '
                        'it', self, batch)


def _runs(pid: int, process_id: str | None) -> bool:
    """Does process ``pid`` (``process_id``) of this host still run?"""
    if pid == os.getpid():
        return process_id == PROCESS_ID
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
