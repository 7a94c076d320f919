"""The PostgreSQL backend (for a team: one database server, many workers).

Needs the ``postgres`` extra (psycopg 3 and its pool) and a server with pgvector; the
driver is imported only when a PostgreSQL store is opened, so SQLite users never need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paperfeed.errors import StoreError

if TYPE_CHECKING:
    from paperfeed.store.postgres.store import PostgresStore

EXTRA_HINT = "pip install 'paperfeed[postgres]'"


def open_postgres_store(url: str, *, create: bool = True) -> PostgresStore:
    """Open (and migrate) the PostgreSQL store at ``url`` (a postgresql:// URL)."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            f"a PostgreSQL store needs the postgres extra ({exc.name} is missing): {EXTRA_HINT}"
        ) from None
    from paperfeed.store.postgres.store import PostgresStore

    return PostgresStore(url, create=create)


__all__ = ["EXTRA_HINT", "open_postgres_store"]
