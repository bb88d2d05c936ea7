"""huey's enqueue placed in an after-commit hook of the same
``transaction``: what a huey user writes who wants a job sent only once
the request's transaction has committed, as ``taskqueue.add`` is.

The hook runs after the commit, so a job is never sent for an aborted
transaction; but one whose ``LPUSH`` fails after the commit is lost (the
hook's errors are logged and swallowed), and nothing is staged before the
vote: the guarantees are weaker than ours for the same work.  The worker
is huey's row's (:mod:`systems.huey`).
"""
from __future__ import annotations

import transaction

from systems import huey, measure

#: Enqueue-side only: the worker and the drain are huey's row's.
MEASURES = ('enqueue', 'latency')
WORKER = huey.WORKER


def send(i: int, sent: float) -> None:
    with transaction.manager as txn:
        txn.addAfterCommitHook(_enqueue_if_committed, (i, sent))


def _enqueue_if_committed(committed: bool, i: int, sent: float) -> None:
    if committed:
        huey.noop(i, sent)


push = measure.one_by_one(send)
