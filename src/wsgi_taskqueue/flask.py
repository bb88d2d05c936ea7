"""The Flask extension: ``TaskQueue(app, db=db)`` or
``TaskQueue().init_app(app, db=db)``.

* Settings come from ``app.config``: ``TASKQUEUE_QUEUES`` (queue name ->
  the keys of a ``[taskqueue]`` section) and ``TASKQUEUE_CONSUMERS``
  (consumer name -> the keys of a ``[taskqueue-server]`` section), or the
  ``[taskqueue*]`` sections of the ini file ``TASKQUEUE_INI``.  They go
  through the ini's settings tables: a wrong key or value fails in
  ``init_app`` with the ini's message.
* With ``db`` (Flask-SQLAlchemy), the tasks a view adds follow
  ``db.session``: they are queued when ``db.session.commit()`` commits and
  dropped when it fails or is rolled back (``sqlsession``).  Tasks of a
  request whose session wrote nothing are queued when the request
  succeeds; tasks left waiting for a session that was never committed are
  dropped, with a warning.  Without ``db``, every request is a
  ``transaction`` that commits when the view answers 2xx or 3xx.
* The app is wrapped in the filter (``TaskQueueMiddleware``), which binds
  the request for ``taskqueue.add`` and strips ``X-Task-*`` headers that
  come from the network.
* The consumers of ``TASKQUEUE_CONSUMERS`` start with the first request the
  process serves (under any server, ``flask run`` included; never in a
  ``flask`` command that serves nothing), or when ``start_consumers`` is
  called, and stop at exit.
* ``flask taskqueue init|worker|status|show|tasks|dead|requeue|purge|add``:
  the ``wsgi-taskqueue`` commands on the app's queues.
"""
from __future__ import annotations

import atexit
import functools
import os
import threading

import click
import flask
import sqlalchemy
from flask.cli import AppGroup

from . import datamanager, sqlsession, taskqueue
from .config import configure, from_mappings
from .guard import is_task
from .middleware import TaskQueueMiddleware
from .registry import register_queue
from .serve import hand_over

__all__ = ['TaskQueue', 'task_only', 'CONFIG_SOURCE']

#: What error messages name as the file of settings from ``app.config``.
CONFIG_SOURCE = 'app.config'

#: The ``wsgi-taskqueue`` commands ``flask taskqueue`` offers.
COMMANDS = ('init', 'worker', 'status', 'show', 'tasks', 'dead', 'requeue',
            'purge', 'add')


def task_only(view):
    """A view that answers only to the consumer: 404 from the network
    (collective.taskqueue's ITaskQueueLayer, as a decorator)."""
    @functools.wraps(view)
    def only_as_task(*args, **kwargs):
        if not is_task(flask.request.environ):
            flask.abort(404)
        return view(*args, **kwargs)
    return only_as_task


class TaskQueue:
    """The extension; see the module docstring."""

    task_only = staticmethod(task_only)
    #: ``taskqueue.add`` and ``taskqueue.status``, so that the extension
    #: object is all a view imports.
    add = staticmethod(taskqueue.add)
    status = staticmethod(taskqueue.status)

    def __init__(self, app: flask.Flask | None = None, db=None):
        self.db = db
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: flask.Flask, db=None) -> None:
        db = db if db is not None else self.db
        state = _State(_configuration(app), db)
        for name, queue in state.configuration.queues.items():
            register_queue(name, queue)
        app.extensions['taskqueue'] = state
        app.wsgi_app = TaskQueueMiddleware(app.wsgi_app,
                                           manage_transaction=db is None)
        if hand_over(state.configuration):
            state.consumers = []  # `wsgi-taskqueue worker` runs them
        app.before_request(functools.partial(state.started, app))
        if db is not None:
            sqlsession.follow(db.session)
            app.after_request(state.commit_tasks_alone)
            app.teardown_request(state.drop_uncommitted_tasks)
        app.cli.add_command(taskqueue_command)

    def start_consumers(self, app: flask.Flask | None = None) -> list:
        """Start the app's consumers now rather than at its first request;
        return them."""
        app = app or flask.current_app
        return _state(app).start_consumers(app)

    def stop_consumers(self, app: flask.Flask | None = None) -> None:
        """Stop the app's consumers (done at exit), each waiting up to its
        ``stop_timeout`` for the tasks in flight."""
        _state(app or flask.current_app).stop_consumers()


def _configuration(app: flask.Flask):
    config = app.config
    if config.get('TASKQUEUE_INI'):
        return configure(config['TASKQUEUE_INI'])
    queues = config.get('TASKQUEUE_QUEUES') or {}
    if isinstance(queues, dict):
        queues = {name: _in_instance_folder(app, values)
                  for name, values in queues.items()}
    return from_mappings(queues, config.get('TASKQUEUE_CONSUMERS') or {},
                         CONFIG_SOURCE)


def _in_instance_folder(app: flask.Flask, values):
    """A queue's keys, a relative SQLite path in its ``url`` made one in
    the app's instance folder, as Flask-SQLAlchemy reads
    ``SQLALCHEMY_DATABASE_URI``: the same URL in both names one file, the
    same for every process of the app whatever its working directory."""
    url = values.get('url') if isinstance(values, dict) else None
    if not isinstance(url, str) or not url.startswith('sqlite'):
        return values
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return values  # the queue's own validation says what is wrong
    if parsed.database in (None, '', ':memory:') or os.path.isabs(
            parsed.database) or parsed.query.get('uri'):
        return values
    os.makedirs(app.instance_path, exist_ok=True)
    return dict(values, url=parsed.set(database=os.path.join(
        app.instance_path, parsed.database)).render_as_string(
            hide_password=False))


def _state(app: flask.Flask) -> _State:
    try:
        return app.extensions['taskqueue']
    except KeyError:
        raise RuntimeError(f'wsgi_taskqueue.flask.TaskQueue is not '
                           f'initialised on the app {app.name!r}') from None


class _State:
    """What the extension keeps for one app."""

    def __init__(self, configuration, db):
        self.configuration = configuration
        self.db = db
        self.consumers: list | None = None
        self._lock = threading.Lock()

    def start_consumers(self, app) -> list:
        if self.consumers is not None:  # started: the common case
            return self.consumers
        with self._lock:
            if self.consumers is None:
                consumers = self.configuration.build_consumers(app)
                for consumer in consumers:
                    consumer.start()
                self.consumers = consumers
                atexit.register(self.stop_consumers)
        return self.consumers

    def started(self, app) -> None:
        """``before_request``: the consumers run once a request came."""
        if self.consumers is None:
            self.start_consumers(app)

    def stop_consumers(self) -> None:
        from .serve import report_dropped

        with self._lock:
            consumers, self.consumers = self.consumers or [], None
        for consumer in consumers:
            consumer.stop(consumer.stop_timeout)
        if consumers:
            report_dropped(self.configuration.queues.values())

    def session(self):
        """The request's session, or None when it has none (nothing was
        done with it)."""
        if self.db is None or not self.db.session.registry.has():
            return None
        return self.db.session()

    def commit_tasks_alone(self, response):
        """``after_request``: a request that succeeded without writing to
        its session queues the tasks it added."""
        session = self.session()
        if (session is not None and sqlsession.pending(session)
                and response.status_code < 400
                and not sqlsession.wrote(session)):
            sqlsession.commit_alone(session)
        return response

    def drop_uncommitted_tasks(self, exc=None) -> None:
        """``teardown_request``: tasks still waiting are those of a
        request that failed or of writes that were never committed."""
        session = self.session()
        if session is not None and sqlsession.pending(session):
            request = flask.request
            sqlsession.drop(session, (
                f'{request.method} {request.path} ended without committing '
                f'db.session' + (f' ({exc!r})' if exc is not None else '')))


def _join(environ):
    """``datamanager`` joiner: the data manager of the Flask-SQLAlchemy
    session of the app being served, when it has one."""
    if not flask.has_app_context():
        return None
    state = flask.current_app.extensions.get('taskqueue')
    if state is None or state.db is None:
        return None
    return sqlsession.manager_for(state.db.session())


datamanager.joiners.append(_join)


@click.group('taskqueue', cls=AppGroup, help=(
    'The wsgi-taskqueue commands on the queues of the app (TASKQUEUE_* '
    'settings); each takes the options of its wsgi-taskqueue command, '
    'without CONFIG (--help lists them).'))
def taskqueue_command():
    pass


def _command(name: str):
    @taskqueue_command.command(name, help=f'wsgi-taskqueue {name}, on the '
                               f'app\'s queues (--help: its options)',
                               add_help_option=False, context_settings={
                                   'ignore_unknown_options': True,
                                   'allow_extra_args': True})
    @click.pass_context
    def command(context):
        from .cli import main

        app = flask.current_app._get_current_object()
        state = _state(app)
        # The command runs the consumers (worker) or none: the requests
        # its consumers dispatch must not start the app's own.
        state.consumers = []
        arguments = list(context.args)
        # CONFIG comes after the command (and after dead's action).
        at = 1 if name == 'dead' and arguments else 0
        argv = [name, *arguments[:at], CONFIG_SOURCE, *arguments[at:]]
        context.exit(main(argv, configuration=state.configuration, app=app))
    return command


for _name in COMMANDS:
    _command(_name)
