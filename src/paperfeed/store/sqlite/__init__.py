"""The SQLite backend (the embedded default)."""

from paperfeed.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
