"""Copy a SQLite store into PostgreSQL (``paperfeed migrate-store``), resumably, verified.

Rows keep their keys (paper pks, user ids, ...), so everything that points at them stays
true and the copy is idempotent by key: each table is read from SQLite in key order, in
batches, and each batch is written in one PostgreSQL transaction together with its row of
the ``store_copies`` ledger (the last key copied). A copy killed at any moment resumes
after the last committed batch; a batch that was written but not recorded cannot exist.
Vectors come from the SQLite store's vector files (every model and view under
``<data dir>/vectors``) into pgvector, recorded the same way per model. The keyword index
is rebuilt by the target (PostgreSQL has its own), identity sequences are moved past the
copied ids, and each model's vector index is built where it has enough vectors.

Verification compares, per table, the row counts and a checksum of the rows' content in
the target's types (dates, timestamps in UTC, JSON documents with sorted keys, booleans):
the sum of a hash per row, which does not depend on the order rows come back in (the two
databases collate text differently). Vectors are copied as the source index stored them
(not normalised again, which would round them twice) and compared as the float16 rows
PostgreSQL keeps. A mismatch names the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paperfeed.errors import PaperfeedError, StoreError
from paperfeed.store.rows import utc

if TYPE_CHECKING:
    import psycopg

    from paperfeed.store.postgres.store import PostgresStore

DEFAULT_BATCH_SIZE = 5000
VECTOR_ITEM = "vectors:"
_MOD = 1 << 128


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A copied table and its key (the copy order and resume point)."""

    name: str
    key: tuple[str, ...]


# Parents before children (foreign keys are checked as rows arrive).
COPIED_TABLES: tuple[TableSpec, ...] = (
    TableSpec("papers", ("pk",)),
    TableSpec("paper_keys", ("key", "paper_pk")),
    TableSpec("paper_sources", ("paper_pk", "source")),
    TableSpec("appearances", ("listing", "feed_date", "paper_pk")),
    TableSpec("quarantine", ("id",)),
    TableSpec("ingest_runs", ("id",)),
    TableSpec("index_settings", ("key",)),
    TableSpec("fetch_state", ("source", "key")),
    TableSpec("fetch_runs", ("id",)),
    TableSpec("users", ("id",)),
    TableSpec("sessions", ("token_hash",)),
    TableSpec("api_tokens", ("id",)),
    TableSpec("votes", ("user_id", "paper_pk")),
    TableSpec("collections", ("id",)),
    TableSpec("collection_items", ("collection_id", "paper_pk")),
    TableSpec("subscriptions", ("id",)),
    TableSpec("digest_runs", ("id",)),
    TableSpec("feedback", ("user_id", "tag", "paper_pk")),
    TableSpec("feedback_versions", ("user_id", "tag")),
    TableSpec("recommend_models", ("user_id", "tag")),
    TableSpec("topics", ("id",)),
    TableSpec("paper_topics", ("paper_pk", "topic_id")),
    TableSpec("map_layout", ("id",)),
    TableSpec("embeddings", ("model_id", "paper_pk")),
)

# Tables of a PostgreSQL store that are not copied row by row, and why.
NOT_COPIED: dict[str, str] = {
    "schema_migrations": "each store records its own migrations",
    "store_copies": "the ledger of this copy",
    "keyword_pending": "the target indexes the copied papers itself",
    "keyword_terms": "the target's own keyword index, built from the copied papers",
    "keyword_postings": "the target's own keyword index, built from the copied papers",
    "keyword_docs": "the target's own keyword index, built from the copied papers",
    "keyword_totals": "the target's own keyword index, built from the copied papers",
    "vector_models": "filled as the vectors are copied",
    "paper_vectors": "copied from the SQLite store's vector files",
    "login_failures": "the log-in rate limiter's memory of the last minutes",
}


@dataclass(slots=True)
class TableCheck:
    """One copied table (or one model's vectors, ``vectors:<model id>``)."""

    name: str
    copied: int = 0  # rows written by this run
    source_rows: int = 0
    target_rows: int = 0
    source_checksum: str = ""
    target_checksum: str = ""

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "copied": self.copied,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "source_checksum": self.source_checksum,
            "target_checksum": self.target_checksum,
            "ok": self.ok,
        }


@dataclass(slots=True)
class CopyReport:
    source: str
    target: str
    resumed: bool
    tables: list[TableCheck] = field(default_factory=list)
    keyword_indexed: int = 0

    @property
    def mismatched(self) -> list[str]:
        return [t.name for t in self.tables if not t.ok]

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "resumed": self.resumed,
            "ok": self.ok,
            "mismatched": self.mismatched,
            "keyword_indexed": self.keyword_indexed,
            "tables": [t.to_json() for t in self.tables],
        }


class CopyMismatch(StoreError):
    """The copy finished but a table differs between the two stores."""

    exit_code = 3


Progress = Callable[[str, int, int], None]


# -- canonical values: the same text for a value read from either database ----------------
def _canonical(value: Any, kind: str) -> object:
    if value is None or (kind == "date" and value == ""):
        return None
    if kind == "jsonb":
        doc = json.loads(value) if isinstance(value, str) else value
        return json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if kind == "date":
        day = dt.date.fromisoformat(value) if isinstance(value, str) else value
        return day.isoformat()
    if kind == "timestamp with time zone":
        return utc(value).isoformat(timespec="microseconds")
    if kind == "boolean":
        return bool(value)
    if kind == "bytea":
        return bytes(value).hex()
    if kind in ("double precision", "real"):
        return repr(float(value))
    if kind in ("integer", "bigint", "smallint"):
        return int(value)
    return str(value)


def _row_hash(values: Sequence[object]) -> int:
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest(), "big")


class _Checksum:
    """An order-independent checksum: the sum of 128-bit row hashes, and the count."""

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, h: int) -> None:
        self.total = (self.total + h) % _MOD
        self.rows += 1

    @property
    def hex(self) -> str:
        return f"{self.total:032x}"


# -- the copy --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    kind: str  # information_schema data_type of the target column


class StoreCopier:
    """Copies one SQLite store (``db_path``, vector files under ``vectors_dir``) into an
    open PostgreSQL store."""

    def __init__(
        self,
        db_path: Path,
        vectors_dir: Path,
        target: PostgresStore,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
    ) -> None:
        if batch_size < 1:
            raise PaperfeedError(f"--batch-size must be at least 1, got {batch_size}")
        self.db_path = db_path
        self.vectors_dir = vectors_dir
        self.target = target
        self.batch_size = batch_size
        self.progress = progress
        self.source_id = str(db_path.resolve())
        self._src = self._open_source(db_path)
        self._columns: dict[str, list[_Column]] = {}

    @staticmethod
    def _open_source(db_path: Path) -> sqlite3.Connection:
        if not db_path.is_file():
            raise StoreError(f"no SQLite store at {db_path} (pass the source with --data-dir)")
        # Opened (and migrated) as a store first, so its schema is the one this paperfeed
        # copies; then read through a read-only connection of our own.
        from paperfeed.store.sqlite import SQLiteStore

        SQLiteStore(db_path, create=False).close()
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        self._src.close()

    def __enter__(self) -> StoreCopier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------
    def _target_columns(self, conn: psycopg.Connection[Any], table: str) -> list[_Column]:
        if table not in self._columns:
            rows = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            target = [_Column(str(r[0]), str(r[1])) for r in rows]
            source = {r[1] for r in self._src.execute(f'PRAGMA table_info("{table}")')}
            names = {c.name for c in target}
            if not target or names != source:
                raise StoreError(
                    f"table {table} differs between the SQLite store ({sorted(source)}) and "
                    f"the PostgreSQL store ({sorted(names)}): are both at the same schema "
                    "version of the same paperfeed?"
                )
            self._columns[table] = target
        return self._columns[table]

    def uncovered_tables(self) -> list[str]:
        """Tables of the target neither copied nor listed in NOT_COPIED (a new table that
        this module has not been taught about)."""
        with self.target.pool.connection() as conn:
            names = {
                str(r[0])
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                )
            }
        known = {t.name for t in COPIED_TABLES} | set(NOT_COPIED)
        return sorted(names - known)

    # -- the ledger -----------------------------------------------------------------
    def _ledger(self) -> dict[str, tuple[Any, int, bool]]:
        with self.target.pool.connection() as conn:
            rows = conn.execute(
                "SELECT item, after_key, rows, done FROM store_copies WHERE source = %s",
                (self.source_id,),
            ).fetchall()
        return {str(r[0]): (r[1], int(r[2]), bool(r[3])) for r in rows}

    def _check_target(self) -> bool:
        """True when resuming a copy of this source; refuses any other non-empty target."""
        with self.target.pool.connection() as conn:
            others = conn.execute(
                "SELECT DISTINCT source FROM store_copies WHERE source <> %s", (self.source_id,)
            ).fetchall()
            if others:
                raise StoreError(
                    f"the PostgreSQL store {self.target.location} holds a copy of another "
                    f"store ({others[0][0]}); copy into an empty database"
                )
            mine = conn.execute(
                "SELECT COUNT(*) FROM store_copies WHERE source = %s", (self.source_id,)
            ).fetchone()
            if mine and int(mine[0]) > 0:
                return True
            for table in [t.name for t in COPIED_TABLES] + ["paper_vectors"]:
                row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
                if row and row[0]:
                    raise StoreError(
                        f"the PostgreSQL store {self.target.location} is not empty (table "
                        f"{table} has rows) and is not a partial copy of {self.source_id}; "
                        "copy into an empty database"
                    )
        return False

    # -- rows -----------------------------------------------------------------------
    def _source_count(self, table: str) -> int:
        row = self._src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def _source_batches(
        self, spec: TableSpec, columns: Sequence[_Column], after: Sequence[Any] | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        cols = ", ".join(c.name for c in columns)
        key = ", ".join(spec.key)
        at = [i for k in spec.key for i, c in enumerate(columns) if c.name == k]
        while True:
            if after is None:
                sql = f"SELECT {cols} FROM {spec.name} ORDER BY {key} LIMIT ?"
                params: list[Any] = [self.batch_size]
            else:
                marks = ", ".join("?" for _ in spec.key)
                sql = (
                    f"SELECT {cols} FROM {spec.name} WHERE ({key}) > ({marks}) "
                    f"ORDER BY {key} LIMIT ?"
                )
                params = [*after, self.batch_size]
            rows = self._src.execute(sql, params).fetchall()
            if not rows:
                return
            yield rows
            after = [rows[-1][i] for i in at]
            if len(rows) < self.batch_size:
                return

    @staticmethod
    def _as_text(value: Any, kind: str) -> Any:
        """A SQLite value as COPY text for the scratch table (bytea stays bytes)."""
        if value is None:
            return None
        if kind == "bytea":
            return bytes(value)
        if kind == "date" and value == "":
            return None
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def _copy_table(self, spec: TableSpec, state: tuple[Any, int, bool] | None) -> int:
        with self.target.pool.connection() as conn:
            columns = self._target_columns(conn, spec.name)
        if state is not None and state[2]:
            return 0
        after = state[0] if state is not None else None
        done = state[1] if state is not None else 0
        total = self._source_count(spec.name)
        self._report(spec.name, done, total)
        names = ", ".join(c.name for c in columns)
        scratch = ", ".join(f"{c.name} {'bytea' if c.kind == 'bytea' else 'text'}" for c in columns)
        casts = ", ".join(self._cast(c) for c in columns)
        key_at = [i for k in spec.key for i, c in enumerate(columns) if c.name == k]
        copied = 0
        for rows in self._source_batches(spec, columns, after):
            last_key = [rows[-1][i] for i in key_at]
            with self.target.pool.connection() as conn, conn.transaction():
                conn.execute(f"CREATE TEMP TABLE pf_incoming ({scratch}) ON COMMIT DROP")
                with conn.cursor() as cur, cur.copy(f"COPY pf_incoming ({names}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(
                            [self._as_text(v, c.kind) for v, c in zip(row, columns, strict=True)]
                        )
                conn.execute(
                    f"INSERT INTO {spec.name} ({names}) SELECT {casts} FROM pf_incoming "
                    "ON CONFLICT DO NOTHING"
                )
                self._record(conn, spec.name, last_key, len(rows), done=False)
            copied += len(rows)
            done += len(rows)
            self._report(spec.name, done, max(total, done))
        with self.target.pool.connection() as conn:
            self._record(conn, spec.name, None, 0, done=True)
        return copied

    @staticmethod
    def _cast(column: _Column) -> str:
        name, kind = column.name, column.kind
        if kind == "bytea":
            return name
        if kind == "date":
            return f"NULLIF({name}, '')::date"
        if kind == "timestamp with time zone":
            return f"{name}::timestamptz"
        if kind == "boolean":
            return f"{name}::integer::boolean"
        if kind in ("jsonb", "integer", "bigint", "smallint", "double precision", "real"):
            return f"{name}::{kind}"
        return name

    def _record(
        self,
        conn: psycopg.Connection[Any],
        item: str,
        last_key: Sequence[Any] | None,
        rows: int,
        *,
        done: bool,
    ) -> None:
        from psycopg.types.json import Jsonb

        now = dt.datetime.now(dt.UTC)
        conn.execute(
            "INSERT INTO store_copies (source, item, after_key, rows, done, started_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (source, item) DO UPDATE SET "
            "after_key = COALESCE(excluded.after_key, store_copies.after_key), "
            "rows = store_copies.rows + excluded.rows, "
            "done = excluded.done, updated_at = excluded.updated_at",
            (
                self.source_id,
                item,
                None if last_key is None else Jsonb(list(last_key)),
                rows,
                done,
                now,
                now,
            ),
        )

    def _report(self, item: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(item, done, total)

    # -- vectors ----------------------------------------------------------------------
    def vector_sources(self) -> list[tuple[str, int, Path]]:
        """(model id, dimension, directory) of every vector index beside the SQLite store."""
        from paperfeed.index.vectors import read_meta

        found = []
        if self.vectors_dir.is_dir():
            for directory in sorted(self.vectors_dir.iterdir()):
                meta = read_meta(directory) if directory.is_dir() else None
                if meta is not None:
                    found.append((meta.model_id, meta.dim, directory))
        return found

    def _copy_vectors(
        self, model_id: str, dim: int, directory: Path, state: tuple[Any, int, bool] | None
    ) -> int:
        from paperfeed.index.vectors import open_vector_index

        item = VECTOR_ITEM + model_id
        if state is not None and state[2]:
            return 0
        after = int(state[0][0]) if state is not None and state[0] else None
        done = state[1] if state is not None else 0
        source = open_vector_index(directory, model_id=model_id, dim=dim)
        keys = np.sort(source.keys())
        todo = keys if after is None else keys[keys > after]
        target = self.target.vector_index(model_id, dim)
        self._report(item, done, len(keys))
        copied = 0
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            target.copy_rows(chunk, source.get(chunk))
            # Recorded after the add's own transaction: a kill in between only re-adds
            # the same vectors (an upsert) on the next run.
            with self.target.pool.connection() as conn:
                self._record(conn, item, [int(chunk[-1])], len(chunk), done=False)
            copied += len(chunk)
            done += len(chunk)
            self._report(item, done, len(keys))
        target.save()  # builds the model's vector index once it holds enough vectors
        with self.target.pool.connection() as conn:
            self._record(conn, item, None, 0, done=True)
        return copied

    # -- finishing --------------------------------------------------------------------
    def _reset_sequences(self) -> None:
        with self.target.pool.connection() as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND is_identity = 'YES'"
            ).fetchall()
            for table, column in rows:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)",
                    (table, column),
                )

    # -- verification -----------------------------------------------------------------
    def verify_table(self, spec: TableSpec) -> TableCheck:
        with self.target.pool.connection() as conn:
            columns = self._target_columns(conn, spec.name)
        names = ", ".join(c.name for c in columns)
        kinds = [c.kind for c in columns]
        src, dst = _Checksum(), _Checksum()
        for row in self._src.execute(f"SELECT {names} FROM {spec.name}"):
            src.add(_row_hash([_canonical(v, k) for v, k in zip(row, kinds, strict=True)]))
        with (
            self.target.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="pf_verify") as cur,
        ):
            cur.itersize = self.batch_size
            cur.execute(f"SELECT {names} FROM {spec.name}")
            for row in cur:
                dst.add(_row_hash([_canonical(v, k) for v, k in zip(row, kinds, strict=True)]))
        return TableCheck(spec.name, 0, src.rows, dst.rows, src.hex, dst.hex)

    def verify_vectors(self, model_id: str, dim: int, directory: Path) -> TableCheck:
        from paperfeed.index.vectors import open_vector_index

        source = open_vector_index(directory, model_id=model_id, dim=dim)
        target = self.target.vector_index(model_id, dim)
        src, dst = _Checksum(), _Checksum()
        # The source's rows as `copy_rows` stores them (float16); the target's as stored.
        for index, sums in ((source, src), (target, dst)):
            keys = np.sort(index.keys())
            for start in range(0, len(keys), self.batch_size):
                chunk = keys[start : start + self.batch_size]
                got = index.get(chunk)
                rows = got.astype("<f2")
                for key, row in zip(chunk.tolist(), rows, strict=True):
                    digest = hashlib.blake2b(
                        int(key).to_bytes(8, "little", signed=True) + row.tobytes(),
                        digest_size=16,
                    ).digest()
                    sums.add(int.from_bytes(digest, "big"))
        return TableCheck(VECTOR_ITEM + model_id, 0, src.rows, dst.rows, src.hex, dst.hex)

    # -- all of it ----------------------------------------------------------------------
    def run(self) -> CopyReport:
        uncovered = self.uncovered_tables()
        if uncovered:
            raise StoreError(
                f"migrate-store does not know how to copy table(s) {', '.join(uncovered)}; "
                "this is a bug of paperfeed"
            )
        resumed = self._check_target()
        ledger = self._ledger()
        report = CopyReport(self.source_id, self.target.location, resumed)
        copied: dict[str, int] = {}
        for spec in COPIED_TABLES:
            copied[spec.name] = self._copy_table(spec, ledger.get(spec.name))
        vectors = self.vector_sources()
        for model_id, dim, directory in vectors:
            item = VECTOR_ITEM + model_id
            copied[item] = self._copy_vectors(model_id, dim, directory, ledger.get(item))
        self._reset_sequences()
        report.keyword_indexed = self.target.refresh_keyword_index(
            progress=lambda done, total: self._report("keyword index", done, total),
            batch_size=self.batch_size,
        )
        for spec in COPIED_TABLES:
            self._report(f"verify {spec.name}", 0, 1)
            check = self.verify_table(spec)
            check.copied = copied.get(spec.name, 0)
            report.tables.append(check)
            self._report(f"verify {spec.name}", 1, 1)
        for model_id, dim, directory in vectors:
            check = self.verify_vectors(model_id, dim, directory)
            check.copied = copied.get(check.name, 0)
            report.tables.append(check)
        return report


def migrate_store(
    db_path: Path,
    vectors_dir: Path,
    target: PostgresStore,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy the SQLite store at ``db_path`` (vectors under ``vectors_dir``) into ``target``;
    the report says per table what was copied and whether counts and checksums agree."""
    with StoreCopier(
        db_path, vectors_dir, target, batch_size=batch_size, progress=progress
    ) as copier:
        return copier.run()
