"""The extensions, created once and initialised by ``create_app``."""
from flask_login import LoginManager

from wsgi_taskqueue.flask import TaskQueue

login_manager = LoginManager()
taskqueue = TaskQueue()
