"""A pooled connection that a database restart closed: replaced before use
when it rested in the pool (no ping per transaction otherwise)."""
import pytest
import sqlalchemy as sa

from wsgi_taskqueue.backends.sql import pings
from wsgi_taskqueue.errors import BackendUnavailable

from conftest import empty_sql_queue


@pytest.fixture
def restarted(postgresql_server, postgresql_url):
    """A queue whose pool holds a connection from before a restart."""
    queue = empty_sql_queue(postgresql_url)
    with queue.store.transaction() as connection:
        connection.execute(sa.select(1))
    postgresql_server.restart()
    yield queue
    queue.close()


def test_a_connection_that_rested_is_pinged_and_replaced(restarted,
                                                         monkeypatch):
    monkeypatch.setattr(pings, 'IDLE', 0.0)
    restarted.stage('b1', [b'1'])
    assert restarted.counts()['staged'] == 1


def test_a_connection_just_used_is_not_pinged_and_its_failure_replaces_all(
        restarted, monkeypatch):
    monkeypatch.setattr(pings, 'IDLE', 3600.0)
    with pytest.raises(BackendUnavailable, match='unavailable'):
        restarted.stage('b1', [b'1'])
    restarted.stage('b2', [b'2'])
    assert restarted.counts()['staged'] == 1
