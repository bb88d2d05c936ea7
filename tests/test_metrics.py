"""Prometheus metrics: off by default, what they count once enabled, and
where they are served."""
from __future__ import annotations

import sys

import prometheus_client
import pytest
import transaction
import webtest

import wsgi_taskqueue
from wsgi_taskqueue import metrics, taskqueue
from wsgi_taskqueue.management import app_factory, make_app
from wsgi_taskqueue.testing import free_port

from dummies import RecordingApp, wait_until

KEY = 'metrics-test-key-0123456789'
AUTH = {'X-API-Key': KEY}


@pytest.fixture(autouse=True)
def disabled_afterwards():
    yield
    metrics.disable()


@pytest.fixture
def registry():
    return prometheus_client.CollectorRegistry()


def add(*urls):
    with transaction.manager:
        return [taskqueue.add(url) for url in urls]


def test_metrics_are_off_by_default(local_queue):
    assert type(metrics.recorder) is metrics.NullRecorder
    assert metrics.exposition() is None
    response = webtest.TestApp(make_app(KEY)).get('/metrics', headers=AUTH,
                                                  status=404)
    assert response.json['error'].startswith('metrics are not enabled')


def test_enabling_without_prometheus_client_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'prometheus_client', None)
    with pytest.raises(ImportError,
                       match=r'pip install "wsgi-taskqueue\[metrics\]"'):
        metrics.enable()
    assert type(metrics.recorder) is metrics.NullRecorder


def test_enqueued_dispatched_outcome_latency_and_duration_per_queue(
        queue, registry):
    metrics.enable(registry)
    failed_once = set()

    def respond(environ):
        path = environ['PATH_INFO']
        if path == '/gone':
            return '404 Not Found'
        if path == '/flaky' and path not in failed_once:
            failed_once.add(path)
            return '503 Service Unavailable'
        return '200 OK'
    app = RecordingApp(respond=respond)
    consumer = wsgi_taskqueue.Consumer(app, name='metrics', poll_interval=0.1,
                                       retry_delay=0.01, retry_delay_max=0.01)
    consumer.start()
    try:
        add('/a', '/b', '/gone', '/flaky')
        app.wait_for(5)
        wait_until(lambda: queue.counts()['processing'] == {})
    finally:
        consumer.stop(5)

    def value(name, **labels):
        return registry.get_sample_value(name, dict(queue='default', **labels))
    assert value('wsgi_taskqueue_enqueued_total') == 4
    assert value('wsgi_taskqueue_dispatched_total', outcome='done') == 3
    assert value('wsgi_taskqueue_dispatched_total', outcome='retry') == 1
    assert value('wsgi_taskqueue_dispatched_total', outcome='dead') == 1
    # Latency is enqueue-to-start of first attempts; duration every run.
    assert value('wsgi_taskqueue_latency_seconds_count') == 4
    assert value('wsgi_taskqueue_duration_seconds_count') == 5
    assert 0 < value('wsgi_taskqueue_latency_seconds_sum') < 60


def test_queue_depth_is_read_at_each_scrape(queue, registry):
    metrics.enable(registry)
    add('/a', '/b', '/c')
    depth = {state: registry.get_sample_value(
        'wsgi_taskqueue_queue_depth', {'queue': 'default', 'state': state})
        for state in metrics.QueueDepthCollector.STATES}
    assert depth == {'pending': 3, 'processing': 0, 'delayed': 0, 'dead': 0,
                     'staged': 0}
    assert registry.get_sample_value('wsgi_taskqueue_queue_up',
                                     {'queue': 'default'}) == 1
    queue.purge()
    assert registry.get_sample_value('wsgi_taskqueue_queue_depth', {
        'queue': 'default', 'state': 'pending'}) == 0


def test_a_queue_whose_backend_is_away_is_reported_down(registry):
    wsgi_taskqueue.register_queue('away', wsgi_taskqueue.RedisQueue(
        url=f'redis://127.0.0.1:{free_port()}/0', socket_timeout=0.5))
    metrics.enable(registry)
    assert registry.get_sample_value('wsgi_taskqueue_queue_up',
                                     {'queue': 'away'}) == 0
    assert registry.get_sample_value('wsgi_taskqueue_queue_depth', {
        'queue': 'away', 'state': 'pending'}) is None


def test_enable_is_idempotent_and_disable_unregisters(registry):
    recorder = metrics.enable(registry)
    assert metrics.enable(registry) is recorder is metrics.recorder
    metrics.disable()
    assert type(metrics.recorder) is metrics.NullRecorder
    assert b'wsgi_taskqueue' not in prometheus_client.generate_latest(registry)
    # Its metrics left the registry: they can come back.
    metrics.enable(registry)
    metrics.enable(prometheus_client.CollectorRegistry())
    assert b'wsgi_taskqueue' not in prometheus_client.generate_latest(registry)


def test_the_management_app_serves_them_to_key_holders(local_queue, registry):
    metrics.enable(registry)
    add('/a')
    api = webtest.TestApp(make_app(KEY))
    response = api.get('/metrics', headers=AUTH)
    assert response.headers['Content-Type'].startswith('text/plain')
    assert 'wsgi_taskqueue_queue_depth{queue="default",state="pending"} 1.0' \
        in response.text
    openmetrics = api.get('/metrics', headers=dict(
        AUTH, Accept='application/openmetrics-text; version=1.0.0'))
    assert openmetrics.headers['Content-Type'].startswith(
        'application/openmetrics-text')
    assert openmetrics.text.endswith('# EOF\n')
    api.get('/metrics', status=404)


def test_the_ini_switch_enables_them_in_the_global_registry(tmp_path):
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue]\ntype = local\n')
    app_factory({'__file__': str(ini)}, api_key=KEY, metrics='true')
    assert metrics.recorder.registry is prometheus_client.REGISTRY
    text = webtest.TestApp(make_app(KEY)).get('/metrics', headers=AUTH).text
    assert 'wsgi_taskqueue_queue_up{queue="default"} 1.0' in text


def test_make_wsgi_app_serves_the_enabled_registry(local_queue, registry):
    metrics.enable(registry)
    text = webtest.TestApp(metrics.make_wsgi_app()).get('/').text
    assert 'wsgi_taskqueue_queue_depth' in text
    assert metrics.recorder.registry is registry


def test_a_task_out_of_retries_counts_as_dead_not_retry(local_queue):
    recorded = []

    class Recorder(metrics.NullRecorder):
        def dispatched(self, queue, outcome, latency, duration):
            recorded.append(outcome)

    original, metrics.recorder = metrics.recorder, Recorder()
    consumer = wsgi_taskqueue.Consumer(RecordingApp('500 Oops'), name='m',
                                       retry_max_count=1, retry_delay=0.01,
                                       poll_interval=0.1)
    consumer.start()
    try:
        with transaction.manager:
            taskqueue.add('/fails')
        wait_until(lambda: len(recorded) == 2)
    finally:
        consumer.stop(5)
        metrics.recorder = original
    assert recorded == ['retry', 'dead']
