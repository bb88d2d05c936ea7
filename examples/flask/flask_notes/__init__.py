"""A Flask app whose views write rows and queue tasks, committed together
by ``db.session.commit()``.

Settings (``app.config``, or ``FLASK_*`` environment variables, whose
values are JSON: ``FLASK_TASKQUEUE_QUEUES='{"default": {"type": "redis",
"url": "redis://127.0.0.1:6379/0", "secret": "change-me"}}'``):

* ``SQLALCHEMY_DATABASE_URI``: the notes; SQLite in the instance folder
  by default;
* ``TASKQUEUE_QUEUES``: an in-process queue by default (nothing to run);
* ``TASKQUEUE_CONSUMERS``: two consumer threads in the serving process by
  default; ``{}`` for a web-only process whose tasks
  ``flask taskqueue worker`` runs;
* ``USERS``: ``{name: password}`` of the login form.
"""
from flask import Flask

from .extensions import login_manager, taskqueue
from .models import db


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY='dev',  # sign the session cookie; use your own
        SQLALCHEMY_DATABASE_URI='sqlite:///notes.sqlite',
        TASKQUEUE_QUEUES={'default': {'type': 'local'}},
        TASKQUEUE_CONSUMERS={'worker': {'concurrent_limit': 2}},
        USERS={'alice': 'wonderland', 'bob': 'builder'},
    )
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)

    db.init_app(app)
    login_manager.init_app(app)
    taskqueue.init_app(app, db=db)

    from . import auth, views
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(views.blueprint)

    with app.app_context():
        db.create_all()
    return app
