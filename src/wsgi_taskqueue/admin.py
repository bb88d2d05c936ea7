"""Operations on queues, for operators: what the ``wsgi-taskqueue`` command
and the management app share.

Plain functions over registered queues (by name); those on dead letters
are ``admin_dead``'s, those on jobs ``admin_jobs``'s.  They return
JSON-able dicts and lists and never print nor speak HTTP;
the caller presents them: ``commands`` on a terminal, ``management.api`` as
the JSON its OpenAPI document describes.  Long ones take a
``progress(done, total)`` callback.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools

import transaction

from . import admin_dead, context, registry, results, taskqueue
from .backends import BACKEND_TYPES
from .registry import get_queue
from .validation import check_header_value

__all__ = ['queue_snapshot', 'queue_status', 'status_record', 'find_task',
           'tasks', 'requeue', 'purge', 'reset', 'add_task',
           'own_transaction']

#: Minutes of outcomes ``queue_status`` sums up.
THROUGHPUT_MINUTES = 15

#: What a task's attempt can come to, as ``throughput`` counts them.
OUTCOMES = ('done', 'retried', 'dead')

#: How ``tasks`` may order what it lists, newest first.
TASK_ORDERS = ('created', 'updated')


def queue_snapshot(name: str, minutes: int = THROUGHPUT_MINUTES) -> dict:
    """What the backend of ``name`` says of it, as it says it: ``counts``
    by state (``processing``: tasks in flight by consumer name), its
    ``consumers`` (those holding or lately holding a lease, with their
    info) and its outcomes of the last ``minutes``, oldest minute first
    (``throughput``: dicts of minute, done, retried and dead).

    ``queue_status`` shapes it for the command, ``management.api`` for
    ``GET /status`` and the dashboard."""
    backend = get_queue(name)
    return {
        'counts': backend.counts(),
        'consumers': backend.consumers(),
        'throughput': [
            {'minute': entry['minute'],
             **{outcome: entry.get(outcome, 0) for outcome in OUTCOMES}}
            for entry in backend.throughput(minutes)],
    }


def queue_status(name: str) -> dict:
    """Counts of ``name`` by state, its consumers (live ones, and gone ones
    that still have tasks in flight) and its outcomes of the last
    ``THROUGHPUT_MINUTES`` minutes."""
    backend = get_queue(name)
    snapshot = queue_snapshot(name)
    counts = snapshot['counts']
    processing = counts['processing']
    consumers = []
    for info in snapshot['consumers']:
        consumers.append(_consumer(info, processing.get(info['name'], 0)))
    known = {consumer['name'] for consumer in consumers}
    for consumer_name, in_flight in sorted(processing.items()):
        if consumer_name not in known:
            consumers.append(_consumer({'name': consumer_name,
                                        'alive': False}, in_flight))
    return {
        'queue': name, 'type': _type_name(backend),
        'where': getattr(backend, 'where', 'in-process'),
        'pending': counts['pending'], 'delayed': counts['delayed'],
        'dead': counts['dead'], 'staged': counts['staged'],
        'dead_ttl': backend.dead_ttl, 'dead_max': backend.dead_max,
        'in_flight': sum(processing.values()),
        'live_consumers': sum(1 for c in consumers if c['alive']),
        'consumers': consumers,
        'outcomes': {'minutes': THROUGHPUT_MINUTES, **{
            outcome: sum(minute[outcome] for minute in snapshot['throughput'])
            for outcome in OUTCOMES}},
        # The connections of every process to the queue's server, by use.
        'connections': (backend.clients() if hasattr(backend, 'clients')
                        else {}),
        # What one process may open to it, for each of the pool and the
        # threads' script connections (None: no bound applies).
        'max_connections': getattr(backend, 'max_connections', None),
    }


def status_record(task_id: str, queues: list[str] | None = None) -> dict | None:
    """The status record of a task (``taskqueue.status``) in the first of
    ``queues`` (every queue if None) that has one, with its ``result``
    (``results.as_json``, or None); None when it is unknown or its record
    expired."""
    for name in registry.queues_or_all(queues):
        found = taskqueue.status(task_id, name)
        if found is not None:
            stored = get_queue(name).task_result(task_id)
            found['result'] = None if stored is None else results.as_json(
                stored)
            return found
    return None


def find_task(task_id: str, queues: list[str] | None = None) -> dict | None:
    """The status record of a task (``taskqueue.status``), with its dead
    letter (``letter_info``) when it is dead; a dead task whose status
    record expired is found among the dead letters.  None if unknown."""
    names = registry.queues_or_all(queues)
    found = status_record(task_id, names)
    if found is not None:
        if found['state'] == 'dead':
            letter = next(admin_dead.letters_of(found['queue'], {task_id}),
                          None)
            found['dead_letter'] = letter and admin_dead.letter_info(letter)
        return found
    for name in names:
        letter = next(admin_dead.letters_of(name, {task_id}), None)
        if letter is not None:
            return admin_dead.record_of_letter(letter, name)
    return None


#: How many status records one look for labelled ones reads at a time.
LABEL_SCAN = 500


def _labelled(backend, state, label: str, wanted: int) -> list[dict]:
    """The ``wanted`` newest records of ``backend`` in ``state`` with
    ``label``: the status log is read newest first until they are found
    (no backend indexes labels; the log holds at most ``status_max``)."""
    found, start = [], 0
    while len(found) < wanted:
        records = backend.tasks(state, start, LABEL_SCAN)
        found += [r for r in records if r.get('label') == label]
        if len(records) < LABEL_SCAN:
            break
        start += len(records)
    return found[:wanted]


def tasks(queues: list[str] | None = None, state: str | None = None,
          offset: int = 0, limit: int = 50, *, order: str = 'created',
          label: str | None = None) -> list[dict]:
    """Status records, newest first, of the tasks of ``queues`` (every
    queue if None) in ``state`` (any if None) with ``label`` (any if
    None): most recently created first, or with ``order='updated'`` most
    recently updated first (among the ``offset + limit`` most recently
    created of each queue)."""
    if order not in TASK_ORDERS:
        raise ValueError(f'order must be one of {", ".join(TASK_ORDERS)}, '
                         f'not {order!r}')
    names = registry.queues_or_all(queues)
    if label is not None:
        lists = [_labelled(get_queue(name), state, label, offset + limit)
                 for name in names]
    elif order == 'created' and len(names) == 1:
        return get_queue(names[0]).tasks(state, offset, limit)
    else:
        lists = [get_queue(name).tasks(state, 0, offset + limit)
                 for name in names]
    if order == 'created':
        # Each list is newest first already.
        ordered = heapq.merge(*lists, key=lambda r: -(r['created'] or 0))
    else:
        ordered = sorted(itertools.chain(*lists), reverse=True,
                         key=lambda r: r.get('updated') or 0)
    return list(itertools.islice(ordered, offset, offset + limit))


def requeue(name: str, progress=None) -> dict:
    """Everything of ``name`` that waits — tasks waiting for a retry and
    dead letters — pending now, dead ones from attempt 1.  Return the
    counts {'delayed': n, 'dead': n}."""
    delayed = get_queue(name).requeue_delayed()
    dead = admin_dead.requeue_all_dead(name, progress)
    return {'delayed': delayed, 'dead': dead}


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
             queue: str | None = None, user: str | None = None,
             **options) -> str:
    """``taskqueue.add`` in a transaction of its own (``own_transaction``):
    only what is given travels (``user`` becomes the task's
    ``REMOTE_USER``; ``options`` are add's).  Return the task id."""
    with own_transaction(user):
        return taskqueue.add(url, method=method, params=params,
                             headers=headers, payload=payload, queue=queue,
                             **options)


@contextlib.contextmanager
def own_transaction(user: str | None = None):
    """A transaction of its own for what the block adds (tasks, job
    markers), committed when the block ends, outside whatever request or
    transaction is current.

    The one place that binds a request context of its own, on purpose:
    ``add`` copies the headers and body of the request the filter bound
    (``context.current()``) and joins the current transaction (that
    request's ``tm.manager``, else the thread's).  The management app may
    be served behind the filter, so that request can be the API call
    itself, whose X-API-Key, cookies and JSON body must not become the
    task's; and neither its transaction nor one the caller left open may
    decide when (or whether) the task commits.  So for the time of the
    block we bind an environ without headers or body whose ``tm.manager``
    is a manager of our own; ``explicit``: nothing joins it outside the
    ``with`` block.
    """
    manager = transaction.TransactionManager(explicit=True)
    environ = {'tm.manager': manager}
    if user is not None:
        environ['REMOTE_USER'] = check_header_value('REMOTE_USER', user)
    _, token = context.bind(environ)
    try:
        with manager:
            yield
    finally:
        context.unbind(token)


def _consumer(info: dict, in_flight: int) -> dict:
    return {'name': info['name'], 'alive': info['alive'],
            'heartbeat_age': info.get('heartbeat_age'),
            'in_flight': in_flight,
            'concurrency': info.get('concurrency'),
            'host': info.get('host'), 'pid': info.get('pid'),
            'paused': info.get('paused', False),
            'processed': info.get('processed')}


def _type_name(backend) -> str:
    if getattr(backend, 'kind', None):
        return backend.kind
    for name, kind in BACKEND_TYPES.items():
        if type(backend) is kind:
            return name
    return f'{type(backend).__module__}.{type(backend).__qualname__}'
