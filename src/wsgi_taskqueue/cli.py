"""The ``wsgi-taskqueue`` command: serve, work, and operate the queues of
an ini file.

Every command reads the ``[taskqueue*]`` sections of ``CONFIG`` (only
``serve`` and ``worker`` load the app too).  The queue operations are
``admin``'s, the presentation ``console``'s and the arguments' types
``cli_arguments``'; this module parses, calls and maps errors to exit
codes (``EXIT_CODES``).
"""
from __future__ import annotations

import argparse
import configparser
import logging
import logging.config
import os
import sys

from . import __version__, job_commands
from . import cli_arguments as arguments
from .commands import (
    INTERRUPTED,
    NOT_DONE,
    OK,
    OPERATIONS,
    UNAVAILABLE,
    USAGE,
    UsageError,
    selected_queues,
)
from .errors import BackendUnavailable, TaskQueueError
from .options import OPTIONS
from .status import STATES
from .validation import check_label

__all__ = ['main', 'build_parser', 'EXIT_CODES']

#: Where ``dashboard`` finds its API key when --api-key is not given
#: (an option shows in ``ps``; the environment does not).
API_KEY_ENV = 'WSGI_TASKQUEUE_API_KEY'

EXIT_CODES = f"""\
exit codes:
  {OK}    done
  {NOT_DONE}    not found, or nothing done (confirmation declined,
       status --check found a queue without a live consumer)
  {USAGE}    usage or configuration error
  {UNAVAILABLE}    the queue backend is unreachable or refused
  {INTERRUPTED}  interrupted (Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='wsgi-taskqueue', epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Transaction-aware task queue for WSGI applications. '
                    'Every command reads the [taskqueue*] sections of the '
                    'ini file CONFIG (the operator commands also read the '
                    '<taskqueue*> sections of a zope.conf); NAME=VALUE '
                    'arguments after an ini file set %(NAME)s in it, winning '
                    'over its [DEFAULT].')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='log debug messages')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {__version__}')
    commands = parser.add_subparsers(dest='command', required=True,
                                     metavar='COMMAND')

    def command(name, help, *options, parent=commands):
        sub = parent.add_parser(name, help=help, description=help,
                                epilog=EXIT_CODES, formatter_class=
                                argparse.RawDescriptionHelpFormatter)
        sub.add_argument('config', metavar='CONFIG',
                         help='the PasteDeploy ini file')
        for option in options:
            option(sub)
        sub.set_defaults(handler=name if parent is commands
                         else f'dead {name}')
        return sub

    serve = command('serve', 'serve the app and run its consumers',
                    _metrics, _variables)
    serve.add_argument('--app', default='main', help='app section name')
    serve.add_argument('--server', default='main', help='server section name')

    worker = command(
        'worker', 'run only the consumers (the app is called in-process)',
        _metrics, _variables)
    worker.add_argument('--app', default='main', help='app section name')
    worker.add_argument('--runtime', type=arguments.positive_float,
                        metavar='SECONDS',
                        help='stop after this many seconds')
    worker.add_argument('--max-tasks', type=arguments.positive_int,
                        metavar='N', help='stop after dispatching N tasks')
    worker.add_argument('--memory-limit', type=arguments.byte_size,
                        metavar='BYTES',
                        help='stop when resident memory exceeds BYTES '
                             '(suffixes K, M, G allowed)')
    worker.add_argument('--once', action='store_true',
                        help='stop once nothing is pending or in flight')

    dashboard = command('dashboard', 'serve the management app (JSON API '
                        'and dashboard) with waitress', _queues)
    dashboard.add_argument('--listen', default='127.0.0.1:6544',
                           metavar='HOST:PORT',
                           help='where to listen (default: %(default)s)')
    dashboard.add_argument('--api-key', help=f'the key API clients send '
                           f'(default: ${API_KEY_ENV})')

    command('init', 'create or upgrade the tables of the SQL queues')

    status = command('status', 'counts, consumers and recent outcomes of '
                     'each queue', _queues, _json)
    status.add_argument('--check', action='store_true',
                        help=f'exit {NOT_DONE} when a queue has no live '
                             f'consumer')

    show = command('show', 'one task: state, attempts, error', _queues,
                   _json)
    show.add_argument('task_id', metavar='TASK_ID')

    cancel = command('cancel', 'remove a pending, scheduled or delayed '
                     'task (a running one is not interrupted)', _queues)
    cancel.add_argument('task_id', metavar='TASK_ID', type=arguments.task_id)

    command('tasks', 'the tasks of the status log, newest first', _queues,
            _state, _label, _page, _json)
    job_commands.add_parsers(command, _queues, _page, _json)

    dead = commands.add_parser('dead', help='list, requeue or purge dead '
                               'letters').add_subparsers(
        dest='dead_command', required=True, metavar='ACTION')
    command('list', 'the dead letters, newest first', _queues, _page, _json,
            parent=dead)
    dead_requeue = command(
        'requeue', 'run dead tasks again, from attempt 1', _queues, _yes,
        _json, parent=dead)
    which = dead_requeue.add_mutually_exclusive_group()
    which.add_argument('task_ids', metavar='TASK_ID', nargs='*', default=[],
                       help='the tasks to requeue')
    which.add_argument('--all', action='store_true',
                       help='every dead letter of the queues (asks first)')
    command('purge', 'delete the dead letters (asks first)', _queues, _yes,
            _json, parent=dead)

    for name, help in (
            ('requeue', 'run the delayed tasks and the dead letters of '
                        'QUEUE now (asks first)'),
            ('purge', 'delete the pending and delayed tasks of QUEUE '
                      '(asks first)'),
            ('reset', 'delete everything of QUEUE (asks first)')):
        command(name, help, _queue_argument, _yes, _json)

    add = command('add', 'enqueue a request to the app, in a transaction '
                  'of its own', _json)
    add.add_argument('url', metavar='URL', help="a path in the app ('/x?y=1')")
    add.add_argument('-q', '--queue', help='default: the first queue')
    add.add_argument('-X', '--method', type=str.upper,
                     help='HTTP method (default: GET, or POST with a body)')
    add.add_argument('-p', '--param', action='append',
                     type=arguments.key_value, default=[], metavar='KEY=VALUE',
                     help='a query parameter (repeatable)')
    add.add_argument('-H', '--header', action='append', type=arguments.header,
                     default=[], metavar="'NAME: VALUE'",
                     help='a request header (repeatable)')
    body = add.add_mutually_exclusive_group()
    body.add_argument('-d', '--data', help='the request body')
    body.add_argument('--data-file', metavar='PATH',
                      help="read the request body from PATH ('-': stdin)")
    add.add_argument('--user', help="the task's REMOTE_USER")
    for name, option in OPTIONS.items():
        add.add_argument('--' + name.replace('_', '-'),
                         type=arguments.checked(option.from_text),
                         metavar=option.metavar, help=option.help)
    return parser


def _metrics(parser) -> None:
    parser.add_argument('--metrics', metavar='HOST:PORT',
                        help='serve Prometheus metrics of this process '
                             'there (needs prometheus_client)')


def _variables(parser) -> None:
    parser.add_argument('variables', nargs='*', type=arguments.key_value,
                        metavar='NAME=VALUE',
                        help='a value for %%(NAME)s in CONFIG, winning over '
                             'its [DEFAULT] (repeatable)')


def _queues(parser) -> None:
    parser.add_argument('-q', '--queue', action='append', metavar='QUEUE',
                        help='only this queue (repeatable; default: every '
                             'queue of CONFIG)')


def _queue_argument(parser) -> None:
    parser.add_argument('queue', metavar='QUEUE')


def _json(parser) -> None:
    parser.add_argument('--json', action='store_true',
                        help='print JSON for scripts')


def _yes(parser) -> None:
    parser.add_argument('-y', '--yes', action='store_true',
                        help='do not ask for confirmation')


def _state(parser) -> None:
    parser.add_argument('--state', choices=STATES,
                        help='only tasks in this state')


def _label(parser) -> None:
    parser.add_argument('--label', type=arguments.checked(check_label),
                        help='only tasks added with this label')


def _page(parser) -> None:
    parser.add_argument('--limit', type=arguments.positive_int, default=50,
                        metavar='N', help='show N (default: %(default)s)')
    parser.add_argument('--offset', type=arguments.natural_int, default=0,
                        metavar='N', help='skip the newest N')


def main(argv=None, *, configuration=None, app=None) -> int:
    """Run the command of ``argv``; return its exit code.

    ``configuration`` and ``app``: work on a Configuration built elsewhere
    (``flask taskqueue``, from ``app.config``) rather than on the ini file
    CONFIG, and run ``worker``'s consumers on ``app``.
    """
    try:
        args = _parse(build_parser(), argv)
    except SystemExit as exc:  # --help, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else USAGE
    if configuration is not None:
        args.config, args.app_object = configuration, app
    try:
        if isinstance(args.config, str):
            from .config import configure
            # Every command reads CONFIG with its variables.
            configure(args.config, dict(args.variables))
        _configure_logging(args)
        code = COMMANDS[args.handler](args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BackendUnavailable as exc:
        return _fail(exc, UNAVAILABLE)
    except (UsageError, TaskQueueError) as exc:
        return _fail(exc, USAGE)
    except KeyboardInterrupt:
        return _fail('interrupted', INTERRUPTED)
    except BrokenPipeError:
        # `wsgi-taskqueue tasks app.ini | head`: the reader had enough.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as exc:
        import redis
        if isinstance(exc, redis.RedisError):  # e.g. NOPERM, WRONGPASS
            return _fail(f'Redis refused: {exc}', UNAVAILABLE)
        raise


def _parse(parser, argv):
    """Parse ``argv``.  ``NAME=VALUE`` variables are positional arguments
    of ``serve`` and ``worker``; the other commands, and those two after
    their options (``serve app.ini --app x port=8080``), get them from
    what argparse leaves over."""
    args, extra = parser.parse_known_args(argv)
    args.variables = getattr(args, 'variables', [])
    if extra and not any(text.startswith('-') for text in extra):
        try:
            args.variables += [arguments.key_value(text) for text in extra]
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    return args


def _configure_logging(args) -> None:
    """The ini's own [loggers] sections when it has them (as pserve
    does), else INFO for the long-running commands (one line per task) and
    WARNING for the others; -v means DEBUG."""
    server = args.handler in ('serve', 'worker', 'dashboard')
    if server and isinstance(args.config, str) and _has_loggers(args.config):
        logging.config.fileConfig(args.config, defaults={
            'here': os.path.dirname(_abspath(args.config)),
            '__file__': _abspath(args.config)},
            disable_existing_loggers=False)
    else:
        logging.basicConfig(
            level=logging.INFO if server else logging.WARNING,
            format='%(asctime)s %(levelname)s [%(name)s] %(message)s')
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)


def _has_loggers(path: str) -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error:
        return False  # the configuration's own loading says what is wrong
    return parser.has_section('loggers')


def _fail(error, code: int) -> int:
    print(f'wsgi-taskqueue: {error}', file=sys.stderr)
    return code


def _serve_metrics(args) -> None:
    if args.metrics:
        from . import metrics
        try:
            metrics.serve(args.metrics)
        except (ImportError, ValueError) as exc:
            raise UsageError(f'--metrics: {exc}') from exc


def _serve(args) -> int:
    from .loading import load_app, load_server
    from .serve import running_consumers, serve_logged, server_runner

    # main() has configured CONFIG with the variables: the filter and the
    # consumers find them applied.
    variables = dict(args.variables)
    app = load_app(args.config, args.app, variables)
    server = load_server(args.config, args.server, variables)
    _serve_metrics(args)
    with serve_logged(args.config):
        if server.object is server_runner:
            server.create()(app)
        else:
            # Another server: the consumers run beside it in this process.
            with running_consumers(app, args.config):
                server.create()(app)
    return OK


def _worker(args) -> int:
    from .config import configuration_of
    from .loading import load_app
    from .serve import WorkerLimits, hosting_consumers, run_worker

    app = getattr(args, 'app_object', None)
    configuration = configuration_of(args.config)
    if app is None:
        with hosting_consumers() as handed_over:
            app = load_app(args.config, args.app, dict(args.variables))
        # The ini's consumers, and those of the app's own settings.
        configuration = configuration.joined(*handed_over)
    _serve_metrics(args)
    run_worker(app, configuration, WorkerLimits(
        runtime=args.runtime, max_tasks=args.max_tasks,
        memory_limit=args.memory_limit, once=args.once))
    return OK


def _abspath(path: str) -> str:
    return os.path.abspath(path)


def _dashboard(args) -> int:
    api_key = args.api_key or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise UsageError(f'no API key: pass --api-key or set {API_KEY_ENV}')
    names = selected_queues(args.config, args.queue)
    try:
        from .management import make_app
    except ImportError as exc:
        raise UsageError(
            f'the management app cannot be loaded: {exc}') from exc
    try:
        app = make_app(api_key, queues=names)
    except ValueError as exc:
        source = '--api-key' if args.api_key else f'${API_KEY_ENV}'
        raise UsageError(f'{source}: {exc}') from None
    import waitress
    waitress.serve(app, listen=args.listen)
    return OK


COMMANDS = {'serve': _serve, 'worker': _worker, 'dashboard': _dashboard,
            **OPERATIONS, **job_commands.JOB_OPERATIONS}
