"""What a PostgreSQL store can say about its server and its size (for ``paperfeed bench``).

Kept in the storage layer, which owns every connection: the bench asks, never queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from paperfeed.errors import StoreError
from paperfeed.store.postgres.vectors import index_name


@dataclass(frozen=True, slots=True)
class ServerSettings:
    postgresql: str
    pgvector: str
    shared_buffers: str
    work_mem: str


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Bytes on disk: the vectors of one model (its share of ``paper_vectors`` plus its
    index) and the rest of the database."""

    store_bytes: float
    vectors_bytes: float


def _one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise StoreError(f"the server answered nothing to: {sql[:60]}")
    return row


def server_settings(pool: ConnectionPool[psycopg.Connection[Any]]) -> ServerSettings:
    with pool.connection() as conn:
        row = _one(
            conn,
            "SELECT current_setting('server_version'), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "current_setting('shared_buffers'), current_setting('work_mem')",
        )
    return ServerSettings(str(row[0]), str(row[1]), str(row[2]), str(row[3]))


def disk_usage(pool: ConnectionPool[psycopg.Connection[Any]], model_id: str) -> DiskUsage:
    with pool.connection() as conn:
        database, vectors_total, table, all_vectors, ours, model = _one(
            conn,
            "SELECT pg_database_size(current_database()), pg_total_relation_size('paper_vectors'),"
            " pg_table_size('paper_vectors'),"
            " (SELECT COALESCE(SUM(vectors), 0) FROM vector_models),"
            " (SELECT vectors FROM vector_models WHERE model_id = %s),"
            " (SELECT id FROM vector_models WHERE model_id = %s)",
            (model_id, model_id),
        )
        graph = 0
        if model is not None:
            found = _one(
                conn, "SELECT pg_relation_size(to_regclass(%s))", (index_name(int(model)),)
            )
            graph = int(found[0] or 0)
    # SUM() comes back as numeric (Decimal): floats from here on.
    share = float(ours or 0) / float(all_vectors) if all_vectors else 0.0
    return DiskUsage(float(database - vectors_total), float(table) * share + graph)


def backend_pid(pool: ConnectionPool[psycopg.Connection[Any]]) -> int:
    """The server process serving one of the pool's connections."""
    with pool.connection() as conn:
        return int(_one(conn, "SELECT pg_backend_pid()")[0])
