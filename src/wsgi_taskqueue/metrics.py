"""Metrics of what the queue does, for Prometheus.

Off by default: the consumer and the data manager report to ``recorder``,
which does nothing until ``enable()`` replaces it, so the hot path pays one
method call and no dependency is needed.  ``enable()`` needs
``prometheus_client`` (``pip install wsgi-taskqueue[metrics]``).

==================================== ========= ==============================
metric                               type      labels
==================================== ========= ==============================
wsgi_taskqueue_enqueued_total        counter   queue: tasks whose transaction
                                               committed
wsgi_taskqueue_dispatched_total      counter   queue, outcome (done,
                                               redirected, retry, dead)
wsgi_taskqueue_latency_seconds       histogram queue: enqueue to start, first
                                               attempts
wsgi_taskqueue_duration_seconds      histogram queue: time the app took
wsgi_taskqueue_queue_depth           gauge     queue, state (pending,
                                               processing, delayed, dead,
                                               staged), read at each scrape
wsgi_taskqueue_queue_up              gauge     queue: 1 when its backend
                                               answered the scrape
==================================== ========= ==============================

Counters and histograms count what this process did (scrape every process
that adds or runs tasks); the depth is the queue's, the same from any
process.  The management app serves them at ``/metrics``; or serve
``make_wsgi_app()`` yourself.
"""
from __future__ import annotations

import logging
import threading

__all__ = ['recorder', 'enable', 'disable', 'exposition', 'make_wsgi_app',
           'NullRecorder', 'PrometheusRecorder']

log = logging.getLogger(__name__)

#: Enqueue-to-start: from milliseconds (an idle consumer) to an hour (a
#: backlog).
LATENCY_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60,
                   300, 900, 3600)
#: Views answer in milliseconds; tasks may take minutes.
DURATION_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60,
                    300)


class NullRecorder:
    """Receives every observation and keeps none."""

    def enqueued(self, queue: str, count: int) -> None:
        """``count`` tasks of ``queue`` became pending (their transaction
        committed)."""

    def dispatched(self, queue: str, outcome: str, latency: float,
                   duration: float) -> None:
        """A task of ``queue`` ran: ``outcome`` is done, redirected, retry
        or dead; ``latency`` the seconds from enqueue to start (first
        attempt only, else None); ``duration`` the seconds the app took."""


class PrometheusRecorder(NullRecorder):
    """Records into ``prometheus_client`` metrics registered in
    ``registry``."""

    def __init__(self, registry):
        from prometheus_client import Counter, Histogram

        self.registry = registry
        self.enqueued_total = Counter(
            'wsgi_taskqueue_enqueued', 'Tasks queued (their transaction '
            'committed).', ['queue'], registry=registry)
        self.dispatched_total = Counter(
            'wsgi_taskqueue_dispatched', 'Tasks dispatched, by outcome.',
            ['queue', 'outcome'], registry=registry)
        self.latency = Histogram(
            'wsgi_taskqueue_latency_seconds', 'Seconds from enqueue to the '
            'start of the first attempt.', ['queue'], registry=registry,
            buckets=LATENCY_BUCKETS)
        self.duration = Histogram(
            'wsgi_taskqueue_duration_seconds', 'Seconds the app took to '
            'answer a task.', ['queue'], registry=registry,
            buckets=DURATION_BUCKETS)
        self.depth = QueueDepthCollector()
        registry.register(self.depth)
        self.collectors = [self.enqueued_total, self.dispatched_total,
                           self.latency, self.duration, self.depth]

    def enqueued(self, queue, count):
        self.enqueued_total.labels(queue).inc(count)

    def dispatched(self, queue, outcome, latency, duration):
        self.dispatched_total.labels(queue, outcome).inc()
        if latency is not None:
            # Clocks of the enqueuing and consuming hosts may disagree.
            self.latency.labels(queue).observe(max(0.0, latency))
        self.duration.labels(queue).observe(duration)

    def unregister(self) -> None:
        for collector in self.collectors:
            self.registry.unregister(collector)


class QueueDepthCollector:
    """The tasks of every registered queue by state, read at each scrape
    (one ``counts()`` per queue)."""

    STATES = ('pending', 'processing', 'delayed', 'dead', 'staged')

    def describe(self):
        # Known without asking the backends at registration.
        return self._families()

    def collect(self):
        from .errors import TaskQueueError
        from .registry import get_queue, queue_names

        depth, up = self._families()
        for name in queue_names():
            try:
                counts = get_queue(name).counts()
            except TaskQueueError as exc:
                log.warning('metrics: no counts for queue %r: %s', name, exc)
                up.add_metric([name], 0)
                continue
            counts['processing'] = sum(counts['processing'].values())
            for state in self.STATES:
                depth.add_metric([name, state], counts.get(state, 0))
            up.add_metric([name], 1)
        return [depth, up]

    def _families(self):
        from prometheus_client.core import GaugeMetricFamily
        return [GaugeMetricFamily(
                    'wsgi_taskqueue_queue_depth', 'Tasks of a queue by state.',
                    labels=['queue', 'state']),
                GaugeMetricFamily(
                    'wsgi_taskqueue_queue_up', '1 when the queue backend '
                    'answered the scrape, else 0.', labels=['queue'])]


recorder: NullRecorder = NullRecorder()
_lock = threading.Lock()


def enable(registry=None) -> PrometheusRecorder:
    """Start recording into Prometheus metrics (``prometheus_client``),
    registered in ``registry`` (default: the client's global ``REGISTRY``);
    return the recorder.  Enabling again with the same registry changes
    nothing."""
    global recorder
    prometheus_client = _prometheus_client()
    if registry is None:
        registry = prometheus_client.REGISTRY
    with _lock:
        if isinstance(recorder, PrometheusRecorder):
            if recorder.registry is registry:
                return recorder
            recorder.unregister()
        recorder = PrometheusRecorder(registry)
        return recorder


def disable() -> None:
    """Stop recording; the metrics leave their registry."""
    global recorder
    with _lock:
        if isinstance(recorder, PrometheusRecorder):
            recorder.unregister()
        recorder = NullRecorder()


def exposition(accept: str | None = None) -> tuple[bytes, str] | None:
    """The metrics in the text format ``accept`` asks for (Prometheus or
    OpenMetrics) and its content type; None while not enabled."""
    current = recorder
    if not isinstance(current, PrometheusRecorder):
        return None
    from prometheus_client.exposition import choose_encoder
    encoder, content_type = choose_encoder(accept or '')
    return encoder(current.registry), content_type


def serve(listen: str) -> None:
    """Enable the metrics and serve them on ``listen`` (HOST:PORT) from a
    thread of this process: how a worker, which serves no app, shows
    them."""
    host, _, port = listen.rpartition(':')
    if not host or not port.isdigit():
        raise ValueError(f'expected HOST:PORT, not {listen!r}')
    current = enable()
    _prometheus_client().start_http_server(
        int(port), addr=host.strip('[]'), registry=current.registry)


def make_wsgi_app():
    """A WSGI app serving the metrics (no authentication: bind it where
    only the scraper can reach it)."""
    current = recorder
    if not isinstance(current, PrometheusRecorder):
        current = enable()
    return _prometheus_client().make_wsgi_app(current.registry)


def _prometheus_client():
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(
            'wsgi_taskqueue.metrics needs prometheus_client: pip install '
            '"wsgi-taskqueue[metrics]" (or prometheus_client)') from exc
    return prometheus_client
