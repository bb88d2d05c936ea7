"""Operations on dead letters, for operators: list, find, requeue and
purge them (``admin`` holds those on queues and tasks).

Like ``admin``'s, plain functions over registered queues that return
JSON-able dicts (or ``DeadLetter`` objects) for the command and the
management app to present.
"""
from __future__ import annotations

import hashlib
import itertools

from . import deadletter
from .deadletter import DeadLetter
from .errors import DecodeError
from .registry import get_queue, queues_or_all

__all__ = ['read_dead_letters', 'dead_letters', 'letter_info', 'letter_id',
           'find_letter', 'requeue_letter', 'requeue_dead',
           'requeue_all_dead', 'purge_dead']

#: How many dead-letter records one round trip reads.
CHUNK = 500


def read_dead_letters(queues: list[str] | None = None, offset: int = 0,
                      limit: int = 50) -> list[DeadLetter]:
    """The dead letters of ``queues`` (every queue if None), newest first:
    ``DeadLetter`` objects, for callers that show them their own way."""
    letters = []
    for name in queues_or_all(queues):
        records = get_queue(name).dead_letters(0, offset + limit - 1)
        letters += [DeadLetter.decode(record) for record in records]
    # Sorted, not merged: two consumers may push their letters in another
    # order than the one their dead_at says.
    letters.sort(key=lambda letter: letter.dead_at or 0, reverse=True)
    return letters[offset:offset + limit]
def dead_letters(queues: list[str] | None = None, offset: int = 0,
                 limit: int = 50) -> list[dict]:
    """The dead letters of ``queues`` (every queue if None), newest first,
    as ``letter_info`` dicts."""
    return [letter_info(letter)
            for letter in read_dead_letters(queues, offset, limit)]
def letter_info(letter: DeadLetter) -> dict:
    """A dead letter as JSON: who it was, why it died (not its message)."""
    return {'task_id': letter.task_id, 'queue': letter.queue,
            'method': letter.method, 'url': letter.url,
            'status': letter.status, 'error': letter.error,
            'attempt': letter.attempt, 'dead_at': letter.dead_at,
            'size': len(letter.record if letter.message is None
                        else letter.message),
            'problem': letter.problem}
def letter_id(record: bytes) -> str:
    """A dead letter's handle (in the management API's URLs and the
    dashboard's buttons): records carry no id of their own (a message that
    is not a task has none), so a digest of the record."""
    return hashlib.sha256(record).hexdigest()[:32]
def find_letter(name: str, handle: str, chunk: int = CHUNK
                ) -> DeadLetter | None:
    """The dead letter of ``name`` whose ``letter_id`` is ``handle``, read
    ``chunk`` records per round trip; None if there is none (requeued or
    purged meanwhile)."""
    for record in dead_records(name, chunk):
        if letter_id(record) == handle:
            return DeadLetter.decode(record)
    return None
def requeue_letter(name: str, handle: str) -> DeadLetter | None:
    """Make the dead letter ``handle`` (see ``letter_id``) of ``name``
    pending again, from attempt 1, and return it; None if there is no such
    letter (requeued or purged meanwhile).  ValueError if its record holds
    no message to requeue (see ``DeadLetter.problem``)."""
    letter = find_letter(name, handle)
    if letter is not None and letter.message is None:
        raise ValueError(f'this dead letter cannot be requeued: '
                         f'{letter.problem}; purge it')
    if letter is None or not deadletter.requeue_dead(letter, name):
        return None
    return letter
def requeue_dead(task_ids, queues: list[str] | None = None,
                 progress=None) -> dict:
    """Make the dead tasks ``task_ids`` pending again, from attempt 1.
    Return {'requeued': ids, 'missing': ids not among the dead letters}."""
    wanted = set(task_ids)
    letters = []
    for name in queues_or_all(queues):
        letters += [(name, letter) for letter in letters_of(name, wanted)]
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
def dead_records(name: str, chunk: int = CHUNK):
    """Every dead-letter record of ``name``, newest first, ``chunk`` per
    round trip."""
    backend = get_queue(name)
    for start in itertools.count(0, chunk):
        records = backend.dead_letters(start, start + chunk - 1)
        yield from records
        if len(records) < chunk:
            return
def letters_of(name: str, task_ids: set):
    """The dead letters of ``name`` whose task id is in ``task_ids``."""
    for record in dead_records(name):
        letter = DeadLetter.decode(record)
        if letter.task_id in task_ids:
            yield letter
def record_of_letter(letter: DeadLetter, name: str) -> dict:
    """A status record for a dead task whose record expired."""
    try:
        task = get_queue(name).codec.decode_unverified(letter.message or b'')
    except DecodeError:
        task = None
    return {
        'id': letter.task_id, 'queue': name, 'state': 'dead',
        'method': letter.method, 'path': (letter.url or '').partition('?')[0],
        'user': task and task.user_id, 'created': task and task.created_at,
        'updated': letter.dead_at, 'consumer': None,
        'attempt': letter.attempt, 'next_attempt': None,
        'status': letter.status, 'attempts': [],
        'problem': letter.problem, 'dead_letter': letter_info(letter),
    }
