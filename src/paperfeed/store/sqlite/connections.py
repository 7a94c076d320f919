"""What the SQLite store's mixins share: its connections and its write transaction.

:class:`~paperfeed.store.sqlite.store.SQLiteStore` owns the connections; the mixins
(accounts, recommendations) declare them here and write through :meth:`_tx`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from paperfeed.model import Paper


class SQLiteConnections:
    # Provided by SQLiteStore.
    _lock: threading.RLock
    _writer: sqlite3.Connection
    _reader: Callable[[], sqlite3.Connection]
    _resolve_pk: Callable[[sqlite3.Connection, str], int | None]
    _rows_to_papers: Callable[[sqlite3.Connection, Sequence[Any]], list[Paper]]

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the writer, under the writer lock."""
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
