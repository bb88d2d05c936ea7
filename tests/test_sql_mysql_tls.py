"""PyMySQL's preferred-TLS context: built once per engine, not once per
connection (it loads the system's CA certificates: the CPU a consumer
retrying through a MariaDB outage spent)."""
import ssl

from conftest import empty_sql_queue


def test_connections_share_one_preferred_tls_context(mariadb_url):
    queue = empty_sql_queue(mariadb_url)
    try:
        engine = queue.store.engine
        first, second = engine.raw_connection(), engine.raw_connection()
        try:
            contexts = {id(c.dbapi_connection.ctx) for c in (first, second)}
            assert isinstance(first.dbapi_connection.ctx, ssl.SSLContext)
            assert first.dbapi_connection is not second.dbapi_connection
            assert len(contexts) == 1
        finally:
            first.close()
            second.close()
    finally:
        queue.close()

