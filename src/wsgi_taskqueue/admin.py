"""Operations on queues, for operators: what the ``wsgi-taskqueue`` command
and the management app share.

Plain functions over registered queues (by name).  They return JSON-able
dicts and lists and never print; the caller presents them.  Long ones take
a ``progress(done, total)`` callback.
"""
from __future__ import annotations

import heapq
import itertools

import transaction

from . import context, deadletter, taskqueue
from .backends import BACKEND_TYPES
from .deadletter import DeadLetter
from .errors import DecodeError
from .registry import get_queue, queue_names
from .validation import check_header_value

__all__ = ['queue_status', 'find_task', 'tasks', 'dead_letters',
           'requeue_dead', 'requeue_all_dead', 'purge_dead', 'requeue',
           'purge', 'reset', 'add_task', 'letter_info']

#: Minutes of outcomes ``queue_status`` sums up.
THROUGHPUT_MINUTES = 15

#: Dead letters read per round trip when scanning or requeueing them all.
CHUNK = 500


def queue_status(name: str) -> dict:
    """Counts of ``name`` by state, its consumers (live ones, and gone ones
    that still have tasks in flight) and its outcomes of the last
    ``THROUGHPUT_MINUTES`` minutes."""
    backend = get_queue(name)
    counts = backend.counts()
    processing = counts['processing']
    consumers = []
    for info in backend.consumers():
        consumers.append(_consumer(info, processing.get(info['name'], 0)))
    known = {consumer['name'] for consumer in consumers}
    for consumer_name, in_flight in sorted(processing.items()):
        if consumer_name not in known:
            consumers.append(_consumer({'name': consumer_name,
                                        'alive': False}, in_flight))
    minutes = backend.throughput(THROUGHPUT_MINUTES)
    return {
        'queue': name, 'type': _type_name(backend),
        'where': getattr(backend, 'where', 'in-process'),
        'pending': counts['pending'], 'delayed': counts['delayed'],
        'dead': counts['dead'], 'staged': counts['staged'],
        'in_flight': sum(processing.values()),
        'live_consumers': sum(1 for c in consumers if c['alive']),
        'consumers': consumers,
        'outcomes': {'minutes': THROUGHPUT_MINUTES, **{
            outcome: sum(minute.get(outcome, 0) for minute in minutes)
            for outcome in ('done', 'retried', 'dead')}},
    }


def find_task(task_id: str, queues: list[str] | None = None) -> dict | None:
    """The status record of a task (``taskqueue.status``), with its dead
    letter (``letter_info``) when it is dead; a dead task whose status
    record expired is found among the dead letters.  None if unknown."""
    names = _names(queues)
    for name in names:
        found = taskqueue.status(task_id, name)
        if found is not None:
            if found['state'] == 'dead':
                letter = next(_letters_of(name, {task_id}), None)
                found['dead_letter'] = letter and letter_info(letter)
            return found
    for name in names:
        letter = next(_letters_of(name, {task_id}), None)
        if letter is not None:
            return _record_of_letter(letter, name)
    return None


def tasks(queues: list[str] | None = None, state: str | None = None,
          offset: int = 0, limit: int = 50) -> list[dict]:
    """Status records, newest first, of the tasks of ``queues`` (every
    queue if None) in ``state`` (any if None)."""
    names = _names(queues)
    if len(names) == 1:
        return get_queue(names[0]).tasks(state, offset, limit)
    lists = [get_queue(name).tasks(state, 0, offset + limit)
             for name in names]
    merged = heapq.merge(*lists, key=lambda r: -(r['created'] or 0))
    return list(itertools.islice(merged, offset, offset + limit))


def dead_letters(queues: list[str] | None = None, offset: int = 0,
                 limit: int = 50) -> list[dict]:
    """The dead letters of ``queues`` (every queue if None), newest first,
    as ``letter_info`` dicts."""
    lists = []
    for name in _names(queues):
        records = get_queue(name).dead_letters(0, offset + limit - 1)
        lists.append([DeadLetter.decode(record) for record in records])
    merged = heapq.merge(*lists, key=lambda letter: -letter.dead_at)
    return [letter_info(letter)
            for letter in itertools.islice(merged, offset, offset + limit)]


def letter_info(letter: DeadLetter) -> dict:
    """A dead letter as JSON: who it was, why it died (not its message)."""
    return {'task_id': letter.task_id, 'queue': letter.queue,
            'method': letter.method, 'url': letter.url,
            'status': letter.status, 'error': letter.error,
            'attempt': letter.attempt, 'dead_at': letter.dead_at,
            'size': len(letter.message)}


def requeue_dead(task_ids, queues: list[str] | None = None,
                 progress=None) -> dict:
    """Make the dead tasks ``task_ids`` pending again, from attempt 1.
    Return {'requeued': ids, 'missing': ids not among the dead letters}."""
    wanted = set(task_ids)
    letters = []
    for name in _names(queues):
        letters += [(name, letter) for letter in _letters_of(name, wanted)]
    requeued = []
    for done, (name, letter) in enumerate(letters, 1):
        if deadletter.requeue_dead(letter, name):
            requeued.append(letter.task_id)
        if progress:
            progress(done, len(letters))
    found = set(requeued)
    return {'requeued': requeued,
            'missing': [i for i in task_ids if i not in found]}


def requeue_all_dead(name: str, progress=None) -> int:
    """Make every dead letter of ``name`` pending again, oldest first,
    from attempt 1; return how many.  Letters that die while this runs
    (at the head of the list) wait for the next call."""
    backend = get_queue(name)
    total = backend.counts()['dead']
    done = requeued = 0
    while done < total:
        # The oldest letters are at the end of the list; each requeue
        # removes one, so the end holds the next ones.
        records = backend.dead_letters(-min(CHUNK, total - done), -1)
        if not records:
            break
        for record in reversed(records):
            if deadletter.requeue_dead(DeadLetter.decode(record), name):
                requeued += 1
            done += 1
            if progress:
                progress(done, total)
    return requeued


def purge_dead(name: str) -> int:
    """Delete the dead letters of ``name``; return how many."""
    return get_queue(name).purge_dead()


def requeue(name: str, progress=None) -> dict:
    """Everything of ``name`` that waits — tasks waiting for a retry and
    dead letters — pending now, dead ones from attempt 1.  Return the
    counts {'delayed': n, 'dead': n}."""
    delayed = get_queue(name).requeue_delayed()
    return {'delayed': delayed, 'dead': requeue_all_dead(name, progress)}


def purge(name: str) -> int:
    """Delete the pending and delayed tasks of ``name`` (not those in
    flight, not the dead letters); return how many."""
    return get_queue(name).purge()


def reset(name: str) -> None:
    """Delete everything of ``name``: tasks in every state, dead letters,
    staged batches, consumer leases, the status log."""
    get_queue(name).reset()


def add_task(url: str, *, method: str = 'GET', params: dict | None = None,
             headers: dict | None = None, payload: bytes | str | None = None,
             queue: str | None = None, user: str | None = None) -> str:
    """``taskqueue.add`` in a transaction of its own, committed before
    this returns, outside whatever request or transaction is current: only
    what is given travels (``user`` becomes the task's ``REMOTE_USER``).
    Return the task id."""
    manager = transaction.TransactionManager()
    # A request of our own, without headers, whose transaction manager is
    # ``manager`` (``add`` takes the one in ``tm.manager``).
    environ = {'tm.manager': manager}
    if user is not None:
        environ['REMOTE_USER'] = check_header_value('REMOTE_USER', user)
    _, token = context.bind(environ)
    try:
        with manager:
            return taskqueue.add(url, method=method, params=params,
                                 headers=headers, payload=payload,
                                 queue=queue)
    finally:
        context.unbind(token)


def _names(queues) -> list[str]:
    return list(queues) if queues is not None else queue_names()


def _letters_of(name: str, task_ids: set):
    """The dead letters of ``name`` whose task id is in ``task_ids``."""
    backend = get_queue(name)
    for start in itertools.count(0, CHUNK):
        records = backend.dead_letters(start, start + CHUNK - 1)
        for record in records:
            letter = DeadLetter.decode(record)
            if letter.task_id in task_ids:
                yield letter
        if len(records) < CHUNK:
            return


def _record_of_letter(letter: DeadLetter, name: str) -> dict:
    """A status record for a dead task whose record expired."""
    try:
        task = get_queue(name).codec.decode_unverified(letter.message)
    except DecodeError:
        task = None
    return {
        'id': letter.task_id, 'queue': name, 'state': 'dead',
        'method': letter.method, 'path': (letter.url or '').partition('?')[0],
        'user': task and task.user_id, 'created': task and task.created_at,
        'updated': letter.dead_at, 'consumer': None,
        'attempt': letter.attempt, 'next_attempt': None,
        'status': letter.status, 'attempts': [],
        'dead_letter': letter_info(letter),
    }


def _consumer(info: dict, in_flight: int) -> dict:
    return {'name': info['name'], 'alive': info['alive'],
            'heartbeat_age': info.get('heartbeat_age'),
            'in_flight': in_flight,
            'concurrency': info.get('concurrency'),
            'host': info.get('host'), 'pid': info.get('pid'),
            'paused': info.get('paused', False),
            'processed': info.get('processed')}


def _type_name(backend) -> str:
    for name, kind in BACKEND_TYPES.items():
        if type(backend) is kind:
            return name
    return f'{type(backend).__module__}.{type(backend).__qualname__}'
