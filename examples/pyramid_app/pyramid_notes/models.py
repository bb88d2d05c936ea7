"""The notes a request writes, and the runs of the tasks that process them."""
from __future__ import annotations

import datetime

import sqlalchemy
import zope.sqlalchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Base(DeclarativeBase):
    pass


class Note(Base):
    """Written by a request, in the same transaction as its task."""

    __tablename__ = 'notes'

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    author: Mapped[str | None]
    #: Set by the task.
    words: Mapped[int | None]


class TaskRun(Base):
    """One run of the task of a note, with what the task saw."""

    __tablename__ = 'task_runs'

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(index=True)
    attempt: Mapped[int]
    note_id: Mapped[int]
    #: Whether the task found its note: the note's transaction had
    #: committed before the task ran.
    note_found: Mapped[bool]
    remote_user: Mapped[str | None]
    #: The user name of the Authorization header the task received.
    authorization_user: Mapped[str | None]
    #: The ``lang`` cookie the task received.
    lang: Mapped[str | None]
    ran_at: Mapped[datetime.datetime] = mapped_column(default=now)


def session_factory(settings: dict) -> sessionmaker:
    """Create the tables if needed; return the factory of sessions."""
    engine = sqlalchemy.engine_from_config(settings, 'sqlalchemy.')
    if engine.dialect.name == 'sqlite':
        sqlalchemy.event.listen(engine, 'connect', _sqlite_wal)
    Base.metadata.create_all(engine)
    return sessionmaker(bind=engine)


def _sqlite_wal(connection, record) -> None:
    """Readers don't wait for writers: consumer threads write while the
    web threads serve."""
    connection.execute('PRAGMA journal_mode=WAL')


def request_session(factory: sessionmaker, request):
    """``request.dbsession``: a session that joins the request's
    transaction, the one ``taskqueue.add`` joins too, so the row and its
    task commit or abort together."""
    session = factory()
    zope.sqlalchemy.register(session, transaction_manager=request.tm)
    return session
