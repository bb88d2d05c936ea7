"""``min_replicas``: a write of the transaction (stage, promotion) counts
only once that many replicas have it (WAIT, at most half of
``socket_timeout``), so that a failover cannot lose a committed task
(docs/scale.rst, "Failover")."""
from __future__ import annotations

import redis

from ...errors import BackendUnavailable
from .bounds import NotSent

__all__ = ['wait_arguments', 'wait', 'check']


def wait_arguments(queue) -> tuple:
    """WAIT's arguments for ``queue``, or () without min_replicas."""
    if not queue.min_replicas:
        return ()
    return queue.min_replicas, int(queue.socket_timeout * 500)


def wait(queue, what: str, since: int) -> None:
    """Wait until min_replicas replicas have this thread's writes to
    ``queue``'s server, sent when its connections were of generation
    ``since``; BackendUnavailable if they do not confirm them in time, or
    if the Sentinels announced another primary meanwhile."""
    arguments = wait_arguments(queue)
    if not arguments:
        return
    try:
        confirmed = queue.connections.run('WAIT', *arguments)
    except NotSent as exc:
        # The write before it went out: the vote must not be taken for one
        # that sent nothing (its abort would not discard the stage).
        raise redis.ConnectionError(str(exc)) from exc
    check(queue, confirmed, arguments, what)
    if queue.connections.generation != since:
        # A failover began while the write was on its way: a replica of
        # the old primary that the Sentinels have not reconfigured yet
        # may have confirmed it, and will drop it when they do.
        raise BackendUnavailable(
            f'Redis at {queue.where}: the Sentinels announced another '
            f'primary during the {what}; not counted')


def check(queue, confirmed: int, arguments: tuple, what: str) -> None:
    """BackendUnavailable unless WAIT ``arguments`` confirmed enough."""
    if confirmed < queue.min_replicas:
        # Perhaps a failover took our replicas: ask where the primary is,
        # so that the next try goes there.
        queue.route.lost()
        raise BackendUnavailable(
            f'Redis at {queue.where}: {confirmed} of min_replicas = '
            f'{queue.min_replicas} replica(s) confirmed the {what} within '
            f'{arguments[1]} ms')
