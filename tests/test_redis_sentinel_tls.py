"""rediss+sentinel://: a Sentinel group whose Sentinels, primary and
replicas speak only TLS (certificates of a throw-away CA, made with
openssl): the queue asks the Sentinels, follows their events and talks to
the primary through TLS, also across a failover."""
import pytest
import transaction

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.errors import ConfigurationError
from wsgi_taskqueue.testing_ha import SentinelGroup


@pytest.fixture(scope='module')
def tls_group():
    with SentinelGroup(replicas=1, tls=True) as group:
        yield group


def commit(url):
    with transaction.manager:
        return taskqueue.add(url)


def test_a_queue_through_sentinels_that_speak_only_tls(tls_group):
    assert tls_group.url.startswith('rediss+sentinel://127.0.0.1:')
    queue = wsgi_taskqueue.RedisQueue(url=tls_group.url, socket_timeout=2,
                                      min_replicas=1)
    wsgi_taskqueue.register_queue('default', queue)
    before = commit('/before')
    first = tls_group.primary_port()
    assert queue.pool.master_address == ('127.0.0.1', first)
    # The servers have no plain port: every connection is TLS.
    assert queue.clients()['thread'] >= 1
    new = tls_group.failover()
    assert new != first
    # The Sentinels' event (over TLS) or the demoted primary's READONLY
    # moves the queue; the replica had the task (min_replicas = 1).
    after = commit('/after')
    assert queue.pool.master_address == ('127.0.0.1', new)
    taken = queue.reserve('w#1', 10, 0)
    assert [queue.codec.decode(m).id for m in taken] == [before, after]


@pytest.mark.parametrize('url, message', [
    ('rediss+sentinel://127.0.0.1:1/s?ssl_ciphers=x', "not 'ssl_ciphers'"),
    ('redis+sentinel://127.0.0.1:1/s?ssl_ca_certs=/ca', 'no query'),
])
def test_a_bad_tls_sentinel_url_is_named(tmp_path, url, message):
    path = tmp_path / 'app.ini'
    path.write_text(f'[taskqueue]\ntype = redis\nurl = {url}\n')
    with pytest.raises(ConfigurationError, match=message):
        wsgi_taskqueue.configure(str(path))
