"""The vector index of a PostgreSQL store: pgvector, in the database itself.

Same interface and behaviour as the file indexes (:mod:`paperfeed.index.vectors`), so
``paperfeed.index.semantic`` and the search engine use it unchanged; only where vectors
live differs. Each model's vectors are rows of ``paper_vectors`` (float16 ``halfvec``, the
precision of the file HNSW index's matrix); every worker process sees the same vectors,
and an ``add`` is visible to all of them once it returns (there is nothing to save).

Search: below ``build_threshold`` vectors the database scores every vector of the model
exactly. From there on, ``save`` builds a partial index for the model on
``(embedding::halfvec(dim))`` (unit vectors, so inner product = cosine), and searches
take ``CANDIDATES_FACTOR × k`` candidates from it, rescored exactly here (ties by key, as
everywhere). A filtered search with few allowed keys scores them exactly; with many,
pgvector's iterative index scan keeps looking until enough pass.

The index is IVFFlat by default, HNSW on request (``method``); stores with an HNSW index
from before keep it and are searched through it. Measured at 1,000,000 vectors drawn
like real MiniLM embeddings (docs/postgres.md), pgvector's HNSW found at most 0.914 of
the true top 10 (``ef_search`` 1,000, its maximum, 31 ms p95; 0.673 at the default 100),
with ``m`` 32 or ``ef_construction`` 128 no better, and took 14 minutes to build; IVFFlat
with 1,000 lists finds 0.968 probing 20 of them (23 ms p95) and builds in 79 s. Its lists
are k-means clusters of the vectors present at build time, so ``save`` rebuilds it once
the model has grown enough to want twice as many lists.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from paperfeed.errors import NotFoundError
from paperfeed.index.vectors import (
    AUTO_EXACT_LIMIT,
    IndexMeta,
    Keys,
    Kind,
    Matrix,
    VectorHit,
    VectorIndex,
    VectorIndexError,
    as_keys,
    as_unit_rows,
    check_k,
    dot_rows,
    hits,
    model_slug,
    rank,
)
from paperfeed.store.postgres.session import at_least

if TYPE_CHECKING:
    from paperfeed.store.postgres.store import PostgresStore

IVFFLAT = "ivfflat"
HNSW = "hnsw"
METHODS = (IVFFLAT, HNSW)
DEFAULT_METHOD = IVFFLAT  # why: see the module's docstring
# IVFFlat: pgvector's advice for the number of lists (rows / 1,000 up to a million rows,
# their square root beyond), at least IVF_MIN_LISTS; a search probes IVF_PROBE_FRACTION of
# them, at least IVF_MIN_PROBES and at most half: past that the planner drops the index
# for a scan of every vector (10,000 vectors, 10 lists: 5 probes 7.6 ms, 9 probes 41 ms).
# Recall@10 follows the number of lists probed more than their share, on the bench's
# vectors (drawn like real MiniLM embeddings): 20 probes give 0.968 of 1,000 lists at 1M
# and 0.969 of 100 at 100,000; 10 probes 0.937 and 0.939 (docs/postgres.md).
IVF_MIN_LISTS = 10
IVF_PROBE_FRACTION = 0.02
IVF_MIN_PROBES = 20
# Rebuilt once the lists it would have now are this many times those it was built with.
IVF_REBUILD_GROWTH = 2
IVF_DEFAULT_LISTS = 100  # pgvector's, for an index made without the option
# A filtered search through IVFFlat probes further lists until enough rows pass, up to
# MAX_SCAN_TUPLES rows' worth (lists hold about 1,000 rows each).
IVF_ROWS_PER_LIST = 1000
# HNSW parameters. m and ef_construction are pgvector's defaults; ef_search and the
# candidate factor were chosen with benchmarks/pgvector_recall.py (clustered 384-d unit
# vectors): see docs/postgres.md for the measured recall.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH_MIN = 100
EF_SEARCH_MAX = 1000  # pgvector's upper bound
CANDIDATES_FACTOR = 4
# Up to this many allowed keys, a filtered search scores them all exactly.
ALLOWED_EXACT_MAX = 20_000
# pgvector's iterative scan stops after this many tuples (HNSW; its default is 20,000),
# or lists of IVF_ROWS_PER_LIST (IVFFlat).
MAX_SCAN_TUPLES = 50_000
BUILD_MAINTENANCE_WORK_MEM = "1GB"
INDEX_RECHECK_SECONDS = 5.0
# How often a process looks again at an index it has seen (another may have rebuilt it).
INDEX_REFRESH_SECONDS = 60.0
# The advisory lock every index build holds: one build at a time on the table. Two builds
# at once deadlock: each holds the table in SHARE mode while it builds, then needs more
# for ANALYZE or the swap.
BUILD_LOCK = 0x7061706572_04


def _decode(blobs: Sequence[bytes], dim: int) -> Matrix:
    """halfvec_send output (int16 dim, int16 unused, dim big-endian float16) as float32 rows."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=">f2").reshape(len(blobs), dim + 2)
    out: Matrix = raw[:, 2:].astype(np.float32)
    return out


def _copy_payload(model: int, keys: Keys, rows: Matrix) -> bytes:
    """A binary COPY stream of (model, paper_pk, embedding halfvec) rows."""
    dim = rows.shape[1]
    layout = np.dtype(
        [
            ("fields", ">i2"),
            ("model_len", ">i4"),
            ("model", ">i4"),
            ("key_len", ">i4"),
            ("key", ">i8"),
            ("vector_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vector", ">f2", (dim,)),
        ]
    )
    out = np.zeros(len(keys), dtype=layout)
    out["fields"] = 3
    out["model_len"], out["model"] = 4, model
    out["key_len"], out["key"] = 8, keys
    out["vector_len"], out["dim"] = 4 + 2 * dim, dim
    out["vector"] = rows
    return _COPY_HEADER + out.tobytes() + _COPY_TRAILER


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def index_name(model: int) -> str:
    # The name predates IVFFlat; kept so that stores indexed before find their index.
    return f"paper_vectors_hnsw_{model}"


def ivf_lists(rows: int) -> int:
    """pgvector's advice: rows / 1,000 up to a million rows, then their square root."""
    wanted = rows // 1000 if rows <= 1_000_000 else math.isqrt(rows)
    return max(IVF_MIN_LISTS, wanted)


def ivf_probes(lists: int) -> int:
    wanted = max(IVF_MIN_PROBES, math.ceil(lists * IVF_PROBE_FRACTION))
    return max(1, min(lists // 2, wanted))


@dataclass(frozen=True, slots=True)
class BuiltIndex:
    """A model's index as the catalog has it: its method and, for IVFFlat, its lists;
    whether the server's pgvector can scan it iteratively (filtered searches)."""

    method: str
    lists: int = 0
    iterative: bool = True


def read_built(conn: psycopg.Connection[Any], model: int) -> BuiltIndex | None:
    """The model's index as the catalog has it now; None if it has none."""
    row = conn.execute(
        "SELECT am.amname, c.reloptions, "
        "(SELECT extversion FROM pg_extension WHERE extname = 'vector') FROM pg_class c "
        "JOIN pg_am am ON am.oid = c.relam WHERE c.oid = to_regclass(%s)",
        (index_name(model),),
    ).fetchone()
    if row is None:
        return None
    method = str(row[0])
    options = dict(str(o).split("=", 1) for o in row[1] or ())
    # An IVFFlat index made by hand without the option has pgvector's default, 100.
    lists = int(options.get("lists", IVF_DEFAULT_LISTS)) if method == IVFFLAT else 0
    return BuiltIndex(method, lists, iterative_scans(str(row[2] or "")))


def iterative_scans(pgvector_version: str) -> bool:
    """pgvector 0.8 added iterative index scans (``hnsw.iterative_scan``,
    ``ivfflat.iterative_scan``); 0.7 refuses the settings."""
    parts = []
    for piece in pgvector_version.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts) >= (0, 8)


def drop_model_vectors(conn: psycopg.Connection[Any], model_id: str) -> int:
    """Delete a model's vectors and its index (inside the caller's transaction)."""
    row = conn.execute(
        "SELECT id FROM vector_models WHERE model_id = %s FOR UPDATE", (model_id,)
    ).fetchone()
    if row is None:
        return 0
    model = int(row[0])
    cur = conn.execute("DELETE FROM paper_vectors WHERE model = %s", (model,))
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(model))))
    conn.execute("UPDATE vector_models SET vectors = 0, updated = now() WHERE id = %s", (model,))
    return int(cur.rowcount)


class PgVectorIndex(VectorIndex):
    """One model's vectors in a PostgreSQL store (open it with ``store.vector_index``)."""

    kind: ClassVar[Kind] = "ivfflat"

    def __init__(
        self,
        store: PostgresStore,
        *,
        model_id: str,
        dim: int,
        build_threshold: int = AUTO_EXACT_LIMIT,
        method: str = DEFAULT_METHOD,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise VectorIndexError(f"dimension must be a positive integer, got {dim!r}")
        if method not in METHODS:
            raise VectorIndexError(f"unknown index method {method!r}; valid: {', '.join(METHODS)}")
        self._method = method
        self._store = store
        self._model_id = model_id
        self._dim = dim
        self._build_threshold = build_threshold
        with store.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO vector_models (model_id, dim) VALUES (%s, %s) "
                "ON CONFLICT (model_id) DO NOTHING",
                (model_id, dim),
            )
            row = conn.execute(
                "SELECT id, dim, created FROM vector_models WHERE model_id = %s", (model_id,)
            ).fetchone()
        assert row is not None
        if int(row[1]) != dim:
            raise VectorIndexError(
                f"the store {store.location} holds vectors of model {model_id!r} with "
                f"dimension {row[1]}, not {dim}; re-embed under another model id instead "
                "of mixing them"
            )
        self._model = int(row[0])
        self._built: BuiltIndex | None = None
        self._built_checked = -INDEX_REFRESH_SECONDS
        self._created = row[2].astimezone(dt.UTC).isoformat(timespec="seconds")
        m = sql.Literal(self._model)
        halfvec = sql.SQL("halfvec({})").format(sql.Literal(dim))
        self._sql_where = sql.SQL("model = {}").format(m)
        # The indexed expression; a query must repeat it (and the model literal) exactly
        # for the planner to use the partial index.
        self._sql_indexed = sql.SQL("(embedding::{})").format(halfvec)
        self._sql_query = sql.SQL("%s::{}").format(halfvec)

    # -- not a directory ---------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, *, model_id: str, dim: int) -> Self:
        raise VectorIndexError(
            "a PostgreSQL vector index lives in its store: open it with "
            "store.vector_index(model_id, dim)"
        )

    @classmethod
    def open(cls, directory: Path, *, model_id: str, dim: int) -> Self:
        return cls.create(directory, model_id=model_id, dim=dim)

    @property
    def directory(self) -> Path:
        """Not a directory: the table and model, for messages."""
        return Path("paper_vectors") / model_slug(self._model_id)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def indexed(self) -> bool:
        """Whether the model has its index yet (else searches are exact)."""
        return self.built is not None

    @property
    def built(self) -> BuiltIndex | None:
        """The model's index (method, lists), from the catalog.

        Looked up again after a few seconds while there is none (another process may build
        it) and after a minute once there is (another may rebuild it). Once seen, an index
        dropped meanwhile leaves searches exact through the indexed expression.
        """
        now = time.monotonic()
        wait = INDEX_REFRESH_SECONDS if self._built is not None else INDEX_RECHECK_SECONDS
        if now - self._built_checked < wait:
            return self._built
        with self._store.pool.connection() as conn:
            found = read_built(conn, self._model)
        self._built_checked = now
        if found is not None:  # else not yet, or dropped after we saw it
            self._built = found
        return self._built

    @property
    def meta(self) -> IndexMeta:
        with self._store.pool.connection() as conn:
            row = conn.execute(
                "SELECT vm.vectors, vm.updated, e.extversion, current_setting('server_version') "
                "FROM vector_models vm, pg_extension e "
                "WHERE vm.id = %s AND e.extname = 'vector'",
                (self._model,),
            ).fetchone()
        assert row is not None
        count = int(row[0])
        built = self.built
        method = built.method if built is not None else self._method
        parameters: dict[str, Any] = {"method": method}
        if method == HNSW:
            parameters |= {
                "m": HNSW_M,
                "ef_construction": HNSW_EF_CONSTRUCTION,
                "ef_search_min": EF_SEARCH_MIN,
            }
        else:
            lists = built.lists if built is not None else ivf_lists(count)
            parameters |= {"lists": lists, "probes": ivf_probes(lists)}
        return IndexMeta(
            kind="hnsw" if method == HNSW else "ivfflat",
            model_id=self._model_id,
            dim=self._dim,
            library={"pgvector": str(row[2]), "postgresql": str(row[3])},
            storage="postgresql halfvec",
            parameters=parameters
            | {
                "candidates_factor": CANDIDATES_FACTOR,
                "build_threshold": self._build_threshold,
                "indexed": built is not None,
            },
            count=count,
            rows=count,
            created=self._created,
            updated=row[1].astimezone(dt.UTC).isoformat(timespec="seconds"),
        )

    # -- writes --------------------------------------------------------------------------
    def add(self, keys: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        self._upsert(as_keys(keys), as_unit_rows(vectors, self._dim))

    def copy_rows(self, keys: npt.ArrayLike, rows: npt.ArrayLike) -> None:
        """Add rows exactly as another index stored them (``migrate-store``).

        They are unit vectors to that index's precision already; normalising them again
        would round each a second time (an HNSW index's float16 rows by up to one float16
        step), and the migrated store would score papers differently from its source.
        """
        self._upsert(as_keys(keys), as_unit_rows(rows, self._dim, "rows", normalise=False))

    def _upsert(self, wanted: Keys, rows: Matrix) -> None:
        if len(wanted) != len(rows):
            raise VectorIndexError(f"{len(wanted)} keys but {len(rows)} vectors")
        if len(wanted) == 0:
            return
        # The last vector given for a key wins, as in the file indexes.
        last: dict[int, int] = {int(k): i for i, k in enumerate(wanted.tolist())}
        unique = np.fromiter(last, dtype=np.int64, count=len(last))
        picked = rows[np.fromiter(last.values(), dtype=np.int64, count=len(last))]
        with self._store.pool.connection() as conn, conn.transaction():
            self._lock_model(conn)
            # Binary COPY into a scratch table, then one upsert: ~50x faster than rows of
            # text, which the server would parse number by number.
            conn.execute(
                "CREATE TEMP TABLE incoming_vectors (model INTEGER, paper_pk BIGINT, "
                "embedding halfvec) ON COMMIT DROP"
            )
            with (
                conn.cursor() as cur,
                cur.copy("COPY incoming_vectors FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.write(_copy_payload(self._model, unique, picked))
            existing = conn.execute(
                sql.SQL(
                    "SELECT COUNT(*) FROM paper_vectors v JOIN incoming_vectors i "
                    "ON i.paper_pk = v.paper_pk WHERE v.{}"
                ).format(self._sql_where)
            ).fetchone()
            conn.execute(
                "INSERT INTO paper_vectors (model, paper_pk, embedding) "
                "SELECT model, paper_pk, embedding FROM incoming_vectors "
                "ON CONFLICT (model, paper_pk) DO UPDATE SET embedding = excluded.embedding"
            )
            added = len(unique) - (int(existing[0]) if existing else 0)
            conn.execute(
                "UPDATE vector_models SET vectors = vectors + %s, updated = now() WHERE id = %s",
                (added, self._model),
            )

    def remove(self, keys: npt.ArrayLike) -> int:
        wanted = np.unique(as_keys(keys))
        if len(wanted) == 0:
            return 0
        with self._store.pool.connection() as conn, conn.transaction():
            self._lock_model(conn)
            cur = conn.execute(
                sql.SQL("DELETE FROM paper_vectors WHERE {} AND paper_pk = ANY(%s)").format(
                    self._sql_where
                ),
                (wanted.tolist(),),
            )
            removed = int(cur.rowcount)
            conn.execute(
                "UPDATE vector_models SET vectors = vectors - %s, updated = now() WHERE id = %s",
                (removed, self._model),
            )
        return removed

    def _lock_model(self, conn: psycopg.Connection[Any]) -> None:
        # Writers of one model take turns, so the vector count stays exact.
        conn.execute("SELECT 1 FROM vector_models WHERE id = %s FOR UPDATE", (self._model,))

    def save(self) -> None:
        """Nothing to write (adds are committed): see :meth:`tend`."""
        self.tend()

    def tend(self) -> None:
        """Builds the model's index once it is worth it, and rebuilds an IVFFlat index the
        model has outgrown."""
        count = len(self)
        if count >= max(self._build_threshold, 1):
            with self._store.pool.connection() as conn:
                # Most calls (every save of an embedding run) find nothing to do: only a
                # build waits for the lock, and reads again under it (another process may
                # have built the index meanwhile).
                if self._needs_build(read_built(conn, self._model), count):
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (BUILD_LOCK,))
                        built = read_built(conn, self._model)
                        if self._needs_build(built, count):
                            self._build(conn, count, replace=built is not None)
        self._built_checked = -INDEX_REFRESH_SECONDS  # look again at the next search

    def _needs_build(self, built: BuiltIndex | None, count: int) -> bool:
        if built is None:
            return True
        return built.method == IVFFLAT and ivf_lists(count) >= IVF_REBUILD_GROWTH * built.lists

    def _build(self, conn: psycopg.Connection[Any], count: int, *, replace: bool) -> None:
        """Build the index (``replace``: an IVFFlat index the model has outgrown)."""
        name = index_name(self._model)
        method = IVFFLAT if replace else self._method
        # A rebuild builds the new index beside the old one (searches go on through the
        # old one; writes to the table wait), then swaps them: only the swap, at the end,
        # blocks searches.
        target = f"{name}_next" if replace else name
        if method == HNSW:
            using = sql.SQL("hnsw ({} halfvec_ip_ops) WITH (m = {}, ef_construction = {})").format(
                self._sql_indexed, sql.Literal(HNSW_M), sql.Literal(HNSW_EF_CONSTRUCTION)
            )
        else:
            using = sql.SQL("ivfflat ({} halfvec_ip_ops) WITH (lists = {})").format(
                self._sql_indexed, sql.Literal(ivf_lists(count))
            )
        if replace:  # a leftover of an interrupted rebuild
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(target)))
        conn.execute("SELECT set_config('statement_timeout', '0', true)")
        # At least this much, so that an HNSW graph is built in memory (pgvector falls back
        # to a far slower on-disk build); a server configured with more keeps its own.
        at_least(conn, "maintenance_work_mem", BUILD_MAINTENANCE_WORK_MEM)
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON paper_vectors USING {} WHERE {}").format(
                sql.Identifier(target), using, self._sql_where
            )
        )
        conn.execute("ANALYZE paper_vectors")
        if replace:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(target), sql.Identifier(name)
                )
            )

    # -- reads ---------------------------------------------------------------------------
    def _query_vector(self, query: npt.ArrayLike) -> npt.NDArray[np.float32]:
        q = as_unit_rows(query, self._dim, what="query")
        if q.shape[0] != 1:
            raise VectorIndexError(f"query must be one vector of {self._dim} values")
        first: npt.NDArray[np.float32] = q[0]
        return first

    def search(
        self, query: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | None = None
    ) -> list[VectorHit]:
        q, k = self._query_vector(query), check_k(k)
        allowed_keys: list[int] | None = None
        if allowed is not None:
            allowed_keys = np.unique(as_keys(allowed, "allowed")).tolist()
            if not allowed_keys:
                return []
        built = self.built
        # A filter through the index needs pgvector's iterative scan (0.8): without it the
        # index hands over its nearest rows and the filter may leave fewer than k of them.
        exact = built is None or (
            allowed_keys is not None
            and (len(allowed_keys) <= ALLOWED_EXACT_MAX or not built.iterative)
        )
        fetch = k + 16 if exact else CANDIDATES_FACTOR * k
        filter_sql = sql.SQL(" AND paper_pk = ANY(%s)") if allowed_keys is not None else sql.SQL("")
        distance = (
            sql.SQL("embedding <#> %s::halfvec")
            if exact
            else sql.SQL("{} <#> {}").format(self._sql_indexed, self._sql_query)
        )
        statement = sql.SQL(
            "SELECT paper_pk, halfvec_send(embedding) FROM paper_vectors WHERE {}{} "
            "ORDER BY {}, paper_pk LIMIT %s"
            if exact
            else "SELECT paper_pk, halfvec_send(embedding) FROM paper_vectors WHERE {}{} "
            "ORDER BY {} LIMIT %s"
        ).format(self._sql_where, filter_sql, distance)
        params: list[Any] = [*([allowed_keys] if allowed_keys is not None else []), q.tolist()]
        params.append(fetch)
        with self._store.pool.connection() as conn, conn.transaction():
            if built is not None and not exact:
                self._search_settings(conn, built, fetch, filtered=allowed_keys is not None)
            found = conn.execute(statement, params).fetchall()
        if not found and not exact and allowed_keys is not None:
            # Nothing passed the filter within the scan limit: score the allowed keys.
            return self._exact_allowed(q, k, allowed_keys)
        return self._rescore(found, q, k)

    @staticmethod
    def _search_settings(
        conn: psycopg.Connection[Any], built: BuiltIndex, fetch: int, *, filtered: bool
    ) -> None:
        """How far the index looks, for this transaction. Both methods' settings: another
        process may have replaced the index since this one last looked."""
        ef_search = min(EF_SEARCH_MAX, max(EF_SEARCH_MIN, fetch))
        probes = ivf_probes(built.lists) if built.method == IVFFLAT else IVF_MIN_PROBES
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('ivfflat.probes', %s, true)",
            (str(ef_search), str(probes)),
        )
        if filtered:
            # Look further until enough rows pass the filter, within a bound.
            max_probes = max(probes, MAX_SCAN_TUPLES // IVF_ROWS_PER_LIST)
            conn.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.max_scan_tuples', %s, true), "
                "set_config('ivfflat.iterative_scan', 'relaxed_order', true), "
                "set_config('ivfflat.max_probes', %s, true)",
                (str(MAX_SCAN_TUPLES), str(max_probes)),
            )

    def _exact_allowed(
        self, q: npt.NDArray[np.float32], k: int, allowed_keys: list[int]
    ) -> list[VectorHit]:
        with self._store.pool.connection() as conn:
            found = conn.execute(
                sql.SQL(
                    "SELECT paper_pk, halfvec_send(embedding) FROM paper_vectors "
                    "WHERE {} AND paper_pk = ANY(%s) ORDER BY embedding <#> %s::halfvec, "
                    "paper_pk LIMIT %s"
                ).format(self._sql_where),
                (allowed_keys, q.tolist(), k + 16),
            ).fetchall()
        return self._rescore(found, q, k)

    def _rescore(
        self, found: Sequence[tuple[Any, ...]], q: npt.NDArray[np.float32], k: int
    ) -> list[VectorHit]:
        if not found:
            return []
        keys: Keys = np.asarray([int(r[0]) for r in found], dtype=np.int64)
        matrix = _decode([bytes(r[1]) for r in found], self._dim)
        scores, ranked = rank(dot_rows(matrix, q), keys, k)
        return hits(scores, ranked)

    def search_batch(self, queries: npt.ArrayLike, k: int) -> list[list[VectorHit]]:
        rows = as_unit_rows(queries, self._dim, what="queries")
        return [self.search(row, k) for row in rows]

    def get(self, keys: npt.ArrayLike) -> Matrix:
        wanted = as_keys(keys)
        if len(wanted) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._store.pool.connection() as conn:
            found = conn.execute(
                sql.SQL(
                    "SELECT paper_pk, halfvec_send(embedding) FROM paper_vectors "
                    "WHERE {} AND paper_pk = ANY(%s)"
                ).format(self._sql_where),
                (np.unique(wanted).tolist(),),
            ).fetchall()
        at = {int(r[0]): i for i, r in enumerate(found)}
        missing = [int(k) for k in wanted.tolist() if int(k) not in at]
        if missing:
            raise NotFoundError(
                f"no vector stored for key(s) {missing[:5]} of model {self._model_id!r} "
                f"in {self._store.location}"
            )
        matrix = _decode([bytes(r[1]) for r in found], self._dim)
        out: Matrix = matrix[[at[int(k)] for k in wanted.tolist()]]
        return out

    def contains(self, keys: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        wanted = as_keys(keys)
        if len(wanted) == 0:
            return np.zeros(0, dtype=np.bool_)
        with self._store.pool.connection() as conn:
            present = [
                int(r[0])
                for r in conn.execute(
                    sql.SQL(
                        "SELECT paper_pk FROM paper_vectors WHERE {} AND paper_pk = ANY(%s)"
                    ).format(self._sql_where),
                    (np.unique(wanted).tolist(),),
                )
            ]
        out: npt.NDArray[np.bool_] = np.isin(wanted, np.asarray(present, dtype=np.int64))
        return out

    def keys(self) -> Keys:
        with self._store.pool.connection() as conn:
            rows = conn.execute(
                sql.SQL("SELECT paper_pk FROM paper_vectors WHERE {} ORDER BY paper_pk").format(
                    self._sql_where
                )
            ).fetchall()
        return np.asarray([int(r[0]) for r in rows], dtype=np.int64)

    def __len__(self) -> int:
        with self._store.pool.connection() as conn:
            row = conn.execute(
                "SELECT vectors FROM vector_models WHERE id = %s", (self._model,)
            ).fetchone()
        return int(row[0]) if row else 0


__all__ = ["PgVectorIndex", "drop_model_vectors", "index_name"]
