"""What a finished task leaves behind beside its outcome: its result and
its completion callbacks.

The consumer builds both before it settles the task and hands them to the
backend with the acknowledgement (``done``) or the burial (``dead``), in
the Report: the backend keeps the result and makes the callbacks pending
in the same step (Lua script, SQL transaction, lock) that removes the task
from its processing list, and only if it was still there.  So a consumer
killed before that step leaves the task to be run again, callbacks and
all, and one that settles twice (a lost reply) queues them once.

A callback is a task of its own, signed here like a retry: a GET of the
path given to ``on_success`` or ``on_failure``, as the finished task's
user, with its headers (credentials as the queue lets them travel) and no
body.  What it reports on travels in its signed header and reaches the app
as ``X-Task-Parent-Id``, ``X-Task-Parent-Outcome`` and
``X-Task-Parent-Status`` (``dispatch.py``).
"""
from __future__ import annotations

import dataclasses
import re
import time

from . import results
from .status import Report
from .task import Task, new_id

__all__ = ['callbacks', 'finished', 'kept_result']

#: What a status line may not carry into a header.
_UNSAFE = re.compile(r'[\r\n\x00]')


def kept_result(backend, task: Task) -> int | None:
    """How many bytes of the answer's body to keep for ``task``: None
    when it keeps no result."""
    if task.options.keep_result or backend.keep_result:
        return backend.result_max_size
    return None


def finished(backend, task: Task, report: Report, answer,
             outcome: str) -> Report:
    """``report`` on ``task``, which ended ``outcome`` ('done' or 'dead')
    with ``answer`` (a dispatch Result, or None when it did not run),
    with its result (if it keeps one) and callbacks."""
    kept = None
    if answer is not None and kept_result(backend, task) is not None:
        kept = results.encode(outcome, answer.status, answer.headers,
                              answer.body, answer.size)
    then = callbacks(backend.codec, task, outcome, report.status)
    if kept is None and not then:
        return report
    return dataclasses.replace(report, result=kept, then=then)


def callbacks(codec, task: Task, outcome: str, status: str) -> tuple:
    """The signed messages of ``task``'s callback for ``outcome`` ('done'
    or 'dead'): none, or one."""
    url = (task.options.on_success if outcome == 'done'
           else task.options.on_failure)
    if url is None:
        return ()
    environ = {key: value for key, value in task.environ.items()
               if key != 'CONTENT_TYPE'}
    callback = Task(
        id=new_id(), queue=task.queue, url=url, method='GET',
        environ=environ, payload=b'', user_id=task.user_id,
        created_at=time.time(), script_name=task.script_name,
        url_scheme=task.url_scheme,
        parent={'id': task.id, 'outcome': outcome,
                'status': _UNSAFE.sub(' ', status)[:200]})
    return (codec.encode(callback),)
