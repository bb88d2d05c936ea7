"""Write notes and queue their tasks; the tasks; writes that fail."""
from flask import Blueprint, abort, request
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from wsgi_taskqueue import current_task
from wsgi_taskqueue.flask import task_only

from .extensions import taskqueue
from .models import Note, TaskRun, db

blueprint = Blueprint('notes', __name__)

#: Bounds one request's transaction.
MAX_COUNT = 1000


class WriteFailed(Exception):
    """Raised after notes were written and their tasks added: the session
    never commits, so neither the notes nor the tasks exist."""

    def __init__(self, task_ids: list[str]):
        super().__init__('failed on purpose after writing')
        self.task_ids = task_ids


@blueprint.errorhandler(WriteFailed)
def write_failed(exc):
    return {'error': str(exc), 'tasks': exc.task_ids}, 500


def user_name() -> str | None:
    return current_user.id if current_user.is_authenticated else None


def add_notes() -> dict:
    """Add ``count`` notes with ``text`` and a task for each, to be
    committed by the caller."""
    count = request.form.get('count', 1, type=int)
    if not 1 <= count <= MAX_COUNT:
        abort(400, f'count must be a number from 1 to {MAX_COUNT}')
    notes = [Note(text=request.form.get('text', ''), author=user_name())
             for _ in range(count)]
    db.session.add_all(notes)
    db.session.flush()  # assigns the ids the tasks need
    # payload=None: the task needs only the note's id, not this form.
    tasks = [taskqueue.add('/tasks/process', method='POST', payload=None,
                           params={'id': note.id})
             for note in notes]
    return {'notes': [note.id for note in notes], 'tasks': tasks}


@blueprint.get('/notes')
def list_notes():
    return [{'id': note.id, 'text': note.text, 'author': note.author,
             'words': note.words}
            for note in db.session.scalars(db.select(Note).order_by(Note.id))]


@blueprint.post('/notes')
def write_notes():
    written = add_notes()
    db.session.commit()  # the notes and their tasks, or neither
    return written


@blueprint.post('/notes/fail')
def write_notes_then_fail():
    """Write and add tasks, then fail as ``how`` says: ``raise`` before
    committing, ``rollback``, or ``commit`` a second note with the same
    label, which the database refuses."""
    how = request.form.get('how')
    written = add_notes()
    if how == 'commit':
        db.session.add_all([Note(text='the same label', label='twice')
                            for _ in range(2)])
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return dict(written, error='commit failed'), 409
        raise AssertionError('the commit should have failed')
    if how == 'rollback':
        db.session.rollback()
        return dict(written, rolled_back=True)
    raise WriteFailed(written['tasks'])


@blueprint.post('/remind')
def remind():
    """Writes nothing: its task is queued when the request succeeds, and
    dropped when it fails (``fail=1``)."""
    task_id = taskqueue.add('/tasks/remind', method='POST', payload=None)
    if request.form.get('fail'):
        raise WriteFailed([task_id])
    return {'tasks': [task_id]}


@blueprint.post('/tasks/process')
@task_only
def process_note():
    """The task of a note: count its words, record what the task saw."""
    note_id = request.args.get('id', type=int)
    note = db.session.get(Note, note_id)
    if note is not None:
        note.words = len(note.text.split())
    record_run(note_id, note is not None)
    db.session.commit()
    return {'note': note_id, 'found': note is not None}


@blueprint.post('/tasks/remind')
@taskqueue.task_only
def send_reminder():
    record_run(None, False)
    db.session.commit()
    return {'reminded': user_name()}


def record_run(note_id: int | None, found: bool) -> None:
    task = current_task(request)
    db.session.add(TaskRun(task_id=task.id, attempt=task.attempt,
                           note_id=note_id, note_found=found,
                           user=user_name()))


@blueprint.get('/whoami')
def whoami():
    """Who the app thinks is asking, and the X-Task-* headers it sees."""
    return {'user': user_name(), 'task': current_task(request) is not None,
            'task_headers': {name: value
                             for name, value in request.headers.items()
                             if name.lower().startswith('x-task-')}}
