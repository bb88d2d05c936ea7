"""A consumer's lease on its name, kept by a heartbeat, and the recovery
sweep that every live consumer runs for those that are gone.

The lease makes names exclusive (two processes sharing one would take each
other's tasks in flight) and tells the living from the gone: when a lease
runs out, any live consumer's sweep requeues what the gone one held, so
recovery needs neither stable names nor the gone process's return.

The sweep cannot know that the gone one merely went quiet: a process cut
off from the backend, or stalled, for longer than its lease comes back to
find what it had reserved in other hands.  So the consumer also keeps the
lease's term by its own clock (``held_since``): from when a grant was
sent, ``lease_timeout`` seconds, begun afresh when a renewal came too late
to extend the previous one.  It starts a reserved task only within the
term it reserved it in.
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

__all__ = ['Lease', 'PROCESS_ID', 'default_consumer_name']

log = logging.getLogger('wsgi_taskqueue.consumer')

#: Tells this process from an earlier one with the same pid (a container
#: restarted under the same host name runs its process as pid 1 again).
PROCESS_ID = uuid.uuid4().hex


def default_consumer_name(label: str) -> str:
    """Unique to this process, so that any number of processes (a web
    server with consumers, workers) can run from one ini file.  What a
    process that died had in flight is recovered by the sweep once its
    lease runs out; a stable ``name`` recovers it at once on restart."""
    return f'{label}@{socket.gethostname()}:{os.getpid()}'


class Lease:
    """The lease of ``consumer`` (a Consumer: its backend, name, timeouts
    and what operators see of it, ``info``)."""

    def __init__(self, consumer):
        self.consumer = consumer
        self.backend = consumer.backend
        self.name = consumer.name
        self.token = uuid.uuid4().hex
        #: The term (time.monotonic()): since when the lease is held
        #: without a break, and when it runs out unless renewed.
        self._since = self._ends = 0.0
        #: Whether the log says the threads wait for a lapsed lease.
        self._lapse_told = False
        #: Notified when the term changes, and when the heartbeat ends.
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return repr(self.consumer)

    def acquire(self) -> None:
        """Take the name, or raise ConsumerNameInUse; then requeue what an
        earlier run under this name left in flight."""
        consumer = self.consumer
        if not self._grant() and not self._take_over_from_a_gone_process():
            raise ConsumerNameInUse(
                f'consumer name {self.name!r} of queue {consumer.queue!r} is '
                f'in use by another live process; give each consumer its '
                f'own name (its lease expires {consumer.lease_timeout:g}s '
                f'after that process is gone)')
        requeued, dead = self.backend.requeue_processing(
            self.name, consumer.max_deliveries)
        if requeued or dead:
            log.warning('%r: requeued %d task(s) its previous run left in '
                        'flight; %d of them dead-lettered after too many '
                        'deliveries', self, requeued + dead, dead)

    def info(self) -> dict:
        """What operators see of the consumer beside its lease."""
        consumer = self.consumer
        return {'host': socket.gethostname(), 'pid': os.getpid(),
                'process': PROCESS_ID,
                'concurrency': consumer.concurrent_limit,
                'paused': consumer.paused, 'processed': consumer.processed}

    def held(self) -> bool:
        """Whether the lease holds now, by this consumer's clock."""
        return self.held_since(time.monotonic())

    def held_since(self, moment: float) -> bool:
        """Whether the lease is held now, without a break since ``moment``
        (time.monotonic()): what was reserved then is still this
        consumer's, no sweep can have handed it to another."""
        with self._changed:
            return self._since <= moment and time.monotonic() < self._ends

    def wait_held(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a lapsed lease to be
        renewed (or for the heartbeat to end).  The threads then touch
        the backend no more, so the log says once that they wait: an
        outage that began meanwhile is reported by the heartbeat only
        if it had not already reported one since its last renewal."""
        with self._changed:
            lapsed_for = time.monotonic() - self._ends
            if lapsed_for >= 0:
                if self._ends and not self._lapse_told:
                    self._lapse_told = True
                    log.warning('%r: its lease may have run out (the '
                                'heartbeat has not renewed it); its threads '
                                'take no task until it does', self)
                self._changed.wait(timeout)

    def keep_in_background(self, stopping: threading.Event
                           ) -> threading.Thread:
        """Start the heartbeat thread (``keep``)."""
        thread = threading.Thread(
            target=self.keep, args=(stopping,), daemon=True,
            name=f'wsgi-taskqueue {self.name} heartbeat')
        thread.start()
        return thread

    def keep(self, stopping: threading.Event) -> None:
        """Renew the lease until ``stopping``; once healthy for a whole
        lease period, sweep up after consumers that are gone.  Set
        ``stopping`` if another process took the name over."""
        try:
            self._keep(stopping)
        finally:
            with self._changed:
                self._changed.notify_all()

    def _keep(self, stopping: threading.Event) -> None:
        consumer = self.consumer
        interval = consumer.lease_timeout / 3
        healthy_since = None
        outage = Outage(self, stopping)
        while not stopping.wait(interval):
            try:
                if not self._grant():
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

    def _grant(self, gone_pid: int | None = None) -> bool:
        """Take or renew the lease; on success, extend the term.  It runs
        ``lease_timeout`` from when the request was sent (the backend's
        expiry is later still); a renewal answered after the term ran out
        begins a new one, as the lease may have lapsed and been swept in
        between."""
        consumer = self.consumer
        sent = time.monotonic()
        if not self.backend.acquire(self.name, self.token,
                                    consumer.lease_timeout, self.info(),
                                    gone_pid=gone_pid):
            return False
        with self._changed:
            late = time.monotonic() - self._ends
            if late >= 0:
                if self._ends:
                    log.warning('%r: its lease was renewed %.1fs after it '
                                'may have run out; the tasks its threads '
                                'had reserved but not started are handed '
                                'back', self, late)
                self._since = sent
            self._ends = sent + consumer.lease_timeout
            self._lapse_told = False
            self._changed.notify_all()
        return True

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
        for holder in self.backend.consumers():
            if (holder['name'] == self.name
                    and holder.get('host') == socket.gethostname()
                    and isinstance(holder.get('pid'), int)
                    and not _runs(holder['pid'], holder.get('process'))
                    and self._grant(gone_pid=holder['pid'])):
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
