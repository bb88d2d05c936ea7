"""One transaction's stage or promotion over queues in several slots of a
Cluster, sent to every primary before any reply is read.

A script may touch the keys of one slot only, so a transaction over
queues in three slots runs three scripts.  Each primary gets the scripts
of its slots, each followed by the WAIT of ``min_replicas``, in one write
on the calling thread's connection to it; then the replies are read,
primary after primary.  The stage (or promotion) takes one round trip in
all, on every primary at once, rather than one per slot in turn; no
threads are needed, as Redis answers each connection in order.

A script whose reply says it did not run (NOSCRIPT; the slot moved or is
moving) or whose connection failed is run once more on its own, through
its route, which follows the slot (route.py): stage and promote are
idempotent.  The caller hears of a failure only once every reply is in:
by then each script was applied or refused, so that an abort discards
them all (G1); nothing counts as unsent unless no script was sent.
"""
from __future__ import annotations

import redis

from ...errors import BackendUnavailable
from . import replication, staging
from .bounds import Exhausted, NotSent
from .connection import pack
from .route import redirection

__all__ = ['by_slot', 'stage', 'promote', 'run_together']


def by_slot(queues) -> list[list]:
    """``queues`` by Cluster slot (all in one list on one server): a
    script may touch the keys of one slot only."""
    slots: dict = {}
    for queue in queues:
        slot = (queue.route.slot if queue.topology.kind == 'cluster'
                else None)
        slots.setdefault(slot, []).append(queue)
    return list(slots.values())


class Call:
    """A script to run on the primary of ``route``; then its ``reply``
    and WAIT's (``confirmed``), or the ``error`` it met."""

    __slots__ = ('route', 'script', 'keys', 'args', 'reply', 'confirmed',
                 'error')

    def __init__(self, route, script, keys, args):
        self.route = route
        self.script = script
        self.keys = keys
        self.args = args
        self.reply = self.confirmed = self.error = None


def stage(queue, batch_id, slots: list[dict]) -> None:
    """Stage ``slots`` ([{queue: messages}], one dict per slot) under
    ``batch_id``; raise if any slot's stage failed or was not replicated
    (the vote says no, and the abort discards every slot's)."""
    calls = [Call(first.route, first.stage_script, *arguments)
             for first, arguments in (
                 (next(iter(batches)), stage_arguments(batch_id, batches))
                 for batches in slots)]
    run_together(calls, replication.wait_arguments(queue))
    _check(queue, calls, 'stage')


def promote(queue, batch_id, slots: list[list], failed) -> None:
    """Promote ``batch_id`` in each slot's queues (``slots``: [[queue]]);
    as RedisQueue.promote_batches."""
    calls = [Call(queues[0].route, queues[0].promote_script,
                  *promote_arguments(batch_id, queues)) for queues in slots]
    if failed is not None and not queue.min_replicas:
        # The commit need not wait: each reply is read before its
        # thread connection's next command.  A slot whose primary cannot
        # be reached does not keep the others from being sent.
        unsent = None
        for call in calls:
            try:
                call.route.send_script(call.script, call.keys, call.args,
                                       failed)
            except redis.RedisError as error:
                unsent = error
        if unsent is not None:
            failed(unsent)  # its follow-up promotes every slot again
        return
    run_together(calls, replication.wait_arguments(queue))
    try:
        _check(queue, calls, 'promotion')
    except BackendUnavailable as exc:
        if failed is None:
            raise
        failed(exc)


def stage_arguments(batch_id: str, batches: dict) -> tuple[list, list]:
    """KEYS and ARGV of the stage (staging.Stage) for ``batches``
    ({queue: messages}, queues of one slot)."""
    return ([queue.staged_key for queue in batches],
            [batch_id, *(staging.pack(staged) for staged in batches.values())])


def promote_arguments(batch_id: str, queues) -> tuple[list, list]:
    """KEYS and ARGV of the promote script for ``queues`` (of one slot)."""
    keys, args = [], [batch_id]
    for queue in queues:
        keys += [queue.staged_key, queue.pending_key, queue.delayed_key]
        args += [queue.status_ttl, queue.names.base_for(queue),
                 queue.name_ttl]
    return keys, args


def run_together(calls: list[Call], wait: tuple = ()) -> None:
    """Send every call, each followed by ``WAIT *wait`` if given, to its
    primary, then read the replies into the calls (module docstring)."""
    by_connections: dict = {}
    for call in calls:
        by_connections.setdefault(call.route.connections, []).append(call)
    # Every thread takes its connections in one order, so that two threads
    # that need the same two cannot each hold one and wait for the other.
    order = sorted(by_connections.items(), key=lambda item: _address(
        item[0].pool))
    taken = []
    try:
        for connections, group in order:
            line = _send(connections, group, wait)
            if line is not None:
                taken.append((connections, line, group))
        for _, line, group in taken:
            _read(line, group, wait)
    finally:
        for connections, line, _ in taken:
            connections.give_back(line)
    for call in calls:
        if call.error is not None and _worth_again(call.error):
            _run_alone(call, wait)


def _address(pool) -> tuple:
    kwargs = pool.connection_kwargs
    return str(kwargs.get('host')), int(kwargs.get('port') or 0)


def _send(connections, group: list[Call], wait: tuple):
    """Write the group's scripts on this thread's line to their primary;
    the line, or None (each call then has its error)."""
    try:
        line = connections.take_line()
    except NotSent as error:
        for call in group:
            call.error = error
        return None
    chunks = []
    for call in group:
        chunks += pack(line.connection,
                       call.script.command(line, call.keys, call.args))
        if wait:
            chunks += pack(line.connection, ('WAIT', *wait))
    try:
        line.connection.send_packed_command(chunks, check_health=False)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        # Perhaps sent in part: not NotSent.
        line.connection.disconnect()
        connections.give_back(line)
        for call in group:
            call.error = redis.ConnectionError(str(error))
        return None
    return line


def _read(line, group: list[Call], wait: tuple) -> None:
    connection = line.connection
    for index, call in enumerate(group):
        try:
            try:
                call.reply = connection.read_response()
            except redis.ResponseError as error:
                call.error = error
            if wait:
                try:
                    call.confirmed = connection.read_response()
                except redis.ResponseError as error:
                    # A replica now (the slot moved): the script's own
                    # error (MOVED) says more.
                    call.error = call.error or error
        except (redis.ConnectionError, redis.TimeoutError) as error:
            # The connection is gone, and with it every reply not read.
            connection.disconnect()
            for rest in group[index:]:
                rest.error = redis.ConnectionError(str(error))
            return


def _worth_again(error) -> bool:
    """Whether a call that met ``error`` did not run or may not have, so
    that it runs once more on its own."""
    if isinstance(error, Exhausted):
        return False  # it waited its time already
    return isinstance(error, (redis.ConnectionError, redis.TimeoutError,
                              redis.exceptions.NoScriptError)) or (
        isinstance(error, redis.ResponseError) and redirection(error))


def _run_alone(call: Call, wait: tuple) -> None:
    first, call.error = call.error, None
    if isinstance(first, redis.exceptions.MovedError):
        call.route.moved(first)
    try:
        call.reply = call.route.run_script(call.script, call.keys, call.args)
        if wait:
            call.confirmed = call.route.connections.run('WAIT', *wait)
    except NotSent as error:
        # Unsent only if neither try reached the server.
        call.error = (error if isinstance(first, NotSent) and
                      call.reply is None else redis.ConnectionError(
                          str(error)))
    except redis.RedisError as error:
        call.error = error


def _check(queue, calls: list[Call], what: str) -> None:
    failed = [call.error for call in calls if call.error is not None]
    if failed:
        if all(isinstance(error, NotSent) for error in failed) and len(
                failed) == len(calls):
            raise failed[0]  # no primary took anything
        error = failed[0]
        if isinstance(error, NotSent):
            # Another slot's write went out: the vote must not be taken
            # for one that sent nothing (its abort would not discard it).
            raise redis.ConnectionError(str(error)) from error
        raise error
    if wait := replication.wait_arguments(queue):
        for call in calls:
            replication.check(queue, call.confirmed, wait, what)
