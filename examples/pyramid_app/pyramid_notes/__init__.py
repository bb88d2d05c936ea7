"""A Pyramid app whose requests write rows and queue tasks in one transaction.

pyramid_tm runs each request in a transaction of the thread-local
``transaction.manager`` (its default manager), which the zope.sqlalchemy
sessions and ``taskqueue.add`` both join: a note and the task that
processes it commit or abort together.
"""
from pyramid.config import Configurator

from . import models


def main(global_config, **settings):
    """``paste.app_factory`` (``use = call:pyramid_notes:main``)."""
    sessions = models.session_factory(settings)
    config = Configurator(settings=settings)
    config.include('pyramid_tm')
    config.include('wsgi_taskqueue.guard')  # the task=True view predicate
    config.add_request_method(
        lambda request: models.request_session(sessions, request),
        'dbsession', reify=True)
    config.add_route('notes', '/notes')
    config.add_route('fail', '/notes/fail')
    config.add_route('process', r'/notes/{id:\d+}/process')
    config.add_route('whoami', '/whoami')
    config.scan('.views')
    return config.make_wsgi_app()
