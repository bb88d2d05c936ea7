"""Write notes and queue their tasks; the task; writes that fail."""
from __future__ import annotations

from pyramid.httpexceptions import HTTPBadRequest
from pyramid.view import view_config

from wsgi_taskqueue import current_task, is_task, taskqueue

from .auth import basic_credentials
from .models import Note, TaskRun

#: Bounds one request's transaction.
MAX_COUNT = 1000


class WriteFailed(Exception):
    """Raised after notes were written and their tasks queued: pyramid_tm
    aborts the transaction, so neither the notes nor the tasks exist."""

    def __init__(self, task_ids: list[str]):
        super().__init__('failed on purpose after writing')
        self.task_ids = task_ids


def write_notes(request) -> dict:
    """Add ``count`` notes with ``text``, and queue a task for each, in
    the request's transaction."""
    try:
        count = int(request.params.get('count', '1'))
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        raise HTTPBadRequest(f'count must be a number from 1 to {MAX_COUNT}')
    notes = [Note(text=request.params.get('text', ''),
                  author=request.remote_user) for _ in range(count)]
    request.dbsession.add_all(notes)
    request.dbsession.flush()  # assigns the ids the task URLs need
    # payload=None: the task needs only the note's id, not this form.
    tasks = [taskqueue.add(f'/notes/{note.id}/process', method='POST',
                           payload=None)
             for note in notes]
    return {'notes': [note.id for note in notes], 'tasks': tasks}


@view_config(route_name='notes', request_method='GET', renderer='json')
def list_notes(request):
    return [{'id': note.id, 'text': note.text, 'author': note.author,
             'words': note.words}
            for note in request.dbsession.query(Note).order_by(Note.id)]


@view_config(route_name='notes', request_method='POST', renderer='json')
def add_notes(request):
    return write_notes(request)


@view_config(route_name='fail', request_method='POST', renderer='json')
def add_notes_then_fail(request):
    """Write and queue, then fail as ``how`` says: ``raise`` an exception
    (an error response) or ``doom`` the transaction (a normal response).
    Either way the transaction aborts."""
    written = write_notes(request)
    if request.params.get('how') == 'doom':
        request.tm.doom()
        return dict(written, doomed=True)
    raise WriteFailed(written['tasks'])


@view_config(context=WriteFailed, renderer='json')
def write_failed(exc, request):
    """An exception view: pyramid_tm still aborts the transaction."""
    request.response.status = 500
    return {'error': str(exc), 'tasks': exc.task_ids}


@view_config(route_name='process', request_method='POST', task=True,
             renderer='json')
def process_note(request):
    """The task of a note: count its words; record what the task saw.

    ``task=True``: only the consumer reaches this view, a request from the
    network gets a 404.
    """
    task = current_task(request)
    note_id = int(request.matchdict['id'])
    note = request.dbsession.get(Note, note_id)
    if note is not None:
        note.words = len(note.text.split())
    credentials = basic_credentials(request.environ)
    request.dbsession.add(TaskRun(
        task_id=task.id, attempt=task.attempt, note_id=note_id,
        note_found=note is not None, remote_user=request.remote_user,
        authorization_user=credentials[0] if credentials else None,
        lang=request.cookies.get('lang')))
    return {'note': note_id, 'found': note is not None}


@view_config(route_name='whoami', renderer='json')
def whoami(request):
    """Who the app thinks is asking, and the X-Task-* headers it sees."""
    return {'remote_user': request.remote_user, 'task': is_task(request),
            'task_headers': {name: value
                             for name, value in request.headers.items()
                             if name.lower().startswith('x-task-')}}
