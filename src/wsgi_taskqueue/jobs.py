"""Jobs of many tasks: ``taskqueue.job``, ``close_job`` and ``job_status``.

A job groups tasks of one queue added from any number of transactions
(the job's own tasks included: a task that plans the next chunk adds it
to the same job, and sees the job's id as ``X-Task-Job-Id``).  The queue
counts them: *total* (tasks queued in the job), *done*, *failed* (dead,
cancelled or purged) and *pending* (the others).  Once the job is closed
(``job.close()``, or ``close_job(id)`` from anywhere, a task of the job
included) and none of its tasks is unfinished, it is *complete*: its
``on_complete`` task is queued in the step that settles the last task
(or in the close, when every task had finished already), so it is queued
exactly once.

Like ``add``, ``job()`` and ``close()`` do no I/O: each adds a *marker*
to the current transaction, a message that travels the tasks' staging
path (``datamanager.py``) and that the backend takes in when it promotes
the batch, in order with the tasks around it.  So a job exists only if
the transaction that created it commits, a close happens when its
transaction commits, and neither is ever half done (G1-G6 hold for them as
for tasks).  The *open* marker is the on_complete task itself, signed
when ``job()`` is called, as the current user with the current request's
headers, as a completion callback is (``completion.py``); the backend
keeps it with the job and makes it pending at completion.  What it sees
of the counts, ``X-Task-Job-Total``, ``-Done`` and ``-Failed``, is read
from the job's record when it is dispatched: once complete, they no
longer change.

When the transaction stages its tasks, a task added to a job its queue
does not know (never created, or its record expired: ``job_ttl``) raises
``UnknownJob``, one added to a closed job ``ClosedJob``; both abort the
transaction.  Closing a closed job is allowed (a task that closes its job
may run twice): the close is named after its job, so the first one counts
and the others are dropped (``close_job``).
"""
from __future__ import annotations

from . import context
from .guard import current_task
from .options import TaskOptions
from .registry import first_answer, get_queue
from .task import new_id
from .validation import check_callback, check_job, check_label

__all__ = ['Job', 'job', 'close_job', 'job_status']


class Job:
    """A job created in the current transaction (or named by its id):
    pass it as ``add(..., job=job)``; ``str(job)`` is its id."""

    def __init__(self, job_id: str, queue: str):
        self.job_id = job_id
        self.queue = queue

    def close(self) -> None:
        """No task will be added to the job after this transaction's."""
        close_job(self.job_id, queue=self.queue)

    def status(self) -> dict | None:
        """``job_status`` of this job."""
        return job_status(self.job_id, queue=self.queue)

    def __str__(self) -> str:
        return self.job_id

    def __eq__(self, other) -> bool:
        return isinstance(other, Job) and (other.job_id, other.queue) == (
            self.job_id, self.queue)

    def __hash__(self) -> int:
        return hash(self.job_id)

    def __repr__(self) -> str:
        return f'<Job {self.job_id} of queue {self.queue!r}>'


def job(on_complete: str | None = None, label: str | None = None,
        queue: str | None = None) -> Job:
    """A new job of ``queue`` (the default queue if None), created when
    the current transaction commits; ``on_complete``: a path of the app
    queued (a GET, as the current user) when the closed job has no
    unfinished task; ``label``: what the job is about."""
    if on_complete is not None:
        on_complete = check_callback('on_complete', on_complete)
    if label is not None:
        label = check_label(label)
    backend = get_queue(queue)
    job_id = new_id()
    _marker(backend.name, job_id, on_complete or '/', {
        'op': 'open', 'label': label, 'cb': on_complete is not None})
    return Job(job_id, backend.name)


def close_job(job_id, queue: str | None = None) -> None:
    """Close the job ``job_id`` (a Job or its id) of ``queue`` when the
    current transaction commits: no task may be added to it after that.
    Inside a task the queue defaults to the task's own.

    The close is named (``job:<id>:close``, see task names), so a job is
    closed by the first transaction that closes it, and later closes are
    dropped.  It matters when a task that adds a job's last tasks and
    closes it runs again after its process died between its vote and its
    promotion: its second run's tasks are dropped, their names being held
    by the first run's, and so is its close, which would otherwise close
    the job before the sweep promoted the first run's tasks, and complete
    it without them."""
    queue_name = _queue_of(job_id, queue)
    job_id = check_job(job_id)
    _marker(queue_name, job_id, '/', {'op': 'close'}, name=f'job:{job_id}:close')


def job_status(job_id, queue: str | None = None) -> dict | None:
    """What the queue knows of a job: a dict with id, queue, label, state
    ('open', 'closed' or 'complete'), total, done, failed, pending,
    created (epoch seconds), closed and completed (epoch seconds or None),
    on_complete (the id of its on_complete task, or None) and problem
    (None, or what is wrong with a record that does not parse); None when
    the job is unknown or its record expired.  Searches ``queue``, or
    every queue."""
    if queue is None and isinstance(job_id, Job):
        queue = job_id.queue
    job_id = check_job(job_id)
    return first_answer(queue, lambda backend: backend.job_status(job_id))


def _queue_of(job_id, queue):
    """The queue a close goes to: the one given, the Job's own, or the
    queue of the task being run (a task closing its own job)."""
    if queue is not None:
        return get_queue(queue).name
    if isinstance(job_id, Job):
        return job_id.queue
    request = context.current()
    task = current_task(request.environ) if request is not None else None
    return task.queue if task is not None else get_queue(None).name


def _marker(queue: str, job_id: str, url: str, marker: dict,
            name: str | None = None) -> None:
    """Add a job marker to the current transaction (module docstring)."""
    from .taskqueue import queue_task  # taskqueue imports this module
    queue_task(url, 'GET', None, None, None, queue,
               TaskOptions(job=job_id, name=name), job_marker=marker)
