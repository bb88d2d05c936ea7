"""Ours, enqueueing in transactions that also write one row to SQLite
through a zope.sqlalchemy session, as a Pyramid app with pyramid_tm does.

With a second resource in the transaction the tasks are staged in the
vote and promoted after the commit, instead of being pushed in one step.
The database is a file in WAL mode with ``synchronous = NORMAL``, which
does not fsync each commit: the row costs SQLAlchemy's and SQLite's work,
not the disk's.
"""
from __future__ import annotations

import os
import tempfile

import sqlalchemy
import zope.sqlalchemy
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    scoped_session,
    sessionmaker,
)

from systems import ours

_DIRECTORY = tempfile.TemporaryDirectory(prefix='bench-sqlite-')

engine = sqlalchemy.create_engine(
    'sqlite:///' + os.path.join(_DIRECTORY.name, 'rows.db'))


@sqlalchemy.event.listens_for(engine, 'connect')
def _pragmas(connection, record) -> None:
    connection.execute('PRAGMA journal_mode = WAL')
    connection.execute('PRAGMA synchronous = NORMAL')


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = 'rows'
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[int]


Base.metadata.create_all(engine)
Session = scoped_session(sessionmaker(bind=engine))
zope.sqlalchemy.register(Session)


def write_row(job: int) -> None:
    Session.add(Row(job=job))


push = ours.transactions(1, write_row)
