"""HTTP Basic authentication against the users of the ``auth.users``
setting.

Just enough to show a user travelling with a task; use a real
authentication middleware or Pyramid security policy in an app.  What
matters to the task queue: REMOTE_USER is set on the environ before a view
calls ``taskqueue.add``, so the task runs as the same user.
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


def parse_users(users: str) -> dict[str, str]:
    """``users``: whitespace-separated ``name:password`` pairs."""
    return dict(pair.split(':', 1) for pair in users.split())
