"""Tasks that wait for other tasks (``add(..., after=ids)``): the rules
every backend follows, and the parts they share.

A task added ``after`` others is *parked* when its batch is promoted:
state ``waiting``, out of the pending line, until every task it waits for
is done.  The step that settles a task (the acknowledgement, the burial,
a cancel or purge) *releases* what was parked on it, in the same Lua
script or SQL transaction, or under the same lock:

- done: each task waiting for it counts one dependency less; one with
  none left becomes pending (or scheduled, if its due time is ahead);
- dead, cancelled or purged: each task waiting for it is dead-lettered,
  with a reason naming it (and so, in turn, those waiting for that one).

At promotion a dependency that is done already counts as done, one that
died already dead-letters the task at once.  A dependency must be known to
the queue when the transaction stages its tasks: a task added earlier in
the same transaction, or one whose status record the queue keeps (so
``after`` needs the status log: ``status_ttl`` > 0).  Cycles cannot
happen: a task can only name tasks added before it.  Completion callbacks
(``completion.py``) and the release of waiting tasks are one mechanism:
what a settled task sets off happens in the step that settles it.
"""
from __future__ import annotations

import contextlib

from ..errors import DecodeError, UnknownDependency
from ..task import identity_of

__all__ = ['DOOMED_SLOT', 'DYING', 'waits', 'dependencies_of',
           'check_known', 'doomed_reason']

#: The processing list of the tasks a dying dependency condemned, until
#: they are buried with their dead letter and callbacks (no consumer
#: holds it, so no sweep requeues it).
DOOMED_SLOT = '~doomed'
#: The states of a dependency that condemn the tasks waiting for it.
DYING = frozenset(['dead', 'cancelled', 'purged'])
#: How ``after`` begins in a header (``options.py``: key 'af').
_MARK = b',"af":['


def waits(message: bytes) -> bool:
    """Whether ``message`` may carry ``after`` (a cheap test: the
    payload may contain the mark too; ``dependencies_of`` decides)."""
    return _MARK in message


def dependencies_of(codec, message: bytes) -> tuple[str | None, list]:
    """The task id of ``message`` and the ids it waits for."""
    if not waits(message):
        return None, []
    with contextlib.suppress(DecodeError):
        task = codec.decode_unverified(message)
        return task.id, list(task.options.after or ())
    return None, []


def check_known(queue, messages, known) -> None:
    """UnknownDependency unless every task ``messages`` wait for is added
    before them in the same batch or known to ``queue``: ``known(ids)``
    returns those of ``ids`` whose status record it keeps."""
    if not any(waits(message) for message in messages):
        return  # the common case: one scan of the bytes
    earlier: set = set()
    wanted: dict = {}
    for message in messages:
        task_id, after = dependencies_of(queue.codec, message)
        for dependency in after:
            if dependency not in earlier:
                wanted.setdefault(dependency, task_id)
        earlier.add(identity_of(message)[0])
    if not wanted:
        return
    if not queue.status_ttl:
        raise UnknownDependency(
            f'queue {queue.name!r} keeps no status log (status_ttl = 0), '
            f'so tasks cannot wait for others (after=)')
    missing = [task_id for task_id in wanted
               if task_id not in known(list(wanted))]
    if missing:
        raise UnknownDependency(
            f'task {wanted[missing[0]]} of queue {queue.name!r} is to run '
            f'after task(s) {", ".join(missing)}, unknown to the queue '
            f'(never queued there, or its status record expired)')


def doomed_reason(dependency: str, state: str) -> str:
    """Why a task waiting for ``dependency`` (now in ``state``) is dead."""
    return f'not run: the task it waited for, {dependency}, is {state}'
