"""Jobs of many tasks (``jobs.py``): the rules every backend follows, the
record they keep, and the in-process queues' book of jobs.

A job's record: its label, state (open, closed, complete), the counts
total, done and failed, the times it was created, closed and completed,
and its on_complete message (the open marker, kept to be made pending at
completion).  Every backend changes it in the steps that already move
tasks, under the same lock, Lua script or SQL transaction:

- promotion of a batch, in order: an *open* marker creates the record; a
  task of the job adds one to total (and is remembered as the job's); a
  *close* marker closes the job, and completes it if nothing is
  unfinished;
- the settling of a task of the job (acknowledged: done; buried, doomed
  by a dependency, cancelled or purged: failed) adds one to done or
  failed, and completes a closed job whose tasks are all finished.

Completing makes the on_complete message pending in that same step, so it
is queued once.  The on_complete task itself is not one of the job's
tasks.  A task promoted into a job that is complete already (its close
committed between this task's stage and its promotion) runs, uncounted.
A record is kept ``JOB_TTL`` seconds after its last change.
"""
from __future__ import annotations

import contextlib
import logging
import time

from ..errors import ClosedJob, DecodeError, UnknownJob
from ..status import _count, _number

__all__ = ['JOB_TTL', 'STATES', 'is_marker', 'job_fields', 'check_jobs',
           'status_of', 'JobBook']

log = logging.getLogger(__name__)

#: A week after its last change, as dead letters are kept.
JOB_TTL = 7 * 86400
STATES = ('open', 'closed', 'complete')
#: How a job's id and a marker begin in a header (``options.py``: key
#: 'jb'; ``task.py``: 'jm').
_JOB_MARK = b',"jb":"'
_MARKER_MARK = b',"jm":{'


def is_marker(message: bytes) -> bool:
    """Whether ``message`` may be a job marker (a cheap test; the payload
    of a marker is empty, so its mark is in the header)."""
    return _MARKER_MARK in message


def job_fields(codec, message: bytes) -> tuple[str | None, str | None,
                                                dict | None]:
    """The task id, job id and marker (or None) of ``message``; (None,
    None, None) for a message of no job."""
    if _JOB_MARK not in message:
        return None, None, None
    with contextlib.suppress(DecodeError):
        task = codec.decode_unverified(message)
        if task.options.job is not None:
            return task.id, task.options.job, task.job_marker
    return None, None, None


def check_jobs(queue, messages, states) -> None:
    """UnknownJob unless every job ``messages`` name is opened before them
    in the batch or known to ``queue``, ClosedJob if a task is added to a
    closed one: ``states(ids)`` returns {id: state} of the jobs of ``ids``
    the queue keeps."""
    if not any(_JOB_MARK in message for message in messages):
        return  # the common case: one scan of the bytes
    found = [job_fields(queue.codec, message) for message in messages]
    named = {job_id for _, job_id, _ in found if job_id is not None}
    known = dict(states(sorted(named)))
    for task_id, job_id, marker in found:
        if job_id is None:
            continue
        op = marker and marker['op']
        if op == 'open':
            known[job_id] = 'open'
        elif job_id not in known:
            raise UnknownJob(
                f'{"a close of" if op else "task " + task_id + " of"} queue '
                f'{queue.name!r} names job {job_id}, unknown to the queue '
                f'(never created there, or its record expired)')
        elif op == 'close':
            known[job_id] = 'closed'
        elif known[job_id] != 'open':
            raise ClosedJob(
                f'task {task_id} of queue {queue.name!r} is added to job '
                f'{job_id}, which is {known[job_id]}: no task may be added '
                f'to it any more')


def status_of(queue: str, job_id: str, fields: dict) -> dict:
    """A job's status as ``job_status`` answers it, from its record's
    fields (strings or numbers as stored).

    Stored fields are data, not trusted (as for a task's status record,
    ``status.record``): a field that does not parse is None (a count: 0)
    and named in ``problem``, None for a sound record, so every reader
    shows a malformed record as such instead of failing on it."""
    problems = []

    def count(name):
        value = fields.get(name)
        found = 0 if value in (None, '') else _count(value)
        if found is None:
            problems.append(f'{name} is not a whole number')
        return found or 0

    def number(name):
        value = fields.get(name)
        found = None if value in (None, '') else _number(value)
        if found is None and value not in (None, ''):
            problems.append(f'{name} is not a number')
        return found

    def text(name):
        value = fields.get(name)
        return value if isinstance(value, str) and value else None

    state = fields.get('state')
    if state not in STATES:
        problems.append('state is none of ' + ', '.join(STATES))
        state = None
    total, done, failed = count('total'), count('done'), count('failed')
    if done + failed > total:
        problems.append('more tasks finished than it has')
    return {
        'id': job_id, 'queue': queue, 'label': text('label'),
        'state': state, 'total': total, 'done': done, 'failed': failed,
        'pending': max(0, total - done - failed),
        'created': number('created'), 'closed': number('closed'),
        'completed': number('completed'),
        'on_complete': text('on_complete'),
        'problem': '; '.join(problems) or None,
    }


class JobBook:
    """The jobs of one in-process queue, changed under its lock."""

    def __init__(self, queue):
        self.queue = queue
        #: job id -> record fields (``on_complete_message`` beside them).
        self._jobs: dict[str, dict] = {}
        #: task id -> the id of its job, for the tasks not settled yet.
        self._members: dict[str, str] = {}

    def check(self, messages) -> None:
        check_jobs(self.queue, messages, lambda ids: [
            (job_id, self._jobs[job_id]['state']) for job_id in ids
            if job_id in self._live()])

    def take(self, messages) -> list:
        """The messages of a batch being promoted, its markers taken in:
        those to queue, the on_complete of a job completed by its close
        among them."""
        if not any(_JOB_MARK in message for message in messages):
            return messages
        kept = []
        now = time.time()
        for message in messages:
            task_id, job_id, marker = job_fields(self.queue.codec, message)
            if job_id is None:
                kept.append(message)
                continue
            job = self._jobs.get(job_id)
            op = marker and marker['op']
            if op == 'open':
                self._jobs.setdefault(job_id, {
                    'label': marker['label'], 'state': 'open', 'total': 0,
                    'done': 0, 'failed': 0, 'created': now,
                    'on_complete': task_id if marker['cb'] else None,
                    'message': message if marker['cb'] else None,
                    'changed': now})
            elif job is None:
                log.warning('job %s of queue %r is unknown at promotion: '
                            '%s', job_id, self.queue.name,
                            'its close is ignored' if op else
                            f'task {task_id} runs outside it')
                if not op:
                    kept.append(message)
            elif op == 'close':
                if job['state'] == 'open':
                    job.update(state='closed', closed=now, changed=now)
                    kept.extend(self._complete(job_id, job))
            else:
                kept.append(message)
                if job['state'] == 'complete':
                    log.warning('task %s of queue %r runs outside job %s, '
                                'complete before it was queued', task_id,
                                self.queue.name, job_id)
                elif task_id not in self._members:
                    self._members[task_id] = job_id
                    job.update(total=job['total'] + 1, changed=now)
        return kept

    def settled(self, task_id: str, state: str) -> list:
        """``task_id`` is done, dead, cancelled or purged: count it in its
        job; the on_complete message to queue if that completed it."""
        job_id = self._members.pop(task_id, None)
        job = self._jobs.get(job_id) if job_id is not None else None
        if job is None:
            return []
        counted = 'done' if state == 'done' else 'failed'
        job[counted] += 1
        job['changed'] = time.time()
        return self._complete(job_id, job)

    def status(self, job_id: str) -> dict | None:
        job = self._live().get(job_id)
        return None if job is None else status_of(self.queue.name, job_id,
                                                  job)

    def list(self, start: int = 0, count: int = 50) -> list:
        """Newest first."""
        jobs = sorted(self._live().items(), key=lambda item: (
            -item[1]['created'], item[0]))
        return [status_of(self.queue.name, job_id, job)
                for job_id, job in jobs[start:start + count]]

    def clear(self) -> None:
        self._jobs.clear()
        self._members.clear()

    def _complete(self, job_id: str, job: dict) -> list:
        if job['state'] != 'closed' or job['done'] + job['failed'] < job[
                'total']:
            return []
        job.update(state='complete', completed=job['changed'])
        message = job.pop('message', None)
        return [message] if message is not None else []

    def _live(self) -> dict:
        """The jobs, those unchanged for JOB_TTL forgotten."""
        oldest = time.time() - JOB_TTL
        for job_id in [job_id for job_id, job in self._jobs.items()
                       if job['changed'] < oldest]:
            del self._jobs[job_id]
        return self._jobs
