"""Worker processes: limits for cron-style runs, pause and resume."""
import textwrap

import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.serve import WorkerLimits, run_worker

from dummies import RecordingApp, wait_until


@pytest.fixture
def worker_ini(tmp_path, redis_url):
    path = tmp_path / 'worker.ini'
    path.write_text(textwrap.dedent(f"""
        [taskqueue]
        type = redis
        url = {redis_url}

        [taskqueue-server]
        name = worker
        concurrent_limit = 2
        prefetch = 2
        poll_interval = 0.2
    """))
    wsgi_taskqueue.configure(str(path))
    return str(path)


def add(count):
    with transaction.manager:
        for number in range(count):
            taskqueue.add(f'/task/{number}')


def test_once_drains_the_queue_then_stops(worker_ini):
    add(20)
    app = RecordingApp()
    assert run_worker(app, worker_ini, WorkerLimits(once=True)) == \
        'queues drained (--once)'
    assert len(app.environs) == 20
    assert wsgi_taskqueue.get_queue().counts()['processing'] == {}


def test_max_tasks_dispatches_exactly_that_many(worker_ini):
    add(10)
    app = RecordingApp()
    assert 'dispatched 3 task(s)' in run_worker(
        app, worker_ini, WorkerLimits(max_tasks=3))
    assert len(app.environs) == 3
    assert wsgi_taskqueue.get_queue().counts()['pending'] == 7


def test_runtime_stops_an_idle_worker(worker_ini):
    assert run_worker(RecordingApp(), worker_ini,
                      WorkerLimits(runtime=0.3)) == 'ran 0.3s (--runtime)'


def test_memory_limit_stops_a_worker_above_it(worker_ini):
    assert '--memory-limit' in run_worker(
        RecordingApp(), worker_ini, WorkerLimits(memory_limit=1024))


def test_a_local_queue_cannot_be_consumed_by_a_worker(tmp_path):
    path = tmp_path / 'local.ini'
    path.write_text('[taskqueue]\n[taskqueue-server]\n')
    with pytest.raises(wsgi_taskqueue.ConfigurationError, match='in-process'):
        run_worker(RecordingApp(), str(path))


def test_a_paused_consumer_takes_nothing_until_resumed(redis_queue):
    app = RecordingApp()
    consumer = wsgi_taskqueue.Consumer(app, name='p', poll_interval=0.2)
    consumer.start()
    try:
        consumer.pause()
        assert consumer.paused
        add(3)
        # Observe a paused consumer for a while: nothing may be taken.
        wait_until(lambda: redis_queue.counts()['pending'] == 3)
        assert not app.environs
        consumer.resume()
        app.wait_for(3)
    finally:
        assert consumer.stop(5)
