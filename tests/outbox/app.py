"""An app's database and session, the way zope.sqlalchemy users write
them, for the outbox tests."""
import sqlalchemy as sa
from sqlalchemy import orm
from zope.sqlalchemy import mark_changed, register

metadata = sa.MetaData()
notes = sa.Table('notes', metadata,
                 sa.Column('id', sa.Integer, primary_key=True),
                 sa.Column('text', sa.String(100), nullable=False))

Session = orm.scoped_session(orm.sessionmaker())
register(Session)


def bind(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    Session.configure(bind=engine)
    return engine


def write_note(text: str) -> None:
    """A row written with Core SQL, marked changed as zope.sqlalchemy
    asks of such writes."""
    session = Session()
    session.execute(notes.insert().values(text=text))
    mark_changed(session)
