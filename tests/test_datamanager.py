"""The transaction integration: G1 (no phantoms), G3 (visible only after
commit), G4 (atomic, ordered batches), G6 (fail fast, nothing half-written)."""
import time

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.orm import Session, declarative_base
from zope.sqlalchemy import register

import wsgi_taskqueue
from wsgi_taskqueue import datamanager, taskqueue
from wsgi_taskqueue.errors import BackendUnavailable
from wsgi_taskqueue.followup import follow_ups

Base = declarative_base()


class Row(Base):
    __tablename__ = 'rows'
    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String)


def quick_queue(redis_url):
    """The default queue, on a Redis a test stops: short timeouts."""
    queue = wsgi_taskqueue.RedisQueue(url=redis_url, socket_timeout=1.0)
    wsgi_taskqueue.register_queue('default', queue)
    return queue


def urls(queue):
    return [queue.codec.decode(m).url for m in queue.reserve('test', 1000, 0)]


def test_committed_tasks_become_pending_in_the_order_added(queue):
    with transaction.manager:
        for number in range(5):
            taskqueue.add(f'/task/{number}')
    assert urls(queue) == [f'/task/{number}' for number in range(5)]
    assert queue.counts()['staged'] == 0


def test_the_cleanup_after_a_commit_leaves_the_manager_committed(queue):
    # ``transaction`` calls abort on every resource after the after-commit
    # hooks: a committed transaction's batch is promoted, never discarded,
    # and its manager says committed, not aborted.
    with transaction.manager as txn:
        taskqueue.add('/kept')
        manager = txn.data(datamanager.TaskDataManager)
    assert manager.state == 'committed'
    assert urls(queue) == ['/kept']
    assert queue.counts()['staged'] == 0


def test_aborted_transactions_dispatch_nothing(queue):
    with pytest.raises(ZeroDivisionError), transaction.manager:
        taskqueue.add('/never')
        raise ZeroDivisionError
    transaction.begin()
    taskqueue.add('/never')
    transaction.abort()
    assert urls(queue) == []
    assert queue.counts() == {'pending': 0, 'delayed': 0, 'dead': 0,
                              'staged': 0, 'processing': {}}


def test_doomed_transactions_dispatch_nothing(queue):
    transaction.begin()
    taskqueue.add('/never')
    transaction.doom()
    with pytest.raises(transaction.interfaces.DoomedTransaction):
        transaction.commit()
    transaction.abort()
    assert urls(queue) == []


def test_rolling_back_a_savepoint_drops_the_tasks_added_after_it(queue):
    with transaction.manager:
        taskqueue.add('/kept')
        savepoint = transaction.savepoint()
        taskqueue.add('/dropped')
        savepoint.rollback()
        taskqueue.add('/also-kept')
    assert urls(queue) == ['/kept', '/also-kept']


def test_a_savepoint_taken_before_the_first_task_drops_them_all(queue):
    with transaction.manager:
        savepoint = transaction.savepoint()
        taskqueue.add('/dropped')
        savepoint.rollback()
    assert urls(queue) == []


class VetoingResource:
    """A resource that votes no, after our vote has staged the tasks."""

    def __init__(self, check=None):
        self.check = check
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return '~~veto'

    def tpc_vote(self, txn):
        if self.check:
            return self.check()
        raise RuntimeError('vote: no')

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_finish = tpc_abort = abort


def test_a_no_vote_of_another_resource_discards_the_staged_batch(queue):
    transaction.begin()
    taskqueue.add('/never')
    transaction.get().join(VetoingResource())
    with pytest.raises(RuntimeError, match='vote: no'):
        transaction.commit()
    transaction.abort()
    assert urls(queue) == []
    assert queue.counts()['staged'] == 0


def test_tasks_are_invisible_to_consumers_until_the_commit_is_complete(queue):
    seen = []
    transaction.begin()
    taskqueue.add('/later')
    transaction.get().join(VetoingResource(
        check=lambda: seen.append(queue.counts())))
    transaction.commit()
    assert seen[0]['pending'] == 0 and seen[0]['staged'] == 1
    assert urls(queue) == ['/later']


def test_tasks_of_one_transaction_for_several_queues_all_commit(redis_url):
    mail = wsgi_taskqueue.RedisQueue(url=redis_url)
    bulk = wsgi_taskqueue.LocalQueue()
    wsgi_taskqueue.register_queue('mail', mail)
    wsgi_taskqueue.register_queue('bulk', bulk)
    with transaction.manager:
        taskqueue.add('/m1', queue='mail')
        taskqueue.add('/b1', queue='bulk')
        taskqueue.add('/m2', queue='mail')
    assert urls(mail) == ['/m1', '/m2']
    assert urls(bulk) == ['/b1']


def test_a_vote_against_a_stopped_redis_fails_fast_and_writes_nothing(
        redis_server, redis_url, caplog):
    queue = quick_queue(redis_url)
    redis_server.stop()
    try:
        transaction.begin()
        taskqueue.add('/never')
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r'127\.0\.0\.1') as info:
            transaction.commit()
        assert time.monotonic() - started < 5
        transaction.abort()
    finally:
        redis_server.start()
    assert urls(queue) == []
    assert queue.counts()['staged'] == 0
    # No connection, so the stage never left: nothing to discard later.
    assert info.value.unsent
    assert 'discard' not in caplog.text


def test_backend_unavailable_is_a_transient_error_for_retrying_managers():
    assert issubclass(BackendUnavailable,
                      transaction.interfaces.TransientError)


@pytest.fixture
def sql_session(tmp_path):
    engine = sa.create_engine(f'sqlite:///{tmp_path}/test.db')
    Base.metadata.create_all(engine)
    session = Session(engine)
    register(session)
    yield session
    session.close()
    engine.dispose()


def test_a_row_and_its_task_commit_together(redis_queue, sql_session):
    with transaction.manager:
        sql_session.add(Row(name='alice'))
        taskqueue.add('/process/alice')
    assert urls(redis_queue) == ['/process/alice']
    assert sql_session.scalars(sa.select(Row.name)).all() == ['alice']


def test_a_row_and_its_task_abort_together(redis_queue, sql_session):
    transaction.begin()
    sql_session.add(Row(name='bob'))
    taskqueue.add('/process/bob')
    sql_session.flush()
    transaction.abort()
    assert urls(redis_queue) == []
    assert sql_session.scalars(sa.select(Row.name)).all() == []


def test_a_failing_sql_commit_leaves_no_task(redis_queue, sql_session):
    sql_session.add(Row(id=1, name='first'))
    transaction.commit()
    sql_session.add(Row(id=1, name='duplicate key'))
    taskqueue.add('/never')
    with pytest.raises(sa.exc.IntegrityError):
        transaction.commit()
    transaction.abort()
    assert urls(redis_queue) == []
    assert redis_queue.counts()['staged'] == 0


def test_the_task_votes_before_sqlalchemy_commits_in_its_vote(
        redis_server, redis_url, sql_session):
    """With Redis down the vote fails before the one-phase SQL commit, so
    neither the row nor the task exists."""
    queue = quick_queue(redis_url)
    redis_server.stop()
    try:
        transaction.begin()
        sql_session.add(Row(name='carol'))
        taskqueue.add('/process/carol')
        with pytest.raises(BackendUnavailable):
            transaction.commit()
        transaction.abort()
    finally:
        redis_server.start()
    assert sql_session.scalars(sa.select(Row.name)).all() == []
    assert urls(queue) == []


class RedisStopper(VetoingResource):
    """Stops Redis after our vote: in its own vote (then votes no), or in
    tpc_finish (the transaction commits)."""

    def __init__(self, server, veto):
        super().__init__()
        self.server = server
        self.veto = veto

    def tpc_vote(self, txn):
        if self.veto:
            self.server.stop()
            raise RuntimeError('vote: no')

    def tpc_finish(self, txn):
        self.server.stop()


def test_a_promotion_that_meets_a_stopped_redis_happens_once_it_is_back(
        redis_server, redis_url):
    queue = quick_queue(redis_url)
    transaction.begin()
    taskqueue.add('/committed')
    transaction.get().join(RedisStopper(redis_server, veto=False))
    transaction.commit()  # the promotion fails after commit: no error
    assert not follow_ups.wait(0.2)
    redis_server.start()
    assert follow_ups.wait(10)
    assert urls(queue) == ['/committed']
    assert queue.counts()['staged'] == 0


def test_a_discard_that_meets_a_stopped_redis_happens_once_it_is_back(
        redis_server, redis_url):
    queue = quick_queue(redis_url)
    transaction.begin()
    taskqueue.add('/aborted')
    transaction.get().join(RedisStopper(redis_server, veto=True))
    with pytest.raises(RuntimeError, match='vote: no'):
        transaction.commit()
    transaction.abort()
    redis_server.start()
    assert follow_ups.wait(10)
    assert queue.counts()['staged'] == 0
    assert urls(queue) == []


def commands(queue):
    """Commands Redis carried out (not those refused, like an EVALSHA of a
    script it has not loaded yet), counting a script run by its source
    (EVAL, the first time) as one by its SHA1."""
    stats = queue.client.info('commandstats')
    used = {name[len('cmdstat_'):]: value['calls'] - value['failed_calls']
            for name, value in stats.items()}
    used['evalsha'] = used.get('evalsha', 0) + used.pop('eval', 0)
    return used


def test_a_commit_takes_one_round_trip_to_stage_and_one_to_promote(
        redis_queue):
    redis_queue.client.config_resetstat()
    with transaction.manager:
        taskqueue.add('/one')
        taskqueue.add('/two')
    assert urls(redis_queue) == ['/one', '/two']
    used = commands(redis_queue)
    # the stage is one HSET; the scripts: promote, the reserve above
    assert used.get('evalsha') == 2
    assert 'multi' not in used


class WritesPauser(VetoingResource):
    """Pauses Redis's writes once the transaction has committed, before
    the after-commit promotion is sent."""

    def __init__(self, client):
        super().__init__(check=lambda: None)
        self.client = client

    def tpc_finish(self, txn):
        self.client.execute_command('CLIENT', 'PAUSE', 10_000, 'WRITE')


def test_a_commit_does_not_wait_for_the_promotion_to_be_confirmed(
        redis_queue):
    transaction.begin()
    taskqueue.add('/one')
    transaction.get().join(WritesPauser(redis_queue.client))
    try:
        transaction.commit()
        # Back from the commit while Redis holds the promotion.
        assert redis_queue.client.llen(redis_queue.pending_key) == 0
    finally:
        redis_queue.client.execute_command('CLIENT', 'UNPAUSE')
    # What the committing thread reads next includes its promotion.
    assert redis_queue.counts()['pending'] == 1


def test_a_promotion_redis_refuses_is_retried_until_it_goes_through(
        redis_queue, caplog):
    redis_queue.client.set(redis_queue.pending_key, 'not a list')
    with transaction.manager:
        taskqueue.add('/one')
    # The refusal is read with the thread's next command.
    assert redis_queue.dead_letters() == []
    assert redis_queue.client.hlen(redis_queue.staged_key) == 1
    assert 'WRONGTYPE' in caplog.text and 'retrying' in caplog.text
    assert not follow_ups.wait(0.2)
    redis_queue.client.delete(redis_queue.pending_key)
    assert follow_ups.wait(10)
    assert urls(redis_queue) == ['/one']


def test_several_queues_on_one_redis_take_one_round_trip_each_way(
        redis_url, sql_session):
    queues = {name: wsgi_taskqueue.RedisQueue(url=redis_url)
              for name in ('a', 'b', 'c')}
    for name, queue in queues.items():
        wsgi_taskqueue.register_queue(name, queue)
    assert len({queue.group for queue in queues.values()}) == 1
    queues['a'].client.config_resetstat()
    with transaction.manager:
        sql_session.add(Row(name='x'))
        for name in ('a', 'b', 'c', 'a'):
            taskqueue.add(f'/{name}', queue=name)
    used = commands(queues['a'])
    assert used.get('evalsha') == 2  # one stage, one promotion, for all
    assert [urls(queues[name]) for name in 'abc'] == [
        ['/a', '/a'], ['/b'], ['/c']]


def test_a_stage_sent_twice_leaves_one_batch(redis_queue):
    """What a re-sent stage (its first reply lost) must do."""
    redis_queue.stage('b1', [b'1', b'2'])
    redis_queue.stage('b1', [b'1', b'2'])
    redis_queue.promote('b1')
    assert redis_queue.reserve('c', 10, 0) == [b'1', b'2']


def test_a_vote_whose_stage_raised_still_discards_the_batch(redis_queue,
                                                            monkeypatch):
    """The stage may have been applied before its reply was lost; the
    transaction then calls abort() (not tpc_abort) on this resource."""
    applied = redis_queue.stage_batches

    def applied_then_lost(batch_id, batches):
        applied(batch_id, batches)
        raise wsgi_taskqueue.BackendUnavailable('reply lost')
    monkeypatch.setattr(redis_queue, 'stage_batches', applied_then_lost)
    transaction.begin()
    taskqueue.add('/never')
    with pytest.raises(wsgi_taskqueue.BackendUnavailable):
        transaction.commit()
    transaction.abort()
    assert redis_queue.counts()['staged'] == 0
    assert urls(redis_queue) == []
