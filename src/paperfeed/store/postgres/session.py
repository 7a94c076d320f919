"""Settings a statement of the PostgreSQL store needs, for its own transaction only."""

from __future__ import annotations

from typing import Any

import psycopg


def at_least(conn: psycopg.Connection[Any], name: str, size: str) -> None:
    """Raise the memory setting ``name`` (``work_mem``, ``maintenance_work_mem``) to
    ``size`` until the transaction ends; a server configured with more keeps its own."""
    conn.execute(
        "SELECT set_config(%s, %s, true) "
        "WHERE pg_size_bytes(current_setting(%s)) < pg_size_bytes(%s)",
        (name, size, name, size),
    )


__all__ = ["at_least"]
