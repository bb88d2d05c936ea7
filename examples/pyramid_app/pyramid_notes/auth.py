"""HTTP Basic authentication against the users listed in the ini file.

Just enough to show a user travelling with a task; use a real
authentication middleware or Pyramid security policy in an app.  What
matters to the task queue: REMOTE_USER is set on the environ the
taskqueue filter (outside this one) also sees, before a view calls
``taskqueue.add``, so the task runs as the same user.
"""
from __future__ import annotations

import base64
import binascii
import hmac


def basic_credentials(environ) -> tuple[str, str] | None:
    """The (user, password) of a Basic Authorization header, if any."""
    scheme, _, encoded = environ.get('HTTP_AUTHORIZATION', '').partition(' ')
    if scheme.lower() != 'basic':
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode('utf-8')
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(':')
    return (user, password) if colon else None


class BasicAuth:
    """Sets REMOTE_USER for requests with a known user's credentials.

    A task comes with REMOTE_USER set already (the enqueuing user's): it
    is left as it is.
    """

    def __init__(self, app, users: dict[str, str]):
        self.app = app
        self.users = users

    def __call__(self, environ, start_response):
        credentials = basic_credentials(environ)
        if 'REMOTE_USER' not in environ and credentials is not None:
            user, password = credentials
            expected = self.users.get(user)
            if expected is not None and hmac.compare_digest(
                    expected.encode(), password.encode()):
                environ['REMOTE_USER'] = user
        return self.app(environ, start_response)


def filter_factory(global_conf, users: str = ''):
    """``users``: whitespace-separated ``name:password`` pairs."""
    table = dict(pair.split(':', 1) for pair in users.split())
    return lambda app: BasicAuth(app, table)
