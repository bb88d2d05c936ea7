"""Commands Redis applied whose replies never reached the client.

That is what a Redis restart, a failover or a dropped connection does to
the commands in flight at that moment (test_redis_outage meets it by
chance); proxy.ReplyDroppingProxy does it on cue, to one chosen command.
The client sees a connection error and cannot tell whether the command
was applied: the library must act so that the guarantees hold either way.
"""
import collections
import uuid

import pytest
import redis
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import BackendUnavailable

from .proxy import ReplyDroppingProxy
from dummies import wait_until

#: Generous: ten lease periods of the consumers (lease_timeout = 1).
RECOVERY = 10
STAGED_GRACE = 3


@pytest.fixture
def proxy(redis_server, redis_url):
    """Put before ``cluster`` in a test's arguments: it then closes after
    the cluster's processes stopped."""
    proxy = ReplyDroppingProxy(redis_server.port)
    yield proxy
    proxy.close()


def test_a_task_whose_reservation_reply_was_lost_still_runs(proxy, cluster):
    """G2: the reserve moved the task into the consumer's processing list,
    but the consumer never learned it holds it.  The consumer lives on, so
    no sweep requeues its list: it must find the task itself."""
    worker = cluster.worker('w1', redis_url=proxy.url)
    mark = uuid.uuid4().hex
    proxy.drop_reply_with(mark.encode())
    [task] = cluster.add(mark=mark)

    cluster.wait_until(lambda: proxy.dropped == 1, 'the reply to be lost')
    cluster.wait_for_runs([task], RECOVERY)
    cluster.wait_until(cluster.settled, 'a settled queue')
    assert cluster.ledger.runs(task) == [(task, 1, worker.pid)]


@pytest.mark.parametrize('join', ['0', '1'], ids=['alone', 'beside-sql'])
@pytest.mark.parametrize('then', ['reconnects', 'is-down'])
def test_a_commit_whose_reply_was_lost_runs_its_tasks_once_or_never(
        proxy, cluster, join, then):
    """G1 and G5: the vote's stage (the tasks alone in their transaction,
    or beside another resource) reached Redis, its reply did not; then
    Redis is reachable again at once, or only after the request ended.
    Whether the request reports a commit or a failure, the tasks must run
    once if it committed and never if it failed."""
    cluster.web(redis_url=proxy.url)
    # A staged batch nobody promotes or discards is promoted by the sweep
    # after staged_grace: soon, so that the test sees what becomes of it.
    worker = cluster.worker('w1', staged_grace=STAGED_GRACE)
    mark = uuid.uuid4().hex
    proxy.drop_reply_to(mark.encode(), then_refuse=then == 'is-down')
    name = uuid.uuid4().hex
    response = cluster.enqueue(count=2, name=name, mark=mark, join=join)
    assert proxy.dropped == 1
    proxy.accept_again()
    tasks = cluster.ledger.added(name)
    assert len(tasks) == 2

    if response.status_code == 200:
        cluster.wait_for_runs(tasks)
    cluster.wait_until(cluster.settled, 'a settled queue', RECOVERY)
    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    outcome = (f'the request answered {response.status_code}; runs: '
               f'{dict(runs)}')
    if response.status_code == 200:
        assert runs == dict.fromkeys(tasks, 1), outcome
    else:
        assert runs == {}, outcome
    assert worker.running


@pytest.mark.parametrize('then', ['reconnects', 'is-down'])
def test_a_promotion_whose_reply_was_lost_runs_its_tasks_once(
        proxy, cluster, then):
    """G2 and G5: the commit sends the promotion without waiting for its
    reply; Redis applies it and the reply is lost with the connection
    (then Redis is reachable again at once, or only later).  The request
    has answered already; its tasks must run, once each."""
    cluster.web(redis_url=proxy.url)
    worker = cluster.worker('w1', staged_grace=STAGED_GRACE)
    # Of the web process's commands, only the promotion names the pending
    # list (the stage names the staged batch; consumers talk to Redis
    # directly).
    proxy.drop_reply_to(b'{default}:pending', then_refuse=then == 'is-down')
    name = uuid.uuid4().hex
    response = cluster.enqueue(count=2, name=name)
    assert response.status_code == 200
    cluster.wait_until(lambda: proxy.dropped == 1, 'the reply to be lost')
    proxy.accept_again()
    # The next commit (on whichever thread) finds its way too; a thread
    # that meets the lost reply re-sends the promotion, which is
    # idempotent.
    again = uuid.uuid4().hex
    assert cluster.enqueue(count=1, name=again).status_code == 200
    tasks = cluster.ledger.added(name) + cluster.ledger.added(again)
    assert len(tasks) == 3
    cluster.wait_for_runs(tasks)
    cluster.wait_until(cluster.settled, 'a settled queue', RECOVERY)
    runs = collections.Counter(run[0] for run in cluster.ledger.runs())
    assert runs == dict.fromkeys(tasks, 1)
    assert worker.running


def test_a_stage_answered_before_redis_went_away_is_discarded(proxy,
                                                              redis_url):
    """min_replicas = 1: the stage was applied and answered, then Redis
    went away before the WAIT that follows it could be sent.  The vote
    says no, and the abort must discard the stage (the vote sent it, even
    though the command that failed never left)."""
    queue = wsgi_taskqueue.RedisQueue(url=proxy.url, socket_timeout=1,
                                      min_replicas=1)
    wsgi_taskqueue.register_queue('default', queue)
    mark = uuid.uuid4().hex
    proxy.close_after_reply_to(mark.encode())
    with pytest.raises(BackendUnavailable), transaction.manager:
        taskqueue.add('/task', params={'mark': mark})
    assert proxy.dropped == 1
    proxy.accept_again()
    # The discard is retried in the background (follow_ups, which other
    # tests of this process may keep busy): wait for the stage to go.
    direct = redis.Redis.from_url(redis_url)
    wait_until(lambda: direct.hlen(queue.staged_key) == 0, timeout=10)
