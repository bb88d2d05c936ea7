"""One database as the SQL queues on it share it: engine, tables, dialect,
wakeups, and the translation of driver errors into ``BackendUnavailable``.

Queues of one URL, schema and table prefix share one ``Store`` (and so one
connection pool, one listening connection and one group for the data
manager: the tasks of a transaction for all of them are staged and
promoted in one database transaction each).
"""
from __future__ import annotations

import contextlib
import threading

import sqlalchemy as sa

from ...errors import BackendUnavailable
from . import schema
from .dialects import dialect_for
from .pings import ping_idle_connections
from .wakeup import Wakeups

__all__ = ['Store', 'shared_store', 'DEFAULT_TIMEOUT', 'DEFAULT_POLL']

#: Seconds to connect, or to wait for a busy SQLite file: a commit meeting
#: a database that is down fails within that time (G6).
DEFAULT_TIMEOUT = 5.0
#: Longest a waiting consumer sleeps without looking (when no wakeup
#: reaches it from another process).
DEFAULT_POLL = 0.5

#: Errors that say the database cannot be reached or is too busy now.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError,
               sa.exc.DisconnectionError, sa.exc.TimeoutError)

#: How often ``run`` tries a transaction the database rolled back to break
#: a deadlock (MariaDB/MySQL 1213, PostgreSQL 40P01 and 40001).
DEADLOCK_ATTEMPTS = 5
_DEADLOCK_CODES = {1213}
_DEADLOCK_STATES = {'40P01', '40001'}


class Store:
    """See the module docstring."""

    def __init__(self, url: str, schema_name: str | None = None,
                 table_prefix: str = 'taskqueue_',
                 timeout: float = DEFAULT_TIMEOUT,
                 poll_interval: float = DEFAULT_POLL):
        url = _parse(url)
        if schema_name and url.get_backend_name() == 'sqlite':
            raise ValueError('a SQLite file has no schemas: use '
                             'table_prefix to share it')
        self.tables = schema.Tables(schema_name, table_prefix)
        try:
            self.engine = sa.create_engine(
                url, connect_args=_connect_args(url, timeout))
        except ImportError as exc:
            extra = {'postgresql': 'postgresql', 'mysql': 'mysql',
                     'mariadb': 'mysql'}.get(url.get_backend_name())
            hint = f': pip install wsgi-taskqueue[{extra}]' if extra else ''
            raise ValueError(f'the database driver of {url.drivername} is '
                             f'not installed ({exc}){hint}') from None
        self.dialect = dialect_for(self.engine, self.tables)
        self.dialect.configure(self.engine)
        ping_idle_connections(self.engine)
        self.where = url.render_as_string(hide_password=True)
        self.timeout = timeout
        self.wakeups = Wakeups(poll_interval)
        self.users = 0
        self._checked = False
        self._check_lock = threading.Lock()
        self._writer = threading.Lock() if self.dialect.one_writer else None

    @contextlib.contextmanager
    def transaction(self):
        """A connection in a transaction that commits when the block ends
        without an exception; database trouble is BackendUnavailable."""
        self._check_schema()
        if self._writer is None:
            with self._transaction() as connection:
                yield connection
            return
        if not self._writer.acquire(timeout=self.timeout):
            raise BackendUnavailable(
                f'SQL queue database {self.where} unavailable: busy for '
                f'more than {self.timeout}s', unsent=True)
        try:
            with self._transaction() as connection:
                yield connection
        finally:
            self._writer.release()

    def run(self, work):
        """``work(connection)`` in a ``transaction``, run again when the
        database rolled it back as a deadlock's victim (concurrent stages
        and promotions claiming names or counting jobs take row locks in
        orders InnoDB may find circular): the rollback wrote nothing, and
        the database asks for exactly that.  Any other error, or a
        deadlock ``DEADLOCK_ATTEMPTS`` times, is raised."""
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                with self.transaction() as connection:
                    return work(connection)
            except BackendUnavailable as exc:
                if attempt == DEADLOCK_ATTEMPTS or \
                        not _deadlocked(exc.__cause__):
                    raise

    @contextlib.contextmanager
    def _transaction(self):
        try:
            connection = self.engine.connect()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc, unsent=True) from exc
        try:
            with connection.begin():
                yield connection
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        finally:
            with contextlib.suppress(*UNAVAILABLE):
                connection.close()

    def now(self, connection) -> float:
        return float(connection.execute(sa.select(
            self.dialect.now())).scalar())

    def init(self) -> list[str]:
        """Create or upgrade the tables (``wsgi-taskqueue init``)."""
        try:
            with self.engine.begin() as connection:
                done = schema.init(connection, self.tables)
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        self._checked = True
        return done

    def listen(self) -> None:
        """Have other processes' promotions wake this one's consumers."""
        if self.dialect.listens:
            self.wakeups.listen(self.engine.url, self.dialect.channel,
                                self.timeout)

    def dispose(self) -> None:
        self.wakeups.close()
        self.engine.dispose()

    def _check_schema(self) -> None:
        """Once per store: the tables are there, in our version (a SQLite
        file gets them on first use)."""
        if self._checked:
            return
        with self._check_lock:
            if self._checked:
                return
            try:
                with self.engine.begin() as connection:
                    self.ensure_schema(connection)
            except UNAVAILABLE as exc:
                raise self._unavailable(exc, unsent=True) from exc
            self._checked = True

    def ensure_schema(self, connection) -> None:
        """Check the tables on ``connection`` (of this database), creating
        them in a SQLite file that has none; SchemaError if they are
        missing or of another version (an upgrade is for ``init``: other
        processes may still run the code of the version there)."""
        if self.engine.dialect.name == 'sqlite' and not sa.inspect(
                connection).has_table(self.tables.version.name):
            # Not checked yet: the transaction that creates them may be
            # the app's, and abort.
            schema.init(connection, self.tables)
            return
        schema.check(connection, self.tables, self.where)
        self._checked = True

    def _unavailable(self, exc, unsent=False) -> BackendUnavailable:
        reason = getattr(exc, 'orig', None) or exc
        return BackendUnavailable(
            f'SQL queue database {self.where} unavailable: '
            f'{str(reason).strip()}', unsent=unsent)


def _deadlocked(exc) -> bool:
    """Whether ``exc`` is the driver's error for a transaction rolled back
    to break a deadlock."""
    orig = getattr(exc, 'orig', None)
    args = getattr(orig, 'args', ())
    return (getattr(orig, 'sqlstate', None) in _DEADLOCK_STATES
            or bool(args) and args[0] in _DEADLOCK_CODES)


def _parse(text: str):
    """The SQLAlchemy URL ``text``, or a ValueError saying what is wrong
    (without the password)."""
    try:
        url = sa.engine.make_url(text)
        url.get_dialect()
    except sa.exc.ArgumentError as exc:
        raise ValueError(f'not a SQLAlchemy URL of a database it knows: '
                         f'{exc}') from None
    if url.get_backend_name() == 'sqlite' and url.database in (
            None, '', ':memory:'):
        raise ValueError('a SQLite queue needs a file: '
                         'sqlite:///path/to/tasks.db')
    return url


def _connect_args(url, timeout: float) -> dict:
    """Each driver's way to bound the wait for a connection (and, for
    SQLite, for a busy file)."""
    backend = url.get_backend_name()
    if backend == 'sqlite':
        return {'timeout': timeout, 'check_same_thread': False}
    if backend == 'postgresql':
        return {'connect_timeout': max(1, int(timeout))}
    if backend in ('mysql', 'mariadb'):
        return {'connect_timeout': max(1, int(timeout)),
                'read_timeout': max(1, int(timeout)),
                'write_timeout': max(1, int(timeout))}
    return {}


_stores: dict[tuple, Store] = {}
_stores_lock = threading.Lock()


def shared_store(url, schema_name, table_prefix, timeout,
                 poll_interval) -> Store:
    """The store of these settings, shared by the queues that use them."""
    key = (str(url), schema_name, table_prefix, timeout, poll_interval)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store(url, schema_name, table_prefix,
                                         timeout, poll_interval)
            store.key = key
        store.users += 1
        return store


def release_store(store: Store) -> None:
    """One queue is done with ``store``; the last one disposes of it."""
    with _stores_lock:
        store.users -= 1
        if store.users <= 0 and _stores.get(store.key) is store:
            del _stores[store.key]
            store.dispose()
