"""Who may use the management app: the holders of its API key.

Programs send the key in a header, ``X-API-Key: KEY`` or ``Authorization:
Bearer KEY``.  A browser following a link cannot send a header, so the
dashboard also takes the key once in its URL (``?key=KEY``), answers with a
session cookie (HttpOnly, SameSite=Strict, signed with the key, valid for
``SESSION_TTL``) and redirects to the URL without the key.

A request authenticated by that cookie that changes something must carry
the session's CSRF token in ``X-CSRF-Token`` (the dashboard page holds it);
one with the key in a header needs none, since a browser never adds that
header by itself.  Keys are compared in constant time.  Without valid
credentials every path answers the same 404, so nothing says there is
anything to guess.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import time

__all__ = ['Guard', 'Access', 'SESSION_COOKIE', 'SESSION_TTL', 'CSRF_HEADER',
           'MIN_KEY_LENGTH']

SESSION_COOKIE = 'wsgi_taskqueue_session'
#: A working day: a dashboard left open overnight asks for the key again.
SESSION_TTL = 12 * 3600
CSRF_HEADER = 'X-CSRF-Token'
SAFE_METHODS = frozenset(['GET', 'HEAD', 'OPTIONS'])
#: Nothing stops a caller from guessing keys as fast as the app answers
#: (rate limiting is a proxy's job): a key this long, if random, is not
#: guessed.  Shorter keys are refused when the app is made.
MIN_KEY_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class Access:
    """How a request proved it holds the key."""

    #: 'header' or 'session'.
    via: str
    #: The session's CSRF token (sessions only).
    csrf_token: str | None = None

    def may(self, request) -> bool:
        """May this request act?  Unsafe methods on a session need the
        session's CSRF token."""
        if self.via != 'session' or request.method in SAFE_METHODS:
            return True
        sent = request.headers.get(CSRF_HEADER, '')
        return hmac.compare_digest(sent.encode('latin-1', 'replace'),
                                   self.csrf_token.encode())


class Guard:
    """Checks credentials against one API key; see the module docstring."""

    def __init__(self, api_key: str):
        if not isinstance(api_key, str):
            raise ValueError('the management API key must be a string')
        if len(api_key.strip()) < MIN_KEY_LENGTH:
            raise ValueError(
                f'the management API key must be at least {MIN_KEY_LENGTH} '
                f'characters long, not {len(api_key.strip())}: a long random '
                f'string, such as `python -c "import secrets; '
                f'print(secrets.token_urlsafe())"` prints')
        self._key = api_key.encode()
        # Candidates are compared as HMACs under a random key: equal-length
        # digests, so not even the key's length leaks through timing.
        self._blind = os.urandom(32)
        self._expected = self._blinded(self._key)

    def check(self, request) -> Access | None:
        """The request's access, or None (answer 404)."""
        key = request.headers.get('X-API-Key')
        if key is None:
            scheme, _, value = request.headers.get(
                'Authorization', '').partition(' ')
            if scheme.lower() == 'bearer':
                key = value.strip()
        if key is not None:
            # Explicit credentials that are wrong are not rescued by a
            # cookie: the caller meant those.
            return Access('header') if self.matches(key) else None
        nonce = self._session_nonce(request.cookies.get(SESSION_COOKIE))
        if nonce is not None:
            return Access('session', self._sign('csrf', nonce))
        return None

    def matches(self, candidate: str) -> bool:
        raw = candidate.encode('utf-8', 'surrogatepass')
        return hmac.compare_digest(self._blinded(raw), self._expected)

    def new_session(self) -> str:
        """A cookie value: issue time, nonce and their HMAC."""
        payload = f'{int(time.time())}.{os.urandom(16).hex()}'
        return f'{payload}.{self._sign("session", payload)}'

    def _session_nonce(self, value: str | None) -> str | None:
        if not value or value.count('.') != 2:
            return None
        payload, _, mac = value.rpartition('.')
        if not hmac.compare_digest(mac.encode('latin-1', 'replace'),
                                   self._sign('session', payload).encode()):
            return None
        issued, _, nonce = payload.partition('.')
        try:
            age = time.time() - int(issued)
        except ValueError:
            return None
        return nonce if -60 < age < SESSION_TTL else None

    def _sign(self, purpose: str, text: str) -> str:
        return hmac.new(self._key, f'{purpose}:{text}'.encode(),
                        hashlib.sha256).hexdigest()

    def _blinded(self, raw: bytes) -> bytes:
        return hmac.new(self._blind, raw, hashlib.sha256).digest()
