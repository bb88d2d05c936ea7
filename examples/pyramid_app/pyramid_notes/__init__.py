"""A Pyramid app whose requests write rows and queue tasks in one transaction.

pyramid_tm runs each request in a transaction of the thread-local
``transaction.manager`` (its default manager), which the zope.sqlalchemy
sessions and ``taskqueue.add`` both join: a note and the task that
processes it commit or abort together.  ``config.include('wsgi_taskqueue')``
reads the queues and consumers from the ``taskqueue.*`` settings.
"""
from pyramid.config import Configurator

from . import auth, models


def main(global_config, **settings):
    """``paste.app_factory`` (``use = call:pyramid_notes:main``)."""
    sessions = models.session_factory(settings)
    config = Configurator(settings=settings)
    config.include('pyramid_tm')
    # Queues and consumers from the settings, the task=True predicate.
    config.include('wsgi_taskqueue')
    config.add_request_method(
        lambda request: models.request_session(sessions, request),
        'dbsession', reify=True)
    config.add_route('notes', '/notes')
    config.add_route('fail', '/notes/fail')
    config.add_route('process', r'/notes/{id:\d+}/process')
    config.add_route('whoami', '/whoami')
    config.scan('.views')
    return auth.BasicAuth(config.make_wsgi_app(),
                          auth.parse_users(settings.get('auth.users', '')))
