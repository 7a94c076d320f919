"""Storage: the only package that opens database connections or store files.

:func:`open_store` is the factory every face uses; backends live in subpackages.
"""

from __future__ import annotations

from paperfeed.settings import Settings
from paperfeed.store.base import (
    BatchResult,
    EmbeddingJob,
    IncomingRecord,
    IncomingRejection,
    PaperQuery,
    SearchFilters,
    Store,
)


def open_store(settings: Settings, *, create: bool = True) -> Store:
    """Open (and migrate) the store the settings point at; ``create=False`` refuses to make one.

    ``settings.database_url`` (``PAPERFEED_DATABASE_URL``) selects PostgreSQL, else SQLite.
    """
    if settings.database_url:
        from paperfeed.store.postgres import open_postgres_store

        return open_postgres_store(settings.database_url, create=create)
    from paperfeed.store.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path, create=create)


__all__ = [
    "BatchResult",
    "EmbeddingJob",
    "IncomingRecord",
    "IncomingRejection",
    "PaperQuery",
    "SearchFilters",
    "Store",
    "open_store",
]
