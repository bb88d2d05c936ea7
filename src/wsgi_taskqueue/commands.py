"""The operator commands of ``wsgi-taskqueue`` (init, status, show, tasks,
dead, requeue, purge, reset, add): arguments in, ``admin`` called, ``console``
output, an exit code back.  ``cli`` parses and dispatches to them.
"""
from __future__ import annotations

import sys

from . import admin, admin_dead, console
from .errors import ConfigurationError, UnknownQueue
from .options import OPTIONS
from .registry import get_queue

__all__ = ['OPERATIONS', 'selected_queues', 'UsageError']

OK = 0
#: Not found, nothing done (confirmation declined), or ``status --check``
#: found a queue without a live consumer.
NOT_DONE = 1
#: Bad arguments or configuration.
USAGE = 2
#: The backend cannot be reached or refused (Redis down, wrong password).
UNAVAILABLE = 3
INTERRUPTED = 130


class UsageError(Exception):
    """Arguments that argparse alone cannot reject."""


def selected_queues(config: str, wanted: list[str] | None) -> list[str]:
    """The queues of ``config`` a command works on: ``wanted``, or every
    queue another process can reach (not the in-process ``local`` ones,
    whose tasks only the process that serves them sees)."""
    queues = _queues_of(config)
    for name in wanted or ():
        if name not in queues:
            raise UnknownQueue(name, sorted(queues))
        if not queues[name].shared:
            raise ConfigurationError(
                f'queue {name!r} is in-process (type local): only the '
                f'process that serves it sees its tasks', _source(config))
    names = list(dict.fromkeys(wanted)) if wanted else [
        name for name in sorted(queues) if queues[name].shared]
    if not names:
        raise ConfigurationError(
            'every queue is in-process (type local): only the process '
            'that serves them sees their tasks', _source(config))
    return names


def _source(config) -> str:
    """What error messages name as the file of ``config``."""
    return getattr(config, 'filename', config)


def _queues_of(config) -> dict:
    from .config import configuration_of
    queues = configuration_of(config).queues
    if not queues:
        raise UnknownQueue(None, [])
    return queues


def init(args) -> int:
    """Create or upgrade the tables of the SQL queues of the file; say
    what was done (nothing, the second time)."""
    from .backends import SqlQueue
    stores = {}
    for queue in _queues_of(args.config).values():
        if isinstance(queue, SqlQueue):
            stores.setdefault(id(queue.store), queue.store)
    if not stores:
        raise ConfigurationError('no SQL queue (type sql, postgresql, '
                                 'sqlite or mysql) to initialize',
                                 args.config)
    for store in stores.values():
        done = store.init()
        where = f'{store.where} ({store.tables.prefix}*)'
        if not done:
            print(f'{where}: up to date')
        for line in done:
            print(f'{where}: {line}')
    return OK


def status(args) -> int:
    statuses = [admin.queue_status(name)
                for name in selected_queues(args.config, args.queue)]
    emit(args, statuses, console.render_status)
    idle = [s['queue'] for s in statuses if not s['live_consumers']]
    if args.check and idle:
        complain(f'no live consumer for queue(s): {", ".join(idle)}')
        return NOT_DONE
    return OK


def show(args) -> int:
    names = selected_queues(args.config, args.queue)
    record = admin.find_task(args.task_id, names)
    if record is None:
        complain(f'no task {args.task_id} in queue(s) {", ".join(names)} '
                  f'(unknown, or its status record expired)')
        return NOT_DONE
    emit(args, record, console.render_task)
    return OK


def cancel(args) -> int:
    names = selected_queues(args.config, args.queue)
    for name in names:
        outcome = get_queue(name).cancel(args.task_id)
        if outcome == 'cancelled':
            print(f'cancelled task {args.task_id} of queue {name}')
            return OK
        if outcome == 'running':
            complain(f'task {args.task_id} of queue {name} is running: '
                      f'not interrupted, it will finish')
            return NOT_DONE
    complain(f'no pending, scheduled or delayed task {args.task_id} in '
              f'queue(s) {", ".join(names)}')
    return NOT_DONE


def tasks(args) -> int:
    records = admin.tasks(selected_queues(args.config, args.queue),
                          args.state, args.offset, args.limit,
                          label=args.label)
    emit(args, records, lambda records: page_note(
        console.render_tasks(records), records, args, 'tasks'))
    return OK


def dead_list(args) -> int:
    letters = admin_dead.dead_letters(selected_queues(args.config, args.queue),
                                 args.offset, args.limit)
    emit(args, letters, lambda letters: page_note(
        console.render_dead(letters), letters, args, 'dead letters'))
    return OK


def dead_requeue(args) -> int:
    names = selected_queues(args.config, args.queue)
    if args.all:
        counts = {name: admin.queue_status(name)['dead'] for name in names}
        if not _confirmed(args, sum(counts.values()),
                          f'Requeue {_each(counts, "dead letter")}?'):
            return NOT_DONE
        requeued = dict.fromkeys(names, 0)
        for name in names:
            if counts[name]:
                with console.Progress(f'requeue {name}') as progress:
                    requeued[name] = admin_dead.requeue_all_dead(
                        name, progress)
        emit(args, {'requeued': requeued}, lambda result: '\n'.join(
            f'requeued {count} dead letter(s) of queue {name}'
            for name, count in requeued.items()))
        return OK
    if not args.task_ids:
        raise UsageError('dead requeue: name the TASK_IDs to requeue, or '
                         'pass --all')
    with console.Progress('requeue') as progress:
        result = admin_dead.requeue_dead(args.task_ids, names, progress)
    emit(args, result, lambda result: '\n'.join(
        [f'requeued {task_id}' for task_id in result['requeued']]
        + [f'not among the dead letters: {task_id}'
           for task_id in result['missing']]))
    return NOT_DONE if result['missing'] else OK


def dead_purge(args) -> int:
    names = selected_queues(args.config, args.queue)
    counts = {name: admin.queue_status(name)['dead'] for name in names}
    if not _confirmed(args, sum(counts.values()),
                      f'Delete {_each(counts, "dead letter")}?'):
        return NOT_DONE
    purged = {name: admin_dead.purge_dead(name) if counts[name] else 0
              for name in names}
    emit(args, {'purged': purged}, lambda result: '\n'.join(
        f'deleted {count} dead letter(s) of queue {name}'
        for name, count in purged.items()))
    return OK


def requeue(args) -> int:
    [name] = selected_queues(args.config, [args.queue])
    now = admin.queue_status(name)
    if not _confirmed(
            args, now['delayed'] + now['dead'],
            f"Run the {now['delayed']} delayed task(s) and the "
            f"{now['dead']} dead letter(s) of queue {name} ({now['where']}) "
            f"now, dead ones from attempt 1?"):
        return NOT_DONE
    result = {'delayed': 0, 'dead': 0}
    if now['delayed'] + now['dead']:
        with console.Progress(f'requeue {name}') as progress:
            result = admin.requeue(name, progress)
    emit(args, {'queue': name, **result}, lambda result: (
        f"requeued {result['delayed']} delayed task(s) and "
        f"{result['dead']} dead letter(s) of queue {name}"))
    return OK


def purge(args) -> int:
    [name] = selected_queues(args.config, [args.queue])
    now = admin.queue_status(name)
    if not _confirmed(
            args, now['pending'] + now['delayed'],
            f"Delete the {now['pending']} pending and {now['delayed']} "
            f"delayed task(s) of queue {name} ({now['where']})?  Tasks in "
            f"flight and dead letters stay."):
        return NOT_DONE
    purged = admin.purge(name) if now['pending'] + now['delayed'] else 0
    emit(args, {'queue': name, 'purged': purged}, lambda result: (
        f'deleted {purged} pending or delayed task(s) of queue {name}'))
    return OK


def reset(args) -> int:
    [name] = selected_queues(args.config, [args.queue])
    now = admin.queue_status(name)
    question = (
        f"Delete everything of queue {name} ({now['where']}): "
        f"{now['pending']} pending, {now['in_flight']} in flight, "
        f"{now['delayed']} delayed, {now['dead']} dead, {now['staged']} "
        f"staged, the status log and the consumer leases?")
    if now['live_consumers']:
        question += (f"  {now['live_consumers']} consumer(s) still run: "
                     f"what they have in flight finishes, unrecorded.")
    if not _confirmed(args, 1, question):
        return NOT_DONE
    admin.reset(name)
    emit(args, {'queue': name, 'reset': True},
           lambda result: f'queue {name} is empty')
    return OK


def add(args) -> int:
    name = args.queue or min(_queues_of(args.config))
    selected_queues(args.config, [name])
    payload = _payload(args)
    params: dict = {}
    for key, value in args.param:
        params.setdefault(key, []).append(value)
    headers: dict = {}
    for header, value in args.header:
        headers[header] = (f'{headers[header]}, {value}'
                           if header in headers else value)
    method = args.method or ('GET' if payload is None else 'POST')
    options = {option: getattr(args, option) for option in OPTIONS}
    task_id = admin.add_task(args.url, method=method, params=params,
                             headers=headers, payload=payload, queue=name,
                             user=args.user, **options)
    emit(args, {'id': task_id, 'queue': name, 'method': method},
           lambda result: task_id)
    return OK


def _payload(args) -> bytes | str | None:
    if args.data is not None:
        return args.data
    if args.data_file is None:
        return None
    if args.data_file == '-':
        return sys.stdin.buffer.read()
    try:
        with open(args.data_file, 'rb') as body:
            return body.read()
    except OSError as exc:
        raise UsageError(
            f'cannot read {args.data_file}: {exc.strerror}') from None


def _confirmed(args, count: int, question: str) -> bool:
    """May we act on ``count`` things?  Nothing to act on needs no
    question (the command then does nothing and reports zero)."""
    if not count or args.yes or console.confirm(question):
        return True
    complain('nothing done')
    return False


def _each(counts: dict, noun: str) -> str:
    return ', '.join(f'{count} {noun}(s) of queue {name}'
                     for name, count in counts.items() if count)


def page_note(text: str, shown: list, args, noun: str) -> str:
    """``text`` of one page of a listing, with how to see the next."""
    if not shown:
        return f'no {noun}' + (f' from offset {args.offset}'
                               if args.offset else '')
    if len(shown) == args.limit:
        text += f'\n(more with --offset {args.offset + args.limit})'
    return text


def emit(args, value, render) -> None:
    """``value`` on stdout: as JSON with ``--json``, else rendered."""
    print(console.to_json(value) if args.json else render(value))


def complain(message: str) -> None:
    """An error for the person at the terminal, on stderr."""
    print(f'wsgi-taskqueue: {message}', file=sys.stderr)


OPERATIONS = {
    'init': init, 'status': status, 'show': show, 'tasks': tasks,
    'dead list': dead_list, 'dead requeue': dead_requeue,
    'dead purge': dead_purge, 'requeue': requeue, 'purge': purge,
    'reset': reset, 'add': add, 'cancel': cancel,
}
