"""Commit one note and its task, and die by SIGKILL at a given step of
the commit:

    python -m outbox.crash APP_URL QUEUE_URL STEP TEXT [MODE]

MODE ``outbox`` (the default) writes the task through the app's session;
``own`` stages it on the queue's own connection (``outbox = false``).
"""
import os
import signal
import sys

import transaction
from transaction.interfaces import IDataManager
from zope.interface import implementer

import wsgi_taskqueue
from wsgi_taskqueue import taskqueue

from .app import bind, write_note


def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)


@implementer(IDataManager)
class Killer:
    """A resource that kills the process in one phase of the commit,
    sorted before or after zope.sqlalchemy's."""

    def __init__(self, phase: str, sort_key: str):
        self.phase = phase
        self.sort_key = sort_key
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return self.sort_key

    def _maybe_die(self, phase):
        if phase == self.phase:
            die()

    def abort(self, txn):
        pass

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        self._maybe_die('commit')

    def tpc_vote(self, txn):
        self._maybe_die('vote')

    def tpc_finish(self, txn):
        self._maybe_die('finish')

    def tpc_abort(self, txn):
        pass


#: The steps of the commit, in order, and where the Killer joins for
#: each: (phase, sort key), the keys placing it after the task queue's
#: resource ('wsgi_taskqueue:...') and before or after zope.sqlalchemy's
#: ('~sqlalchemy:...', whose vote commits the database).  The outbox
#: writes the tasks in the commit phase; on its own connection the queue
#: stages them in its vote, before the database's, and promotes them in an
#: after-commit hook that runs before the one of 'after-commit'.
STEPS = {
    'before-commit': None,  # a before-commit hook
    'after-tasks-written': ('commit', 'x'),
    'before-database-commit': ('vote', 'wsgi_taskqueue~'),
    'after-database-commit': ('vote', '~sqlalchemy~'),
    'in-finish': ('finish', '~sqlalchemy~'),
    'after-commit': None,  # an after-commit hook
    'never': None,
}


def main(url: str, queue_url: str, step: str, text: str,
         mode: str = 'outbox') -> None:
    bind(url)
    wsgi_taskqueue.register_queue('default', wsgi_taskqueue.SqlQueue(
        url=queue_url, session='outbox.app.Session',
        outbox={'outbox': True, 'own': False}[mode]))
    txn = transaction.begin()
    write_note(text)
    taskqueue.add('/process', params={'text': text})
    if step == 'before-commit':
        txn.addBeforeCommitHook(die)
    elif step == 'after-commit':
        txn.addAfterCommitHook(die)
    elif STEPS[step] is not None:
        txn.join(Killer(*STEPS[step]))
    txn.commit()


if __name__ == '__main__':
    main(*sys.argv[1:])
