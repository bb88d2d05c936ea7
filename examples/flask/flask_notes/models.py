"""The notes, and the runs of their tasks (what each task saw)."""
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class Note(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    #: Unique, so that writing it twice makes the commit fail.
    label: Mapped[str | None] = mapped_column(unique=True)
    author: Mapped[str | None]
    #: Filled in by the note's task.
    words: Mapped[int | None]


class TaskRun(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str]
    attempt: Mapped[int]
    #: The note it was queued for (None for a reminder).
    note_id: Mapped[int | None]
    note_found: Mapped[bool]
    #: Who Flask-Login says is logged in, from the copied session cookie.
    user: Mapped[str | None]
