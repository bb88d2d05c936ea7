"""Logging in with Flask-Login: the session cookie says who is logged in,
and a task, which carries a copy of it, runs as the same user."""
from flask import Blueprint, abort, current_app, request
from flask_login import UserMixin, login_user, logout_user

from .extensions import login_manager

blueprint = Blueprint('auth', __name__)


class User(UserMixin):
    def __init__(self, name: str):
        self.id = name


@login_manager.user_loader
def load_user(name: str):
    return User(name) if name in current_app.config['USERS'] else None


@blueprint.post('/login')
def login():
    name = request.form.get('name', '')
    if current_app.config['USERS'].get(name) != request.form.get('password'):
        abort(403)
    login_user(User(name))
    return {'user': name}


@blueprint.post('/logout')
def logout():
    logout_user()
    return {'user': None}
