"""What operators see of a Redis queue and do to it: counts, consumers,
status records and task listings, results, jobs, throughput, dead letters,
purge, cancel, reset and the server's connections (the read side and the
bulk writes of IQueueBackend).  None of it is on a task's ordinary way
through the queue, so it is kept apart from the consumer's side
(``consuming.py``) and the transaction's (the package).  The scripts it
runs are ``operations_scripts.py``'s.
"""
from __future__ import annotations

import collections
import contextlib
import json

from ...errors import DecodeError
from ...status import MemoryStatusLog, record
from ..base import owner_of
from . import operations_scripts as scripts
from . import staging
from .connection import CLIENT_NAMES
from .dependencies import bury_doomed
from .jobs import job_list, job_status
from .priority import PENDING_COUNT
from .queued import PendingMessages, queued_records, waits_unrecorded

__all__ = ['Operations']


class Operations:
    """Mixed into RedisQueue; see IQueueBackend."""

    def _init_operations(self, register) -> None:
        """Register the operator's scripts (``register`` is RedisQueue's,
        which adds the Cluster's migration guard)."""
        self._requeue_dead = register(scripts.REQUEUE_DEAD)
        self._requeue_delayed = register(scripts.REQUEUE_DELAYED)
        self._purge = register(scripts.PURGE)
        self._purge_dead = register(scripts.PURGE_DEAD)
        self._cancel = register(scripts.CANCEL)
        self._pending_count = register(PENDING_COUNT)

    def counts(self):
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.zcard(self.delayed_key)
            pipe.llen(self.dead_key)
            pipe.hlen(self.staged_key)
            pipe.smembers(self.consumers_key)
            delayed, dead, staged, slots = pipe.execute()
            pending = self._pending_count(keys=[self.pending_key])
            processing = self._in_flight(sorted(map(_text, slots)))
        return {'pending': pending, 'delayed': delayed, 'dead': dead,
                'staged': staged,
                'processing': {name: count for name, count
                               in processing.items() if count}}

    def consumers(self):
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrange(self.leases_key, 0, -1, withscores=True)
            pipe.hgetall(self.info_key)
            pipe.smembers(self.consumers_key)
            pipe.time()
            leases, infos, slots, (seconds, micros) = pipe.execute()
            now = seconds + micros / 1e6
            in_flight = self._in_flight(map(_text, slots))
        result = []
        for name, expiry in leases:
            info = _consumer_info(infos.get(name))
            lease = info.pop('lease', 0)
            name = _text(name)
            result.append(dict(
                info, name=name, in_flight=in_flight.get(name, 0),
                alive=expiry > now,
                heartbeat_age=max(0.0, now - (expiry - lease))))
        return result

    def task_status(self, task_id):
        """See IQueueBackend.  A task waiting without a record of its own
        (``queued.py``) is shown from its index entry and its pending
        message; when that message is not among the first
        ``queued.SCAN_BOUND`` of a pending list, the record lacks the
        header's fields (path, method, user, options)."""
        with self._talking:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.task_key(task_id))
            pipe.zscore(self.tasks_key, task_id)
            pipe.time()
            fields, queued_at, (seconds, micros) = pipe.execute()
            if not fields and waits_unrecorded(self, queued_at,
                                               seconds + micros / 1e6):
                shown = queued_records(self, {task_id: queued_at},
                                       PendingMessages(self)).get(task_id)
                if shown is not None and shown['path']:
                    return shown
                # Not found pending: it may have started running since.
                fields = self.client.hgetall(self.task_key(task_id))
                if not fields and shown is not None:
                    return shown
            if fields:
                return record(_texts(fields), self.name)
        for status in self._staged_records():
            if status['id'] == task_id:
                return status
        return None

    def task_result(self, task_id):
        with self._talking:
            return self._settlements.result(task_id)

    def job_status(self, job_id):
        with self._talking:
            return job_status(self, job_id)

    def job_list(self, start=0, count=50):
        with self._talking:
            return job_list(self, start, count)

    def tasks(self, state=None, start=0, count=50):
        if state == 'staged':
            return self._staged_records()[start:start + count]
        found = []
        position = 0
        chunk = max(count, 100)
        pending = PendingMessages(self)
        with self._talking:
            while len(found) < start + count:
                entries = [(_text(task_id), queued_at) for task_id, queued_at
                           in self.client.zrevrange(
                               self.tasks_key, position,
                               position + chunk - 1, withscores=True)]
                if not entries:
                    break
                position += len(entries)
                found += self._records_of(entries, state, pending)
        return found[start:start + count]

    def _records_of(self, entries, state, pending) -> list:
        """The records in ``state`` (any if None) of the index's
        ``entries`` (id, time queued), in their order: those stored, and
        those of tasks that wait without one (``queued.py``), their
        messages looked for in ``pending`` (PendingMessages)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        for task_id, _ in entries:
            pipe.hgetall(self.task_key(task_id))
        (seconds, micros), *stored = pipe.execute()
        now = seconds + micros / 1e6
        waiting = {task_id: queued_at for (task_id, queued_at), fields
                   in zip(entries, stored, strict=True)
                   if not fields and state in (None, 'queued')
                   and waits_unrecorded(self, queued_at, now)}
        made = queued_records(self, waiting, pending) if waiting else {}
        gone = [task_id for task_id in waiting if task_id not in made]
        if gone:
            # Taken since the records were read: read them again.
            pipe = self.client.pipeline(transaction=False)
            for task_id in gone:
                pipe.hgetall(self.task_key(task_id))
            again = dict(zip(gone, pipe.execute(), strict=True))
            stored = [again.get(task_id, fields) for (task_id, _), fields
                      in zip(entries, stored, strict=True)]
        found = []
        for (task_id, _), fields in zip(entries, stored, strict=True):
            fields = _texts(fields)
            if task_id in made:
                found.append(made[task_id])
            elif fields and state in (None, fields.get('state')):
                found.append(record(fields, self.name))
        return found

    def throughput(self, minutes=15):
        with self._talking:
            seconds, _ = self.client.time()
            current = seconds // 60
            pipe = self.client.pipeline(transaction=False)
            for minute in range(current - minutes + 1, current + 1):
                pipe.hgetall(f'{self.base}minute:{minute}')
            counts = pipe.execute()
        return [{'minute': (current - minutes + 1 + i) * 60,
                 **{_text(k): int(v)
                    for k, v in fields.items() if v.isdigit()}}
                for i, fields in enumerate(counts)]

    def dead_letters(self, start=0, stop=-1):
        with self._talking:
            return self.client.lrange(self.dead_key, start, stop)

    def requeue_dead(self, record, message):
        with self._talking:
            return bool(self._requeue_dead(
                keys=[self.dead_key, self.pending_key],
                args=[record, message, self.status_ttl]))

    def purge_dead(self):
        # A script, not a MULTI on the pool: re-sent after a lost reply, it
        # would purge nothing and say so.
        with self._talking:
            return self._purge_dead(keys=[self.dead_key])

    def purge(self):
        with self._talking:
            purged = self._purge(keys=[self.pending_key, self.delayed_key],
                                 args=[self.status_ttl])
            bury_doomed(self)
        return purged

    def cancel(self, task_id):
        with self._talking:
            outcome = self._cancel(
                keys=[self.pending_key, self.delayed_key, self.consumers_key],
                args=[task_id, self.status_ttl])
            bury_doomed(self)
        return _text(outcome) if outcome else None

    def requeue_delayed(self):
        with self._talking:
            return self._requeue_delayed(
                keys=[self.delayed_key, self.pending_key],
                args=[self.status_ttl])

    def reset(self):
        with self._talking:
            keys = list(self.client.scan_iter(
                match=_glob_escape(self.base) + '*', count=1000))
            for start in range(0, len(keys), 1000):
                self.client.delete(*keys[start:start + 1000])

    def clients(self) -> dict:
        """The connections to this queue's Redis server from every process
        (its CLIENT LIST), by what they are for (``CLIENT_NAMES``); the
        Sentinels' as ``sentinel``, those of other programs as ``other``."""
        roles = {name: role for role, name in CLIENT_NAMES.items()}
        with self._talking:
            counts = collections.Counter(
                roles.get(client['name']) or (
                    'sentinel' if client['name'].startswith('sentinel-')
                    else 'other')
                for client in self.client.client_list()
                # not the server's replicas or primary
                if not set(client.get('flags', '')) & {'S', 'M'})
        return dict(counts)

    def _in_flight(self, slots) -> dict:
        """Tasks in flight per consumer, over its slots."""
        slots = list(slots)
        pipe = self.client.pipeline(transaction=False)
        for slot in slots:
            pipe.llen(self.processing_key(slot))
        totals: dict = {}
        for slot, count in zip(slots, pipe.execute(), strict=True):
            totals[owner_of(slot)] = totals.get(owner_of(slot), 0) + count
        return totals

    def _staged_records(self):
        """Records of the tasks in staged batches (they have none in the
        status log until promoted)."""
        log = MemoryStatusLog(self)
        with self._talking:
            batches = self.client.hvals(self.staged_key)
        for batch in batches:
            for message in staging.unpack(batch):
                with contextlib.suppress(DecodeError):
                    log.new(self.codec.decode_unverified(message), 'staged')
        return log.list(count=self.status_max)


def _text(value: bytes) -> str:
    """Stored bytes as text; those that are not UTF-8 shown as U+FFFD,
    not raised: a stored record is shown as it is (``status.record``)."""
    return value.decode('utf-8', 'replace')


def _texts(fields: dict) -> dict:
    return {_text(k): _text(v) for k, v in fields.items()}


def _consumer_info(stored: bytes | None) -> dict:
    """A consumer's info as its lease wrote it; a value that is not a
    JSON object with a numeric lease becomes a ``problem``."""
    try:
        info = json.loads(stored or b'{}')
    except (ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        return {'problem': 'its info is not a JSON object'}
    lease = info.get('lease', 0)
    if not isinstance(lease, (int, float)) or isinstance(lease, bool) \
            or not 0 <= lease < 1e9:  # also refuses NaN
        info['lease'] = 0
        info['problem'] = 'its lease is not a number'
    return info


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return ''.join('\\' + c if c in '*?[]\\' else c for c in text)
