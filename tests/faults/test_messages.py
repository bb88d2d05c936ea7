"""Poison and forged messages written straight into Redis or the
database (section 3a).

The fault app's queue signs with cluster.SECRET; whoever can write to
Redis or the database but does not know it cannot get a request run.  Each bad message
goes to the dead letters with the reason, and the worker goes on with the
tasks behind it.
"""
from wsgi_taskqueue.task import Codec, Task

from .cluster import SECRET
from .conftest import BACKENDS

pytestmark = BACKENDS


def a_task(url: str = '/task') -> Task:
    return Task.new(queue='default', url=url, method='POST', environ={},
                    payload=b'', user_id='admin')


def test_poison_and_forged_messages_go_to_the_dead_letters(cluster):
    worker = cluster.worker('w1')
    unsigned, forged, tampered = a_task(), a_task(), a_task()
    signed = Codec([SECRET]).encode(tampered)
    bad = {
        b'\x00\xff garbage without a newline': 'not a task message',
        b'\xde\xad\n{not json\n\xbe\xef': 'does not match any secret',
        Codec([]).encode(unsigned): 'unsigned task refused',
        Codec(['not-the-secret']).encode(forged): 'does not match any secret',
        # Signed with the right secret, then pointed at another view.
        signed.replace(b'"/task"', b'"/task?x=1"'): 'does not match any secret',
    }
    assert len(set(bad)) == 5
    # Ahead of what is pending: these come first.
    cluster.write_raw(bad)
    [task] = cluster.add()

    cluster.wait_for_runs([task])
    cluster.wait_until(lambda: cluster.counts()['dead'] == len(bad),
                       f'{len(bad)} dead letters')
    letters = {letter.message: letter for letter in cluster.dead_letters()}
    assert set(letters) == set(bad)
    for message, reason in bad.items():
        assert reason in letters[message].error, (message, letters[message])
        assert letters[message].queue == 'default'
    # Only the genuine task ran, and the worker lives on.
    assert cluster.ledger.runs() == [(task, 1, worker.pid)]
    [later] = cluster.add()
    cluster.wait_for_runs([later])
    cluster.wait_until(cluster.settled, 'a settled queue')
    assert worker.running
    assert 'burying a message that is not a task' in worker.output()
