"""An app's database and session, the way zope.sqlalchemy users write
them, for the outbox tests; and the app's task, which records in that
database that it ran."""
import sqlalchemy as sa
import webob
import webob.dec
import webob.exc
from sqlalchemy import orm
from zope.sqlalchemy import mark_changed, register

metadata = sa.MetaData()
notes = sa.Table('notes', metadata,
                 sa.Column('id', sa.Integer, primary_key=True),
                 sa.Column('text', sa.String(100), nullable=False))
processed = sa.Table('processed', metadata,
                     sa.Column('id', sa.Integer, primary_key=True),
                     sa.Column('text', sa.String(100), nullable=False),
                     sa.Column('note_found', sa.Boolean, nullable=False))

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


@webob.dec.wsgify
def process(request):
    """The task of a note (``POST /process?text=...``): one ``processed``
    row per run, saying whether its note was there to be seen."""
    if request.path_info != '/process':
        return webob.exc.HTTPNotFound()
    text = request.GET['text']
    engine = Session.registry().get_bind()
    with engine.begin() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(
            notes).where(notes.c.text == text)).scalar()
        connection.execute(processed.insert().values(
            text=text, note_found=bool(found)))
    return webob.Response('done')
