"""``paperfeed bench`` on the PostgreSQL backend: the corpus of each size in a database.

Each size gets its own database on the server, ``paperfeed_bench_<N>``, built through the
store as an ingest and ``paperfeed index`` would (``write_batch``, then
``refresh_keyword_index``; the vectors through the store's pgvector index, whose ``save``
builds its IVFFlat index, or an HNSW graph for ``--index hnsw``). The build record (the
inputs and the build times) is kept in the database itself (setting ``bench.build``), so a
re-run against the same server reuses a database whose record matches and rebuilds one
that does not (or that someone changed).

The server's own memory is not the serving process's: :func:`server_processes` finds
the server's processes (when it runs on this machine) for :func:`server_memory`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from paperfeed.bench.embedded_postgres import create_database
from paperfeed.errors import PaperfeedError
from paperfeed.settings import Settings

if TYPE_CHECKING:
    import psutil

    from paperfeed.store import Store
    from paperfeed.store.postgres.store import PostgresStore

BUILD_SETTING = "bench.build"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def database_name(papers: int) -> str:
    return f"paperfeed_bench_{papers}"


def vectors_model_id(base: str, kind: str) -> str:
    """One model id per index kind: their vectors (and indexes) live side by side."""
    return base if kind == "auto" else f"{base}-{kind}"


@dataclass(frozen=True, slots=True)
class PgSizeStore:
    """The database of one size and what was built in it (the ``bench.build`` record)."""

    url: str
    settings: Settings
    record: dict[str, Any]


def open_size_database(
    admin_url: str, papers: int, inputs: dict[str, Any], data_dir: Path
) -> PgSizeStore:
    """The size's database, (re)created empty unless its build record has these inputs."""
    from paperfeed.store import open_store

    name = database_name(papers)
    url = create_database(admin_url, name)
    settings = Settings(data_dir=data_dir, database_url=url)
    with open_store(settings) as store:
        raw = store.get_setting(BUILD_SETTING)
    try:
        record: dict[str, Any] = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    if {k: record.get(k) for k in inputs} != inputs:
        # Built from other inputs, half built, or not a bench database: start afresh.
        url = create_database(admin_url, name, replace=True)
        settings = Settings(data_dir=data_dir, database_url=url)
        record = dict(inputs)
        with open_store(settings) as store:
            save_record(store, record)
    return PgSizeStore(url=url, settings=settings, record=record)


def save_record(store: Store, record: dict[str, Any]) -> None:
    store.set_setting(BUILD_SETTING, json.dumps(record, sort_keys=True))


def add_vectors(
    store: Store,
    model_id: str,
    kind: str,
    keys: Any,
    vectors: Any,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 50_000,
) -> str:
    """Add the vectors to the store's pgvector index and build it as the kind says
    (:func:`index_method`); returns what the index is: ``pgvector ivfflat``, ``pgvector
    hnsw`` or ``pgvector exact scan``."""
    import numpy as np

    from paperfeed.store.postgres.store import PostgresStore
    from paperfeed.store.postgres.vectors import HNSW, PgVectorIndex

    if not isinstance(store, PostgresStore):
        raise PaperfeedError("the PostgreSQL bench needs a PostgreSQL store")
    dim = int(vectors.shape[1])
    index = (
        PgVectorIndex(store, model_id=model_id, dim=dim, build_threshold=1, method=HNSW)
        if kind == "hnsw"
        else store.vector_index(model_id, dim)
    )
    n = len(keys)
    for a in range(0, n, batch):
        index.add(keys[a : a + batch], np.asarray(vectors[a : a + batch]))
        if progress is not None:
            progress(min(a + batch, n), n)
    if kind != "exact":
        index.save()
    built = index.built
    return f"pgvector {built.method}" if built is not None else "pgvector exact scan"


def index_method(kind: str) -> str:
    """The pgvector index a bench index kind builds: ``auto`` and ``ivf`` production's
    (IVFFlat from 10,000 vectors on), ``hnsw`` an HNSW graph at any size, ``exact`` none."""
    from paperfeed.store.postgres.vectors import DEFAULT_METHOD, HNSW

    return {"auto": DEFAULT_METHOD, "ivf": DEFAULT_METHOD, "hnsw": HNSW}.get(kind, "none")


def drop_vectors(store: Store, model_id: str) -> None:
    """Delete the model's vectors and their index (to add other vectors)."""
    from paperfeed.store.postgres.vectors import drop_model_vectors

    with _postgres(store).pool.connection() as conn, conn.transaction():
        drop_model_vectors(conn, model_id)


def _postgres(store: Store) -> PostgresStore:
    from paperfeed.store.postgres.store import PostgresStore

    if not isinstance(store, PostgresStore):
        raise PaperfeedError("the PostgreSQL bench needs a PostgreSQL store")
    return store


def sizes_mb(store: Store, model_id: str) -> tuple[float, float]:
    """(store, vectors) on disk in MiB: the vectors are the model's share of the
    ``paper_vectors`` table plus its index; the store is the rest of the database."""
    usage = _postgres(store).disk_usage(model_id)
    return usage.store_bytes / 2**20, usage.vectors_bytes / 2**20


def server_info(store: Store, url: str, embedded: bool) -> dict[str, str]:
    """The server's version, pgvector's, its memory settings, and where it runs."""
    settings = _postgres(store).server_settings()
    host = urlsplit(url).hostname or "a local socket"
    return {
        "postgresql": settings.postgresql,
        "pgvector": settings.pgvector,
        "shared_buffers": settings.shared_buffers,
        "work_mem": settings.work_mem,
        "server": "embedded-postgres, started for this run on loopback"
        if embedded
        else f"existing server at {host}",
    }


def server_processes(store: Store, url: str) -> list[psutil.Process]:
    """The server's processes (postmaster and its children) when it runs on this machine
    and we may see them; else an empty list."""
    import psutil

    from paperfeed.store.postgres.store import PostgresStore

    host = urlsplit(url).hostname
    if not isinstance(store, PostgresStore) or (host and host not in LOCAL_HOSTS):
        return []
    try:
        backend = psutil.Process(store.backend_pid())
        postmaster = backend.parent()
        if postmaster is None or "postgres" not in postmaster.name():
            return []  # a port forwarded elsewhere: that pid is not the server's
        return [postmaster, *postmaster.children(recursive=True)]
    except psutil.Error:
        return []


def server_memory(processes: list[psutil.Process]) -> float | None:
    """The server's memory in MiB: the proportional set size (PSS) summed over its
    processes, so that shared buffers mapped by every process count once."""
    import psutil

    if not processes:
        return None
    total = 0.0
    try:
        children = processes[0].children(recursive=True)  # backends come and go
        for proc in [processes[0], *children]:
            try:
                total += proc.memory_full_info().pss
            except psutil.NoSuchProcess:
                continue
    except psutil.Error:
        return None
    return total / 2**20


__all__ = [
    "PgSizeStore",
    "add_vectors",
    "database_name",
    "open_size_database",
    "save_record",
    "server_info",
    "server_memory",
    "server_processes",
    "sizes_mb",
    "vectors_model_id",
]
