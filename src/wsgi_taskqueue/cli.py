"""The ``wsgi-taskqueue`` command."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .errors import TaskQueueError

__all__ = ['main']


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='wsgi-taskqueue',
        description='Transaction-aware task queue for WSGI applications.')
    parser.add_argument('-v', '--verbose', action='store_true',
                        help='log debug messages')
    commands = parser.add_subparsers(dest='command', required=True)

    serve = commands.add_parser(
        'serve', help='serve the app and run its consumers')
    serve.add_argument('config', help='the PasteDeploy ini file')
    serve.add_argument('--app', default='main', help='app section name')
    serve.add_argument('--server', default='main',
                       help='server section name')

    worker = commands.add_parser(
        'worker', help='run only the consumers (the app is called in-process)')
    worker.add_argument('config', help='the PasteDeploy ini file')
    worker.add_argument('--app', default='main', help='app section name')
    worker.add_argument('--runtime', type=_positive_float, metavar='SECONDS',
                        help='stop after this many seconds')
    worker.add_argument('--max-tasks', type=_positive_int, metavar='N',
                        help='stop after dispatching N tasks')
    worker.add_argument('--memory-limit', type=_byte_size, metavar='BYTES',
                        help='stop when resident memory exceeds BYTES '
                             '(suffixes K, M, G allowed)')
    worker.add_argument('--once', action='store_true',
                        help='stop once nothing is pending or in flight')
    return parser


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be greater than 0: {text}')
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1: {text}')
    return value


def _byte_size(text: str) -> int:
    units = {'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3}
    number, unit = text.upper(), 1
    if number[-1:] in units:
        number, unit = number[:-1], units[number[-1]]
    try:
        return _positive_int(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'not a size in bytes: {text!r} (e.g. 500M)') from None


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format='%(asctime)s %(levelname)s [%(name)s] %(message)s')
    try:
        return COMMANDS[args.command](args)
    except TaskQueueError as exc:
        print(f'wsgi-taskqueue: {exc}', file=sys.stderr)
        return 2


def _serve(args) -> int:
    from paste.deploy import loadapp
    from paste.deploy.loadwsgi import SERVER, loadcontext

    from .serve import running_consumers, server_runner

    url = f'config:{_abspath(args.config)}'
    app = loadapp(url, name=args.app)
    server = loadcontext(SERVER, url, name=args.server)
    if server.object is server_runner:
        server.create()(app)
    else:
        # Another server: the consumers run beside it in this process.
        with running_consumers(app, args.config):
            server.create()(app)
    return 0


def _worker(args) -> int:
    from paste.deploy import loadapp

    from .serve import WorkerLimits, run_worker

    app = loadapp(f'config:{_abspath(args.config)}', name=args.app)
    run_worker(app, args.config, WorkerLimits(
        runtime=args.runtime, max_tasks=args.max_tasks,
        memory_limit=args.memory_limit, once=args.once))
    return 0


def _abspath(path: str) -> str:
    return os.path.abspath(path)


COMMANDS = {'serve': _serve, 'worker': _worker}
