"""PyMySQL's TLS context, built once per process instead of per connection.

Without TLS options PyMySQL (1.1.2 and later) prefers TLS: every new
connection builds a default SSL context, loading the system's CA
certificates, about 20 ms of CPU.  A consumer that retries while the
database is down connects again and again, so that cost, not the retry
itself, made an outage expensive.  The context PyMySQL would build for
"preferred" is the same every time, and an ``SSLContext`` may be shared
by connections and threads, so it is built once.  Explicit TLS options
(``?ssl_ca=…`` and the like) still get a context of their own.
"""
from __future__ import annotations

import sqlalchemy as sa

__all__ = ['share_preferred_tls_context']


def share_preferred_tls_context(engine) -> None:
    """Have ``engine`` (on PyMySQL) open its connections with one shared
    context for PyMySQL's preferred TLS mode."""
    import pymysql.connections

    preferred = []  # the engine's one context (two racing threads may
    # each build one: harmless)

    class Connection(pymysql.connections.Connection):
        def _create_ssl_ctx(self, sslp):
            if sslp:
                return super()._create_ssl_ctx(sslp)
            if not preferred:
                preferred.append(super()._create_ssl_ctx(sslp))
            return preferred[0]

    @sa.event.listens_for(engine, 'do_connect')
    def connect(_dialect, _record, cargs, cparams):
        return Connection(*cargs, **cparams)
