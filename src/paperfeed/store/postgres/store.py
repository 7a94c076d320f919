"""The shared store: PostgreSQL through psycopg 3 and a connection pool.

Concurrency model: every call borrows a connection from the pool (autocommit; a write is
one explicit transaction), so threads and processes (several web workers, a background
embedder) use the database side by side. Merging a batch of records into papers reads
identities and then writes them, so batches are serialized across every process by a
transaction-level advisory lock; reads never wait for it. Migrations are applied on open
under a session advisory lock, so two processes opening a new database at once apply
each migration once.

The schema mirrors the SQLite one (same numbered migrations, same meaning); what differs
is what PostgreSQL does better: typed dates and JSONB, the keyword index as BM25
postings in tables that score like SQLite's tantivy index
(:mod:`paperfeed.store.postgres.keyword_index`, :mod:`paperfeed.store.postgres.keyword`)
and the vectors in the database (:mod:`paperfeed.store.postgres.vectors`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from paperfeed.errors import StoreError
from paperfeed.ids import normalize_doi, parse_arxiv_id, title_key
from paperfeed.index.keyword_query import KeywordQuery
from paperfeed.index.keyword_terms import Analysis
from paperfeed.merge import content_hash, merge_papers
from paperfeed.model import (
    Appearance,
    IngestReport,
    Links,
    Paper,
    QuarantinedRecord,
    StoreStats,
)
from paperfeed.store.base import (
    BatchResult,
    EmbeddingJob,
    FeedRow,
    FetchRun,
    FetchState,
    IncomingRecord,
    IncomingRejection,
    JobLease,
    PaperQuery,
    SearchFilters,
    Store,
)
from paperfeed.store.migrations import Migration, load_migrations
from paperfeed.store.postgres import server_stats
from paperfeed.store.postgres.accounts import PostgresAccounts
from paperfeed.store.postgres.keyword import KeywordSearch
from paperfeed.store.postgres.keyword_index import index_batch
from paperfeed.store.postgres.recommend import PostgresRecommend
from paperfeed.store.postgres.server_stats import DiskUsage, ServerSettings
from paperfeed.store.sqlite.store import identity_keys

if TYPE_CHECKING:
    from paperfeed.store.postgres.vectors import PgVectorIndex

MIGRATIONS_PACKAGE = "paperfeed.store.postgres.migrations"
_PAPER_COLUMNS = (
    "pk, id, title, abstract, authors, categories, arxiv_id, doi, published, updated, "
    "links, upvotes, first_seen, content_hash"
)
_P_PAPER_COLUMNS = "p." + _PAPER_COLUMNS.replace(", ", ", p.")
# Advisory lock keys (any constant 64-bit numbers, the same in every paperfeed process).
MIGRATE_LOCK = 0x7061706572_01
WRITE_LOCK = 0x7061706572_02
POOL_MAX_SIZE = 8
CONNECT_TIMEOUT = 10.0
# A limit on every statement, so a stuck query cannot hold a worker forever; long
# maintenance (index builds) lifts it for its own transaction.
STATEMENT_TIMEOUT = "300s"
# A keyword refresh that indexed this many papers vacuums the keyword tables after it.
VACUUM_AFTER = 20_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _int(row: tuple[Any, ...] | None) -> int:
    """The first column of a one-row aggregate (COUNT, RETURNING id)."""
    if row is None:
        raise StoreError("the database returned no row where one was expected")
    return int(row[0])


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def safe_location(conninfo: str) -> str:
    """The connection string without its password, for messages and ``Store.location``."""
    if "://" in conninfo:
        parts = urlsplit(conninfo)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, "", ""))
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "postgresql://(unreadable connection string)"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


class PostgresStore(PostgresAccounts, PostgresRecommend, Store):
    def __init__(self, conninfo: str, *, create: bool = True, max_size: int = POOL_MAX_SIZE):
        self._conninfo = conninfo
        self._location = safe_location(conninfo)
        self._closed = False
        self._lock = threading.Lock()
        self._local = threading.local()
        try:
            with psycopg.connect(
                conninfo, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT)
            ) as conn:
                self._configure(conn)
                self._migrate(conn, load_migrations(MIGRATIONS_PACKAGE), create=create)
        except psycopg.OperationalError as exc:
            raise StoreError(
                f"cannot open the PostgreSQL store at {self._location}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}"
            ) from None
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot open the PostgreSQL store at {self._location}: {exc}"
            ) from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            name="paperfeed",
            timeout=CONNECT_TIMEOUT,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(
                f"cannot open the PostgreSQL store at {self._location}: no connection "
                f"within {CONNECT_TIMEOUT:g} s"
            ) from None

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "SELECT set_config('TimeZone', 'UTC', false), "
            "set_config('statement_timeout', %s, false)",
            (STATEMENT_TIMEOUT,),
        )

    # -- connections -----------------------------------------------------------------
    def _conn(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        if self._closed:
            raise StoreError("the store is closed")
        return self._pool.connection()

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """The connection pool (for the vector index and tools of this backend)."""
        if self._closed:
            raise StoreError("the store is closed")
        return self._pool

    def server_settings(self) -> ServerSettings:
        """The server's version, pgvector's, and its memory settings."""
        return server_stats.server_settings(self._pool)

    def disk_usage(self, model_id: str) -> DiskUsage:
        """Bytes on disk of one model's vectors and of the rest of the database."""
        return server_stats.disk_usage(self._pool, model_id)

    def backend_pid(self) -> int:
        return server_stats.backend_pid(self._pool)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close()

    @property
    def location(self) -> str:
        return self._location

    # -- migrations ------------------------------------------------------------------
    def _migrate(
        self, conn: psycopg.Connection[Any], migrations: list[Migration], *, create: bool
    ) -> None:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            if exists is None or exists[0] is None:
                if not create:
                    raise StoreError(
                        f"no paperfeed store in the database {self._location}; run "
                        "'paperfeed init' with PAPERFEED_DATABASE_URL set to create it"
                    )
                conn.execute(
                    "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                )
            current = self._version(conn)
            if current > len(migrations):
                raise StoreError(
                    f"the store at {self._location} has schema version {current}, newer "
                    f"than this paperfeed knows ({len(migrations)}); upgrade paperfeed"
                )
            for mig in migrations[current:]:
                try:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, applied_at) "
                            "VALUES (%s, %s, %s)",
                            (mig.version, mig.name, _now()),
                        )
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise StoreError(
                        f"migration {mig.version:04d}_{mig.name} of the store at "
                        f"{self._location} needs a privilege this user lacks ({exc}); "
                        "see docs/postgres.md (pgvector: a superuser runs "
                        "'CREATE EXTENSION vector' once in this database)"
                    ) from None
                except psycopg.errors.FeatureNotSupported as exc:
                    raise StoreError(f"the server cannot hold a paperfeed store: {exc}") from None
                except psycopg.errors.UndefinedFile as exc:
                    raise StoreError(
                        f"the server lacks an extension paperfeed needs ({exc}); install "
                        "pgvector >= 0.7 on it (see docs/postgres.md)"
                    ) from None
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    def schema_version(self) -> int:
        with self._conn() as conn:
            return self._version(conn)

    # -- writes ----------------------------------------------------------------------
    def write_batch(
        self, records: Sequence[IncomingRecord], rejections: Sequence[IncomingRejection]
    ) -> BatchResult:
        counts = {"added": 0, "merged": 0, "unchanged": 0, "appearances": 0}
        now = _now()
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            batch = _Batch(conn, [title_key(r.paper.title) for r in records], records)
            for record, title_hash in zip(records, batch.title_hashes, strict=True):
                self._upsert(conn, batch, record, title_hash, now, counts)
            with conn.cursor() as cur:
                if batch.key_rows:
                    cur.executemany(
                        "INSERT INTO paper_keys (key, paper_pk) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING",
                        batch.key_rows,
                    )
                source_rows = [
                    (pk, src, now) for pk, srcs in batch.new_sources.items() for src in srcs
                ]
                if source_rows:
                    cur.executemany(
                        "INSERT INTO paper_sources (paper_pk, source, first_seen) "
                        "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        source_rows,
                    )
                if rejections:
                    cur.executemany(
                        "INSERT INTO quarantine "
                        "(source, listing, path, locator, reason, raw, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [
                            (r.source, r.listing, r.path, r.locator, r.reason, r.raw, now)
                            for r in rejections
                        ],
                    )
        return BatchResult(quarantined=len(rejections), **counts)

    def _upsert(
        self,
        conn: psycopg.Connection[Any],
        batch: _Batch,
        record: IncomingRecord,
        title_hash: str,
        now: dt.datetime,
        counts: dict[str, int],
    ) -> None:
        paper = record.paper
        pk = batch.find(paper, title_hash)
        if pk is None:
            paper_id = paper.id
            values = (*self._content_values(paper), now, now, content_hash(paper))
            suffix = 1
            while True:
                row = conn.execute(
                    "INSERT INTO papers (id, title, abstract, authors, categories, arxiv_id, "
                    "doi, published, updated, links, upvotes, first_seen, changed_at, "
                    "content_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s, %s) ON CONFLICT (id) DO NOTHING RETURNING pk",
                    (paper_id, *values),
                ).fetchone()
                if row is not None:
                    break
                # A title hash already taken by a different paper with the same title.
                suffix += 1
                paper_id = f"{paper.id}-{suffix}"
            pk = int(row[0])
            keys = identity_keys(paper, title_hash)
            if paper_id != paper.id:
                keys.append(paper_id)
            counts["added"] += 1
            batch.remember(pk, paper, keys)
            batch.add_sources(pk, paper.sources)
        else:
            stored, old_hash = self._load(conn, pk)
            known_sources = set(stored.sources) | batch.new_sources.get(pk, set())
            merged = merge_papers(stored, paper)
            new_hash = content_hash(merged)
            new_sources = [s for s in paper.sources if s not in known_sources]
            if new_hash != old_hash:
                conn.execute(
                    "UPDATE papers SET id = %s, title = %s, abstract = %s, authors = %s, "
                    "categories = %s, arxiv_id = %s, doi = %s, published = %s, updated = %s, "
                    "links = %s, upvotes = %s, changed_at = %s, content_hash = %s "
                    "WHERE pk = %s",
                    (merged.id, *self._content_values(merged), now, new_hash, pk),
                )
                counts["merged"] += 1
            elif new_sources:
                counts["merged"] += 1
            else:
                counts["unchanged"] += 1
            keys = identity_keys(merged) + identity_keys(paper, title_hash)
            if stored.id != merged.id and stored.id.startswith(("doi:", "title:")):
                keys.append(stored.id)
            batch.remember(pk, merged, keys)
            batch.add_sources(pk, new_sources)
        entry = record.entry
        if entry is not None:
            key = (entry.listing, entry.feed_date, pk)
            cur = conn.execute(
                "INSERT INTO appearances (listing, feed_date, paper_pk, rank, source) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT appearances_key "
                "DO NOTHING",
                (*key, entry.rank, paper.sources[0] if paper.sources else ""),
            )
            if cur.rowcount == 1:
                counts["appearances"] += 1
            elif entry.rank is not None:
                conn.execute(
                    "UPDATE appearances SET rank = %s WHERE listing = %s "
                    "AND feed_date IS NOT DISTINCT FROM %s::date AND paper_pk = %s "
                    "AND rank IS DISTINCT FROM %s",
                    (entry.rank, *key, entry.rank),
                )

    @staticmethod
    def _content_values(paper: Paper) -> tuple[object, ...]:
        return (
            paper.title,
            paper.abstract,
            Jsonb(list(paper.authors)),
            Jsonb(list(paper.categories)),
            paper.arxiv_id,
            paper.doi,
            paper.published,
            paper.updated,
            Jsonb(paper.links.as_dict()),
            paper.upvotes,
        )

    def _load(self, conn: psycopg.Connection[Any], pk: int) -> tuple[Paper, str]:
        row = conn.execute(f"SELECT {_PAPER_COLUMNS} FROM papers WHERE pk = %s", (pk,)).fetchone()
        assert row is not None  # pk comes from paper_keys, whose rows cascade with papers
        return self._rows_to_papers(conn, [row])[0], str(row[13])

    def _rows_to_papers(self, conn: psycopg.Connection[Any], rows: Sequence[Any]) -> list[Paper]:
        if not rows:
            return []
        sources: dict[int, list[str]] = {}
        for pk, source in conn.execute(
            "SELECT paper_pk, source FROM paper_sources WHERE paper_pk = ANY(%s) "
            "ORDER BY first_seen, source",
            ([int(r[0]) for r in rows],),
        ):
            sources.setdefault(int(pk), []).append(source)
        return [
            Paper(
                id=r[1],
                title=r[2],
                abstract=r[3],
                authors=tuple(r[4]),
                categories=tuple(r[5]),
                arxiv_id=r[6],
                doi=r[7],
                published=r[8],
                updated=r[9],
                links=Links(**r[10]),
                upvotes=r[11],
                sources=tuple(sources.get(int(r[0]), ())),
                first_seen=_utc(r[12]),
            )
            for r in rows
        ]

    def start_ingest_run(self, path: str, fmt: str) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "INSERT INTO ingest_runs (path, format, started_at, status) "
                "VALUES (%s, %s, %s, 'running') RETURNING id",
                (path, fmt, _now()),
            ).fetchone()
            return _int(row)

    def finish_ingest_run(self, run_id: int, report: IngestReport, status: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE ingest_runs SET finished_at = %s, status = %s, added = %s, "
                "merged = %s, unchanged = %s, quarantined = %s, appearances = %s "
                "WHERE id = %s",
                (
                    _now(),
                    status,
                    report.added,
                    report.merged,
                    report.unchanged,
                    report.quarantined,
                    report.appearances,
                    run_id,
                ),
            )

    def refresh_keyword_index(
        self, *, progress: Callable[[int, int], None] | None = None, batch_size: int = 5000
    ) -> int:
        total = self.keyword_index_pending()
        done = 0
        analysis = self._analysis()
        while True:
            with self._conn() as conn:
                n = index_batch(conn, analysis, batch_size)
            if not n:
                break
            done += n
            if progress is not None:
                progress(done, max(total, done))
        if done >= VACUUM_AFTER:
            with self._conn() as conn:
                # Marks the new postings' pages all-visible (index-only scans) and gives
                # the planner fresh statistics; autovacuum would, but later. Maintenance:
                # no statement time limit (a million papers take minutes).
                conn.execute("SET statement_timeout = 0")
                try:
                    if done * 4 >= self._indexed_papers(conn):
                        # A bulk load (a quarter of the index or more) fills the postings'
                        # btree in random key order, leaving its pages about half full:
                        # rebuilt, it is about half the size, and reads fewer pages per
                        # query. CONCURRENTLY: searches go on meanwhile.
                        conn.execute("REINDEX TABLE CONCURRENTLY keyword_postings")
                    conn.execute("VACUUM (ANALYZE) keyword_postings, keyword_docs, keyword_terms")
                finally:
                    conn.execute(
                        "SELECT set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,)
                    )
        return done

    @staticmethod
    def _indexed_papers(conn: Any) -> int:
        row = conn.execute("SELECT count(*) FROM keyword_docs").fetchone()
        return int(row[0]) if row else 0

    def _analysis(self) -> Analysis:
        # tantivy's analyzers are not shared between threads: one set per thread.
        analysis: Analysis | None = getattr(self._local, "analysis", None)
        if analysis is None:
            analysis = self._local.analysis = Analysis()
        return analysis

    def keyword_index_pending(self) -> int:
        with self._conn() as conn:
            row = conn.execute("SELECT COUNT(*) FROM keyword_pending").fetchone()
            return _int(row)

    def clear_quarantine(self, listing: str | None = None) -> int:
        with self._conn() as conn:
            if listing is None:
                cur = conn.execute("DELETE FROM quarantine")
            else:
                cur = conn.execute("DELETE FROM quarantine WHERE listing = %s", (listing,))
            return int(cur.rowcount)

    # -- reads -----------------------------------------------------------------------
    @staticmethod
    def _resolve_pk(conn: psycopg.Connection[Any], paper_id: str) -> int | None:
        text = paper_id.strip()
        if not text:
            return None
        row = conn.execute("SELECT pk FROM papers WHERE id = %s", (text,)).fetchone()
        if row:
            return _int(row)
        candidates = []
        if text.startswith(("doi:", "title:")):
            candidates.append(text)
        parsed = parse_arxiv_id(text)
        if parsed:
            candidates.append(f"arxiv:{parsed.base}")
        doi = normalize_doi(text.removeprefix("doi:"))
        if doi:
            candidates.append(f"doi:{doi}")
        for key in candidates:
            row = conn.execute(
                "SELECT paper_pk FROM paper_keys WHERE key = %s ORDER BY paper_pk LIMIT 1",
                (key,),
            ).fetchone()
            if row:
                return _int(row)
        return None

    def get_paper(self, paper_id: str) -> Paper | None:
        with self._conn() as conn:
            pk = self._resolve_pk(conn, paper_id)
            return None if pk is None else self._load(conn, pk)[0]

    def _select(
        self, conn: psycopg.Connection[Any], query: PaperQuery, *, count: bool = False
    ) -> tuple[str, list[Any]]:
        params: list[Any] = []
        where: list[str] = []
        by_day = query.feed_date or query.date_from or query.date_to
        if query.ids is not None:
            pks = [pk for pk in (self._resolve_pk(conn, i) for i in query.ids) if pk is not None]
            where.append("p.pk = ANY(%s)")
            params.append(pks)
        if query.source:
            where.append(
                "EXISTS (SELECT 1 FROM paper_sources s WHERE s.paper_pk = p.pk AND s.source = %s)"
            )
            params.append(query.source)
        if by_day:
            day_where = ["a.paper_pk = p.pk", "a.feed_date IS NOT NULL"]
            day_params: list[Any] = []
            if query.feed_date:
                day_where.append("a.feed_date = %s")
                day_params.append(query.feed_date)
            if query.date_from:
                day_where.append("a.feed_date >= %s")
                day_params.append(query.date_from)
            if query.date_to:
                day_where.append("a.feed_date <= %s")
                day_params.append(query.date_to)
            text = (
                f"SELECT {_P_PAPER_COLUMNS}, MAX(a.feed_date) AS day, MIN(a.rank) AS rk "
                f"FROM papers p JOIN appearances a ON {' AND '.join(day_where)} "
                + (f"WHERE {' AND '.join(where)} " if where else "")
                + "GROUP BY p.pk ORDER BY day DESC, rk ASC NULLS LAST, p.id"
            )
            params = day_params + params
        else:
            text = (
                f"SELECT {_P_PAPER_COLUMNS} FROM papers p "
                + (f"WHERE {' AND '.join(where)} " if where else "")
                + "ORDER BY p.published DESC NULLS LAST, p.id"
            )
        if count:
            return f"SELECT COUNT(*) FROM ({text}) AS selected", params
        if query.limit is not None:
            text += " LIMIT %s OFFSET %s"
            params += [query.limit, query.offset]
        elif query.offset:
            text += " OFFSET %s"
            params.append(query.offset)
        return text, params

    def query_papers(self, query: PaperQuery) -> list[Paper]:
        with self._conn() as conn:
            text, params = self._select(conn, query)
            return self._rows_to_papers(conn, conn.execute(text, params).fetchall())

    def iter_papers(self, query: PaperQuery) -> Iterator[Paper]:
        with self._conn() as conn, conn.transaction():
            text, params = self._select(conn, query)
            # A server-side cursor: millions of papers stream in constant memory.
            with conn.cursor(name="paperfeed_iter_papers") as cur:
                cur.execute(text, params)
                while True:
                    rows = cur.fetchmany(500)
                    if not rows:
                        return
                    yield from self._rows_to_papers(conn, rows)

    def count_papers(self, query: PaperQuery) -> int:
        with self._conn() as conn:
            text, params = self._select(conn, replace(query, limit=None, offset=0), count=True)
            row = conn.execute(text, params).fetchone()
            return _int(row)

    def appearances(self, paper_id: str) -> list[Appearance]:
        with self._conn() as conn:
            pk = self._resolve_pk(conn, paper_id)
            if pk is None:
                return []
            rows = conn.execute(
                "SELECT p.id, a.listing, a.feed_date, a.rank, a.source FROM appearances a "
                "JOIN papers p ON p.pk = a.paper_pk WHERE a.paper_pk = %s "
                "ORDER BY a.feed_date DESC NULLS LAST, a.listing",
                (pk,),
            ).fetchall()
        return [Appearance(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def feed_dates(self) -> list[dt.date]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT DISTINCT feed_date FROM appearances WHERE feed_date IS NOT NULL "
                "ORDER BY feed_date"
            ).fetchall()
        return [r[0] for r in rows]

    def stats(self) -> StoreStats:
        with self._conn() as conn:
            papers = conn.execute("SELECT COUNT(*) FROM papers").fetchone()
            appearances = conn.execute("SELECT COUNT(*) FROM appearances").fetchone()
            quarantined = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()
            sources = {
                str(s): int(n)
                for s, n in conn.execute(
                    "SELECT source, COUNT(*) FROM paper_sources GROUP BY source ORDER BY source"
                )
            }
            days = conn.execute(
                "SELECT COUNT(DISTINCT feed_date), MIN(feed_date), MAX(feed_date) "
                "FROM appearances WHERE feed_date IS NOT NULL"
            ).fetchone()
        assert papers is not None
        assert appearances is not None
        assert quarantined is not None
        assert days is not None
        return StoreStats(
            papers=int(papers[0]),
            appearances=int(appearances[0]),
            quarantined=int(quarantined[0]),
            sources=sources,
            feed_days=int(days[0]),
            first_feed_date=days[1],
            last_feed_date=days[2],
        )

    def quarantined(
        self, *, listing: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[QuarantinedRecord]:
        text = "SELECT id, source, path, locator, reason, raw, created_at FROM quarantine"
        params: list[Any] = []
        if listing:
            text += " WHERE listing = %s"
            params.append(listing)
        text += " ORDER BY id LIMIT %s OFFSET %s"
        params += [limit, offset]  # LIMIT NULL is no limit
        with self._conn() as conn:
            rows = conn.execute(text, params).fetchall()
        return [
            QuarantinedRecord(
                id=int(r[0]),
                source=r[1],
                path=r[2],
                locator=r[3],
                reason=r[4],
                raw=r[5],
                created_at=_utc(r[6]),
            )
            for r in rows
        ]

    # -- search support ----------------------------------------------------------------
    @staticmethod
    def _filter_sql(filters: SearchFilters | None, alias: str = "p") -> tuple[str, list[Any]]:
        if filters is None or not filters.active:
            return "", []
        where: list[str] = []
        params: list[Any] = []
        if filters.date_from:
            where.append(f"{alias}.published >= %s")
            params.append(filters.date_from)
        if filters.date_to:
            where.append(f"{alias}.published <= %s")
            params.append(filters.date_to)
        if filters.categories:
            tests = []
            for cat in filters.categories:
                if cat.endswith(".*"):
                    tests.append("(c.value = %s OR c.value LIKE %s)")
                    archive = cat[:-2]
                    escaped = archive.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
                    params += [archive, escaped + ".%"]
                else:
                    tests.append("c.value = %s")
                    params.append(cat)
            where.append(
                f"EXISTS (SELECT 1 FROM jsonb_array_elements_text({alias}.categories) c WHERE "
                + " OR ".join(tests)
                + ")"
            )
        if filters.source:
            where.append(
                "EXISTS (SELECT 1 FROM paper_sources s "
                f"WHERE s.paper_pk = {alias}.pk AND s.source = %s)"
            )
            params.append(filters.source)
        if filters.topics:
            marks = ", ".join("%s" for _ in filters.topics)
            where.append(
                "EXISTS (SELECT 1 FROM paper_topics pt JOIN topics t ON t.id = pt.topic_id "
                f"WHERE pt.paper_pk = {alias}.pk AND t.key IN ({marks}))"
            )
            params.extend(filters.topics)
        return " AND ".join(where), params

    def keyword_search(
        self, query: KeywordQuery, *, limit: int, filters: SearchFilters | None = None
    ) -> list[tuple[int, float]]:
        where, params = self._filter_sql(filters)
        with self._conn() as conn:
            search = KeywordSearch(conn, self._analysis(), query)
            return search.run(limit=limit, filter_sql=where, filter_params=params)

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]:
        unique = list(dict.fromkeys(int(pk) for pk in pks))
        if not unique:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_PAPER_COLUMNS} FROM papers WHERE pk = ANY(%s)", (unique,)
            ).fetchall()
            papers = self._rows_to_papers(conn, rows)
        return {int(row[0]): paper for row, paper in zip(rows, papers, strict=True)}

    def paper_pk(self, paper_id: str) -> int | None:
        with self._conn() as conn:
            return self._resolve_pk(conn, paper_id)

    def filter_pks(self, filters: SearchFilters) -> list[int]:
        where, params = self._filter_sql(filters)
        text = "SELECT p.pk FROM papers p " + (f"WHERE {where} " if where else "") + "ORDER BY p.pk"
        with self._conn() as conn:
            return [int(r[0]) for r in conn.execute(text, params)]

    # -- embeddings bookkeeping ----------------------------------------------------------
    def embedding_jobs(self, model_id: str, *, limit: int, after_pk: int = 0) -> list[EmbeddingJob]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT p.pk, p.title, p.abstract, p.content_hash FROM papers p "
                "LEFT JOIN embeddings e ON e.paper_pk = p.pk AND e.model_id = %s "
                "WHERE p.pk > %s AND (e.paper_pk IS NULL OR e.content_hash != p.content_hash) "
                "ORDER BY p.pk LIMIT %s",
                (model_id, after_pk, limit),
            ).fetchall()
        return [EmbeddingJob(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def embedded_text_hashes(self, model_id: str, pks: Sequence[int]) -> dict[int, str]:
        unique = list(dict.fromkeys(int(pk) for pk in pks))
        with self._conn() as conn:
            return {
                int(pk): str(text_hash)
                for pk, text_hash in conn.execute(
                    "SELECT paper_pk, text_hash FROM embeddings "
                    "WHERE model_id = %s AND paper_pk = ANY(%s)",
                    (model_id, unique),
                )
            }

    def record_embeddings(self, model_id: str, rows: Sequence[tuple[int, str, str]]) -> None:
        if not rows:
            return
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO embeddings (model_id, paper_pk, text_hash, content_hash) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (model_id, paper_pk) DO UPDATE SET "
                "text_hash = excluded.text_hash, content_hash = excluded.content_hash",
                [(model_id, pk, th, ch) for pk, th, ch in rows],
            )

    def count_embeddings(self, model_id: str) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model_id = %s", (model_id,)
            ).fetchone()
            return _int(row)

    def drop_embeddings(self, model_id: str) -> int:
        """Forget this model's embeddings, its vectors included (they live here too)."""
        from paperfeed.store.postgres.vectors import drop_model_vectors

        with self._conn() as conn, conn.transaction():
            cur = conn.execute("DELETE FROM embeddings WHERE model_id = %s", (model_id,))
            drop_model_vectors(conn, model_id)
            return int(cur.rowcount)

    def get_setting(self, key: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM index_settings WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO index_settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- feeds -------------------------------------------------------------------------
    def feed_rows(
        self, date_from: dt.date, date_to: dt.date, filters: SearchFilters | None = None
    ) -> list[FeedRow]:
        where, params = self._filter_sql(filters)
        text = (
            # votes: the imported upvotes plus the votes cast on this instance
            "SELECT a.paper_pk, MIN(a.feed_date), MIN(a.rank), COALESCE(p.upvotes, 0) "
            "+ (SELECT COUNT(*) FROM votes v WHERE v.paper_pk = a.paper_pk) "
            "FROM appearances a JOIN papers p ON p.pk = a.paper_pk "
            "WHERE a.feed_date >= %s AND a.feed_date <= %s "
            + (f"AND {where} " if where else "")
            + "GROUP BY a.paper_pk, p.upvotes ORDER BY a.paper_pk"
        )
        with self._conn() as conn:
            rows = conn.execute(text, [date_from, date_to, *params]).fetchall()
        return [FeedRow(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    def latest_feed_day(self) -> dt.date | None:
        with self._conn() as conn:
            row = conn.execute("SELECT MAX(feed_date) FROM appearances").fetchone()
        return row[0] if row else None

    def feed_days_around(self, day: dt.date) -> tuple[dt.date | None, dt.date | None]:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT (SELECT MAX(feed_date) FROM appearances WHERE feed_date < %s), "
                "(SELECT MIN(feed_date) FROM appearances WHERE feed_date > %s)",
                (day, day),
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    # -- live sources (paperfeed fetch) ---------------------------------------------------
    def fetch_state(self, source: str, key: str) -> FetchState | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT source, key, cursor, updated_at FROM fetch_state "
                "WHERE source = %s AND key = %s",
                (source, key),
            ).fetchone()
        return None if row is None else FetchState(row[0], row[1], row[2], _utc(row[3]))

    def fetch_states(self) -> list[FetchState]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT source, key, cursor, updated_at FROM fetch_state ORDER BY source, key"
            ).fetchall()
        return [FetchState(r[0], r[1], r[2], _utc(r[3])) for r in rows]

    def save_fetch_state(self, source: str, key: str, cursor: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO fetch_state (source, key, cursor, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (source, key) DO UPDATE SET "
                "cursor = excluded.cursor, updated_at = excluded.updated_at",
                (source, key, cursor, _now()),
            )

    def delete_fetch_state(self, source: str, key: str) -> bool:
        with self._conn() as conn:
            cur = conn.execute(
                "DELETE FROM fetch_state WHERE source = %s AND key = %s", (source, key)
            )
            return cur.rowcount > 0

    def start_fetch_run(self, source: str, query: str) -> FetchRun:
        now = _now()
        with self._conn() as conn, conn.transaction():
            conn.execute(
                "UPDATE fetch_runs SET status = 'abandoned' "
                "WHERE source = %s AND query = %s AND status = 'running'",
                (source, query),
            )
            row = conn.execute(
                "INSERT INTO fetch_runs (source, query, started_at, status) "
                "VALUES (%s, %s, %s, 'running') RETURNING id",
                (source, query, now),
            ).fetchone()
        assert row is not None
        return FetchRun(
            id=int(row[0]), source=source, query=query, started_at=now, status="running"
        )

    def update_fetch_run(self, run: FetchRun) -> None:
        finished = run.finished_at
        if finished is not None and finished.tzinfo is None:
            finished = finished.replace(tzinfo=dt.UTC)
        with self._conn() as conn:
            conn.execute(
                "UPDATE fetch_runs SET status = %s, finished_at = %s, pages = %s, "
                "requests = %s, retries = %s, added = %s, merged = %s, unchanged = %s, "
                "quarantined = %s, appearances = %s, error = %s WHERE id = %s",
                (
                    run.status,
                    finished,
                    run.pages,
                    run.requests,
                    run.retries,
                    run.added,
                    run.merged,
                    run.unchanged,
                    run.quarantined,
                    run.appearances,
                    run.error,
                    run.id,
                ),
            )

    def fetch_runs(self, *, source: str | None = None, limit: int = 20) -> list[FetchRun]:
        text = (
            "SELECT id, source, query, started_at, status, finished_at, pages, requests, "
            "retries, added, merged, unchanged, quarantined, appearances, error FROM fetch_runs"
        )
        params: list[Any] = []
        if source:
            text += " WHERE source = %s"
            params.append(source)
        text += " ORDER BY id DESC LIMIT %s"
        params.append(limit)
        with self._conn() as conn:
            rows = conn.execute(text, params).fetchall()
        return [
            FetchRun(
                id=int(r[0]),
                source=r[1],
                query=r[2],
                started_at=_utc(r[3]),
                status=r[4],
                finished_at=_utc(r[5]) if r[5] else None,
                pages=r[6],
                requests=r[7],
                retries=r[8],
                added=r[9],
                merged=r[10],
                unchanged=r[11],
                quarantined=r[12],
                appearances=r[13],
                error=r[14],
            )
            for r in rows
        ]

    # -- vectors -------------------------------------------------------------------------
    def vector_index(self, model_id: str, dim: int) -> PgVectorIndex:
        """This model's vectors, kept in the database (pgvector) instead of files."""
        from paperfeed.store.postgres.vectors import PgVectorIndex

        return PgVectorIndex(self, model_id=model_id, dim=dim)

    # -- background jobs -----------------------------------------------------------------
    def acquire_job(self, job: str) -> JobLease | None:
        """A session advisory lock on a connection of its own (see .jobs)."""
        from paperfeed.store.postgres.jobs import acquire_advisory_job

        if self._closed:
            raise StoreError("the store is closed")
        return acquire_advisory_job(self._conninfo, self._location, job)


class _Batch:
    """What one write batch knows about identities, so each record costs no look-up query.

    The same bookkeeping as the SQLite backend's: keys of every record fetched in one
    query up front, papers added or merged during the batch remembered here, their key and
    source rows written in bulk at the end of the batch (same transaction).
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        title_hashes: list[str],
        records: Sequence[IncomingRecord],
    ) -> None:
        self.title_hashes = title_hashes
        self.keys: dict[str, list[int]] = {}
        self.identity: dict[int, tuple[str | None, str | None]] = {}
        self.key_rows: list[tuple[str, int]] = []
        self.new_sources: dict[int, set[str]] = {}
        wanted: set[str] = set()
        for record, title_hash in zip(records, title_hashes, strict=True):
            paper = record.paper
            if paper.arxiv_id:
                wanted.add(f"arxiv:{paper.arxiv_id}")
            if paper.doi:
                wanted.add(f"doi:{paper.doi}")
            wanted.add(f"title:{title_hash}")
        if not wanted:
            return
        rows = conn.execute(
            "SELECT k.key, k.paper_pk, p.arxiv_id, p.doi FROM paper_keys k "
            "JOIN papers p ON p.pk = k.paper_pk WHERE k.key = ANY(%s) ORDER BY k.paper_pk",
            (sorted(wanted),),
        )
        for key, pk, arxiv_id, doi in rows:
            self.keys.setdefault(key, []).append(int(pk))
            self.identity[int(pk)] = (arxiv_id, doi)

    def find(self, paper: Paper, title_hash: str) -> int | None:
        for key in (
            f"arxiv:{paper.arxiv_id}" if paper.arxiv_id else None,
            f"doi:{paper.doi}" if paper.doi else None,
        ):
            if key and key in self.keys:
                return self.keys[key][0]
        for pk in self.keys.get(f"title:{title_hash}", ()):
            arxiv_id, doi = self.identity[pk]
            # Same title but different arXiv ids or DOIs: two papers, not one.
            if paper.arxiv_id and arxiv_id and paper.arxiv_id != arxiv_id:
                continue
            if paper.doi and doi and paper.doi != doi:
                continue
            return pk
        return None

    def remember(self, pk: int, paper: Paper, keys: list[str]) -> None:
        self.identity[pk] = (paper.arxiv_id, paper.doi)
        for key in dict.fromkeys(keys):
            pks = self.keys.setdefault(key, [])
            if pk not in pks:
                pks.append(pk)
                self.key_rows.append((key, pk))

    def add_sources(self, pk: int, sources: Sequence[str]) -> None:
        if sources:
            self.new_sources.setdefault(pk, set()).update(sources)


__all__ = ["MIGRATIONS_PACKAGE", "PostgresStore", "safe_location"]
