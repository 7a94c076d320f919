"""The embedded store: one SQLite file in WAL mode.

Concurrency model (after datasette): every write goes through one writer connection
under a lock, each in one ``BEGIN IMMEDIATE`` transaction; every reading thread gets its
own connection, so readers never block the writer or each other. A batch either lands
whole or not at all, which is what makes a killed ingest safe to re-run.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from paperfeed.errors import StoreError
from paperfeed.ids import normalize_doi, parse_arxiv_id, title_key
from paperfeed.index.keyword_query import KeywordQuery
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
from paperfeed.store.sqlite.accounts import SQLiteAccounts
from paperfeed.store.sqlite.keyword_index import KeywordDocument, KeywordIndex
from paperfeed.store.sqlite.recommend import SQLiteRecommend

MIGRATIONS_PACKAGE = "paperfeed.store.sqlite.migrations"
_PAPER_COLUMNS = (
    "pk, id, title, abstract, authors, categories, arxiv_id, doi, published, updated, "
    "links, upvotes, first_seen, content_hash"
)
# Papers re-indexed per keyword-index commit: tantivy makes a segment per commit, and
# fewer, larger segments search faster (its merges then have less to do).
KEYWORD_BATCH = 20_000


# One encoder built once: json.dumps with options builds a new encoder on every call.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def identity_keys(paper: Paper, title_hash: str | None = None) -> list[str]:
    keys = []
    if paper.arxiv_id:
        keys.append(f"arxiv:{paper.arxiv_id}")
    if paper.doi:
        keys.append(f"doi:{paper.doi}")
    keys.append(f"title:{title_hash or title_key(paper.title)}")
    if paper.id.startswith(("doi:", "title:")) and paper.id not in keys:
        keys.append(paper.id)
    return keys


class SQLiteStore(SQLiteAccounts, SQLiteRecommend, Store):
    def __init__(self, path: Path, *, create: bool = True) -> None:
        self._path = Path(path)
        if not self._path.exists():
            if not create:
                raise StoreError(
                    f"no paperfeed store at {self._path}; run 'paperfeed init' "
                    "or pass --data-dir / set PAPERFEED_HOME"
                )
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._writer = self._connect()
            self._writer.execute("PRAGMA journal_mode=WAL")
            # A larger page cache for the writer keeps index pages hot during bulk ingest.
            self._writer.execute("PRAGMA cache_size=-65536")
            self._migrate(load_migrations(MIGRATIONS_PACKAGE))
            self._keyword = KeywordIndex(self._path.with_name(self._path.name + "-keyword"))
            if self._keyword.created:
                # A new (or rebuilt) keyword index: every stored paper goes into it.
                with self._lock:
                    self._writer.execute(
                        "INSERT OR IGNORE INTO keyword_pending (pk) SELECT pk FROM papers"
                    )
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"cannot open the store at {self._path}: {exc}") from None
        except StoreError:
            self.close()
            raise

    # -- connections -----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._all.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()

    @property
    def location(self) -> str:
        return str(self._path)

    # -- migrations ------------------------------------------------------------------
    def _migrate(self, migrations: list[Migration]) -> None:
        conn = self._writer
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = self.schema_version()
        if current > len(migrations):
            raise StoreError(
                f"the store at {self._path} has schema version {current}, newer than this "
                f"paperfeed knows ({len(migrations)}); upgrade paperfeed"
            )
        for mig in migrations[current:]:
            with self._lock:
                try:
                    conn.executescript(
                        "BEGIN IMMEDIATE;\n"
                        + mig.sql
                        + "\n;INSERT INTO schema_migrations (version, name, applied_at) "
                        + f"VALUES ({mig.version}, '{mig.name}', '{_now()}');\nCOMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    def schema_version(self) -> int:
        row = self._writer.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- writes ----------------------------------------------------------------------
    def write_batch(
        self, records: Sequence[IncomingRecord], rejections: Sequence[IncomingRejection]
    ) -> BatchResult:
        counts = {"added": 0, "merged": 0, "unchanged": 0, "appearances": 0}
        now = _now()
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                batch = _Batch(conn, [title_key(r.paper.title) for r in records], records)
                for record, title_hash in zip(records, batch.title_hashes, strict=True):
                    self._upsert(conn, batch, record, title_hash, now, counts)
                conn.executemany(
                    "INSERT OR IGNORE INTO paper_keys (key, paper_pk) VALUES (?, ?)",
                    batch.key_rows,
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO paper_sources (paper_pk, source, first_seen) "
                    "VALUES (?, ?, ?)",
                    [(pk, src, now) for pk, srcs in batch.new_sources.items() for src in srcs],
                )
                for rej in rejections:
                    conn.execute(
                        "INSERT OR IGNORE INTO quarantine "
                        "(source, listing, path, locator, reason, raw, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (rej.source, rej.listing, rej.path, rej.locator, rej.reason, rej.raw, now),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return BatchResult(quarantined=len(rejections), **counts)

    def _upsert(
        self,
        conn: sqlite3.Connection,
        batch: _Batch,
        record: IncomingRecord,
        title_hash: str,
        now: str,
        counts: dict[str, int],
    ) -> None:
        paper = record.paper
        pk = batch.find(paper, title_hash)
        if pk is None:
            paper_id = paper.id
            values = (*self._content_values(paper), now, now, content_hash(paper))
            suffix = 1
            while True:
                try:
                    cur = conn.execute(
                        "INSERT INTO papers (id, title, abstract, authors, categories, arxiv_id, "
                        "doi, published, updated, links, upvotes, first_seen, changed_at, "
                        "content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (paper_id, *values),
                    )
                    break
                except sqlite3.IntegrityError as exc:
                    if "papers.id" not in str(exc):
                        raise
                    # A title hash already taken by a different paper with the same title.
                    suffix += 1
                    paper_id = f"{paper.id}-{suffix}"
            pk = int(cur.lastrowid or 0)
            keys = identity_keys(paper, title_hash)
            if paper_id != paper.id:
                keys.append(paper_id)
            counts["added"] += 1
            batch.remember(pk, paper, keys)
            batch.add_sources(pk, paper.sources)
        else:
            stored = self._load(conn, pk)
            known_sources = set(stored.sources) | batch.new_sources.get(pk, set())
            merged = merge_papers(stored, paper)
            new_hash = content_hash(merged)
            old_hash = conn.execute(
                "SELECT content_hash FROM papers WHERE pk = ?", (pk,)
            ).fetchone()[0]
            new_sources = [s for s in paper.sources if s not in known_sources]
            if new_hash != old_hash:
                conn.execute(
                    "UPDATE papers SET id = ?, title = ?, abstract = ?, authors = ?, "
                    "categories = ?, arxiv_id = ?, doi = ?, published = ?, updated = ?, "
                    "links = ?, upvotes = ?, changed_at = ?, content_hash = ? WHERE pk = ?",
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
            key = (entry.listing, entry.feed_date.isoformat() if entry.feed_date else "", pk)
            cur = conn.execute(
                "INSERT OR IGNORE INTO appearances (listing, feed_date, paper_pk, rank, source) "
                "VALUES (?, ?, ?, ?, ?)",
                (*key, entry.rank, paper.sources[0] if paper.sources else ""),
            )
            if cur.rowcount == 1:
                counts["appearances"] += 1
            elif entry.rank is not None:
                conn.execute(
                    "UPDATE appearances SET rank = ? "
                    "WHERE listing = ? AND feed_date = ? AND paper_pk = ? AND rank IS NOT ?",
                    (entry.rank, *key, entry.rank),
                )

    @staticmethod
    def _content_values(paper: Paper) -> tuple[object, ...]:
        return (
            paper.title,
            paper.abstract,
            _to_json(list(paper.authors)),
            _to_json(list(paper.categories)),
            paper.arxiv_id,
            paper.doi,
            paper.published.isoformat() if paper.published else None,
            paper.updated.isoformat() if paper.updated else None,
            _to_json(paper.links.as_dict()),
            paper.upvotes,
        )

    def _load(self, conn: sqlite3.Connection, pk: int) -> Paper:
        row = conn.execute(f"SELECT {_PAPER_COLUMNS} FROM papers WHERE pk = ?", (pk,)).fetchone()
        return self._rows_to_papers(conn, [row])[0]

    def _rows_to_papers(self, conn: sqlite3.Connection, rows: Sequence[Any]) -> list[Paper]:
        if not rows:
            return []
        pks = [r[0] for r in rows]
        sources: dict[int, list[str]] = {}
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pk, source in conn.execute(
                f"SELECT paper_pk, source FROM paper_sources WHERE paper_pk IN ({marks}) "
                "ORDER BY first_seen, source",
                chunk,
            ):
                sources.setdefault(pk, []).append(source)
        papers = []
        for r in rows:
            links = json.loads(r[10])
            papers.append(
                Paper(
                    id=r[1],
                    title=r[2],
                    abstract=r[3],
                    authors=tuple(json.loads(r[4])),
                    categories=tuple(json.loads(r[5])),
                    arxiv_id=r[6],
                    doi=r[7],
                    published=_date(r[8]),
                    updated=_date(r[9]),
                    links=Links(**links),
                    upvotes=r[11],
                    sources=tuple(sources.get(r[0], ())),
                    first_seen=dt.datetime.fromisoformat(r[12]),
                )
            )
        return papers

    def start_ingest_run(self, path: str, fmt: str) -> int:
        with self._lock:
            cur = self._writer.execute(
                "INSERT INTO ingest_runs (path, format, started_at, status) "
                "VALUES (?, ?, ?, 'running')",
                (path, fmt, _now()),
            )
            return int(cur.lastrowid or 0)

    def finish_ingest_run(self, run_id: int, report: IngestReport, status: str) -> None:
        with self._lock:
            self._writer.execute(
                "UPDATE ingest_runs SET finished_at = ?, status = ?, added = ?, merged = ?, "
                "unchanged = ?, quarantined = ?, appearances = ? WHERE id = ?",
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
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = KEYWORD_BATCH,
    ) -> int:
        total = self.keyword_index_pending()
        done = 0
        if not total:
            return 0
        with self._keyword.updating() as update:
            while True:
                with self._lock:
                    conn = self._writer
                    # The write transaction spans the index commit: no other process
                    # changes papers meanwhile, and the queue is emptied only once the
                    # index holds them.
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        pks = [
                            int(r[0])
                            for r in conn.execute(
                                "SELECT pk FROM keyword_pending ORDER BY pk LIMIT ?",
                                (batch_size,),
                            )
                        ]
                        if not pks:
                            conn.execute("COMMIT")
                            return done
                        added = update.replace(pks, self._keyword_documents(conn, pks))
                        conn.execute("DELETE FROM keyword_pending WHERE pk <= ?", (pks[-1],))
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                done += added
                if progress is not None:
                    progress(done, max(total, done))

    @staticmethod
    def _keyword_documents(
        conn: sqlite3.Connection, pks: Sequence[int]
    ) -> Iterator[KeywordDocument]:
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            for r in conn.execute(
                "SELECT pk, title, abstract, authors, categories, published FROM papers "
                f"WHERE pk IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                yield KeywordDocument(
                    pk=int(r[0]),
                    title=r[1],
                    abstract=r[2],
                    authors=json.loads(r[3]),
                    categories=json.loads(r[4]),
                    published=_date(r[5]),
                )

    def keyword_index_pending(self) -> int:
        return int(self._reader().execute("SELECT COUNT(*) FROM keyword_pending").fetchone()[0])

    def clear_quarantine(self, listing: str | None = None) -> int:
        with self._lock:
            if listing is None:
                cur = self._writer.execute("DELETE FROM quarantine")
            else:
                cur = self._writer.execute("DELETE FROM quarantine WHERE listing = ?", (listing,))
            return cur.rowcount

    # -- reads -----------------------------------------------------------------------
    def _resolve_pk(self, conn: sqlite3.Connection, paper_id: str) -> int | None:
        text = paper_id.strip()
        if not text:
            return None
        row = conn.execute("SELECT pk FROM papers WHERE id = ?", (text,)).fetchone()
        if row:
            return int(row[0])
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
                "SELECT paper_pk FROM paper_keys WHERE key = ? ORDER BY paper_pk LIMIT 1", (key,)
            ).fetchone()
            if row:
                return int(row[0])
        return None

    def get_paper(self, paper_id: str) -> Paper | None:
        conn = self._reader()
        pk = self._resolve_pk(conn, paper_id)
        return None if pk is None else self._load(conn, pk)

    def _select(self, query: PaperQuery, *, count: bool = False) -> tuple[str, list[Any]]:
        conn = self._reader()
        params: list[Any] = []
        where: list[str] = []
        by_day = query.feed_date or query.date_from or query.date_to
        if query.ids is not None:
            pks = [pk for pk in (self._resolve_pk(conn, i) for i in query.ids) if pk is not None]
            where.append(f"p.pk IN ({','.join(str(pk) for pk in pks) or 'NULL'})")
        if query.source:
            where.append(
                "EXISTS (SELECT 1 FROM paper_sources s WHERE s.paper_pk = p.pk AND s.source = ?)"
            )
            params.append(query.source)
        if by_day:
            day_where = ["a.paper_pk = p.pk"]
            if query.feed_date:
                day_where.append("a.feed_date = ?")
                params.append(query.feed_date.isoformat())
            if query.date_from:
                day_where.append("a.feed_date >= ?")
                params.append(query.date_from.isoformat())
            if query.date_to:
                day_where.append("a.feed_date <= ? AND a.feed_date != ''")
                params.append(query.date_to.isoformat())
            sql = (
                f"SELECT p.{_PAPER_COLUMNS.replace(', ', ', p.')}, "
                "MAX(a.feed_date) AS day, MIN(a.rank) AS rk "
                f"FROM papers p JOIN appearances a ON {' AND '.join(day_where)} "
                + (f"WHERE {' AND '.join(where)} " if where else "")
                + "GROUP BY p.pk ORDER BY day DESC, rk IS NULL, rk, p.id"
            )
        else:
            sql = (
                f"SELECT p.{_PAPER_COLUMNS.replace(', ', ', p.')} FROM papers p "
                + (f"WHERE {' AND '.join(where)} " if where else "")
                + "ORDER BY p.published IS NULL, p.published DESC, p.id"
            )
        if count:
            return f"SELECT COUNT(*) FROM ({sql})", params
        if query.limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [query.limit, query.offset]
        elif query.offset:
            sql += " LIMIT -1 OFFSET ?"
            params.append(query.offset)
        return sql, params

    def query_papers(self, query: PaperQuery) -> list[Paper]:
        conn = self._reader()
        sql, params = self._select(query)
        return self._rows_to_papers(conn, conn.execute(sql, params).fetchall())

    def iter_papers(self, query: PaperQuery) -> Iterator[Paper]:
        conn = self._reader()
        sql, params = self._select(query)
        cur = conn.execute(sql, params)
        while True:
            rows = cur.fetchmany(500)
            if not rows:
                return
            yield from self._rows_to_papers(conn, rows)

    def count_papers(self, query: PaperQuery) -> int:
        sql, params = self._select(replace(query, limit=None, offset=0), count=True)
        return int(self._reader().execute(sql, params).fetchone()[0])

    def appearances(self, paper_id: str) -> list[Appearance]:
        conn = self._reader()
        pk = self._resolve_pk(conn, paper_id)
        if pk is None:
            return []
        rows = conn.execute(
            "SELECT p.id, a.listing, a.feed_date, a.rank, a.source FROM appearances a "
            "JOIN papers p ON p.pk = a.paper_pk WHERE a.paper_pk = ? "
            "ORDER BY a.feed_date DESC, a.listing",
            (pk,),
        ).fetchall()
        return [Appearance(r[0], r[1], _date(r[2]), r[3], r[4]) for r in rows]

    def feed_dates(self) -> list[dt.date]:
        rows = (
            self._reader()
            .execute(
                "SELECT DISTINCT feed_date FROM appearances "
                "WHERE feed_date != '' ORDER BY feed_date"
            )
            .fetchall()
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    def stats(self) -> StoreStats:
        conn = self._reader()
        papers = conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        appearances = conn.execute("SELECT COUNT(*) FROM appearances").fetchone()[0]
        quarantined = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        sources = dict(
            conn.execute(
                "SELECT source, COUNT(*) FROM paper_sources GROUP BY source ORDER BY source"
            ).fetchall()
        )
        days = conn.execute(
            "SELECT COUNT(DISTINCT feed_date), MIN(feed_date), MAX(feed_date) "
            "FROM appearances WHERE feed_date != ''"
        ).fetchone()
        return StoreStats(
            papers=papers,
            appearances=appearances,
            quarantined=quarantined,
            sources=sources,
            feed_days=days[0],
            first_feed_date=_date(days[1]),
            last_feed_date=_date(days[2]),
        )

    def quarantined(
        self, *, listing: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[QuarantinedRecord]:
        sql = "SELECT id, source, path, locator, reason, raw, created_at FROM quarantine"
        params: list[Any] = []
        if listing:
            sql += " WHERE listing = ?"
            params.append(listing)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        return [
            QuarantinedRecord(
                id=r[0],
                source=r[1],
                path=r[2],
                locator=r[3],
                reason=r[4],
                raw=r[5],
                created_at=dt.datetime.fromisoformat(r[6]),
            )
            for r in self._reader().execute(sql, params)
        ]

    # -- search support ----------------------------------------------------------------
    @staticmethod
    def _filter_sql(filters: SearchFilters | None, alias: str = "p") -> tuple[str, list[Any]]:
        if filters is None or not filters.active:
            return "", []
        where: list[str] = []
        params: list[Any] = []
        if filters.date_from:
            where.append(f"{alias}.published >= ?")
            params.append(filters.date_from.isoformat())
        if filters.date_to:
            where.append(f"{alias}.published <= ?")
            params.append(filters.date_to.isoformat())
        if filters.categories:
            tests = []
            for cat in filters.categories:
                if cat.endswith(".*"):
                    tests.append("(c.value = ? OR c.value LIKE ? ESCAPE '\\')")
                    archive = cat[:-2]
                    params += [archive, archive.replace("_", "\\_").replace("%", "\\%") + ".%"]
                else:
                    tests.append("c.value = ?")
                    params.append(cat)
            where.append(
                f"EXISTS (SELECT 1 FROM json_each({alias}.categories) c WHERE "
                + " OR ".join(tests)
                + ")"
            )
        if filters.source:
            where.append(
                "EXISTS (SELECT 1 FROM paper_sources s "
                f"WHERE s.paper_pk = {alias}.pk AND s.source = ?)"
            )
            params.append(filters.source)
        if filters.topics:
            marks = ", ".join("?" for _ in filters.topics)
            where.append(
                "EXISTS (SELECT 1 FROM paper_topics pt JOIN topics t ON t.id = pt.topic_id "
                f"WHERE pt.paper_pk = {alias}.pk AND t.key IN ({marks}))"
            )
            params.extend(filters.topics)
        return " AND ".join(where), params

    def keyword_search(
        self, query: KeywordQuery, *, limit: int, filters: SearchFilters | None = None
    ) -> list[tuple[int, float]]:
        allowed = None
        if filters is not None:
            # Dates and categories are fields of the keyword index; anything else is
            # resolved here into the keys that pass it.
            rest = replace(filters, date_from=None, date_to=None, categories=())
            if rest.active:
                allowed = self.filter_pks(rest)
                if not allowed:
                    return []
        return self._keyword.search(query, limit=limit, filters=filters, allowed=allowed)

    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]:
        conn = self._reader()
        found: dict[int, Paper] = {}
        unique = list(dict.fromkeys(int(pk) for pk in pks))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = conn.execute(
                f"SELECT {_PAPER_COLUMNS} FROM papers WHERE pk IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for row, paper in zip(rows, self._rows_to_papers(conn, rows), strict=True):
                found[int(row[0])] = paper
        return found

    def paper_pk(self, paper_id: str) -> int | None:
        return self._resolve_pk(self._reader(), paper_id)

    def filter_pks(self, filters: SearchFilters) -> list[int]:
        where, params = self._filter_sql(filters)
        sql = "SELECT p.pk FROM papers p " + (f"WHERE {where} " if where else "") + "ORDER BY p.pk"
        return [int(r[0]) for r in self._reader().execute(sql, params)]

    # -- embeddings bookkeeping ----------------------------------------------------------
    def embedding_jobs(self, model_id: str, *, limit: int, after_pk: int = 0) -> list[EmbeddingJob]:
        rows = (
            self._reader()
            .execute(
                "SELECT p.pk, p.title, p.abstract, p.content_hash FROM papers p "
                "LEFT JOIN embeddings e ON e.paper_pk = p.pk AND e.model_id = ? "
                "WHERE p.pk > ? AND (e.paper_pk IS NULL OR e.content_hash != p.content_hash) "
                "ORDER BY p.pk LIMIT ?",
                (model_id, after_pk, limit),
            )
            .fetchall()
        )
        return [EmbeddingJob(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def embedded_text_hashes(self, model_id: str, pks: Sequence[int]) -> dict[int, str]:
        conn = self._reader()
        found: dict[int, str] = {}
        unique = list(dict.fromkeys(int(pk) for pk in pks))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            for pk, text_hash in conn.execute(
                "SELECT paper_pk, text_hash FROM embeddings WHERE model_id = ? "
                f"AND paper_pk IN ({','.join('?' * len(chunk))})",
                [model_id, *chunk],
            ):
                found[int(pk)] = text_hash
        return found

    def record_embeddings(self, model_id: str, rows: Sequence[tuple[int, str, str]]) -> None:
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO embeddings (model_id, paper_pk, text_hash, content_hash) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (model_id, paper_pk) DO UPDATE SET "
                    "text_hash = excluded.text_hash, content_hash = excluded.content_hash",
                    [(model_id, pk, th, ch) for pk, th, ch in rows],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def count_embeddings(self, model_id: str) -> int:
        row = (
            self._reader()
            .execute("SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,))
            .fetchone()
        )
        return int(row[0])

    def drop_embeddings(self, model_id: str) -> int:
        with self._lock:
            cur = self._writer.execute("DELETE FROM embeddings WHERE model_id = ?", (model_id,))
            return cur.rowcount

    def get_setting(self, key: str) -> str | None:
        row = (
            self._reader()
            .execute("SELECT value FROM index_settings WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self._lock:
            self._writer.execute(
                "INSERT INTO index_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- feeds -------------------------------------------------------------------------
    def feed_rows(
        self, date_from: dt.date, date_to: dt.date, filters: SearchFilters | None = None
    ) -> list[FeedRow]:
        where, params = self._filter_sql(filters)
        sql = (
            # votes: the imported upvotes plus the votes cast on this instance
            "SELECT a.paper_pk, MIN(a.feed_date), MIN(a.rank), COALESCE(p.upvotes, 0) "
            "+ (SELECT COUNT(*) FROM votes v WHERE v.paper_pk = a.paper_pk) "
            "FROM appearances a JOIN papers p ON p.pk = a.paper_pk "
            "WHERE a.feed_date >= ? AND a.feed_date <= ? AND a.feed_date != '' "
            + (f"AND {where} " if where else "")
            + "GROUP BY a.paper_pk ORDER BY a.paper_pk"
        )
        rows = self._reader().execute(sql, [date_from.isoformat(), date_to.isoformat(), *params])
        return [FeedRow(int(r[0]), dt.date.fromisoformat(r[1]), r[2], int(r[3])) for r in rows]

    def latest_feed_day(self) -> dt.date | None:
        row = self._reader().execute("SELECT MAX(feed_date) FROM appearances").fetchone()
        return _date(row[0])

    def feed_days_around(self, day: dt.date) -> tuple[dt.date | None, dt.date | None]:
        conn = self._reader()
        key = day.isoformat()
        before = conn.execute(
            "SELECT MAX(feed_date) FROM appearances WHERE feed_date < ? AND feed_date != ''",
            (key,),
        ).fetchone()[0]
        after = conn.execute(
            "SELECT MIN(feed_date) FROM appearances WHERE feed_date > ?", (key,)
        ).fetchone()[0]
        return _date(before), _date(after)

    # -- live sources (paperfeed fetch) ---------------------------------------------------
    def fetch_state(self, source: str, key: str) -> FetchState | None:
        row = (
            self._reader()
            .execute(
                "SELECT source, key, cursor, updated_at FROM fetch_state "
                "WHERE source = ? AND key = ?",
                (source, key),
            )
            .fetchone()
        )
        if row is None:
            return None
        return FetchState(row[0], row[1], row[2], dt.datetime.fromisoformat(row[3]))

    def fetch_states(self) -> list[FetchState]:
        rows = self._reader().execute(
            "SELECT source, key, cursor, updated_at FROM fetch_state ORDER BY source, key"
        )
        return [FetchState(r[0], r[1], r[2], dt.datetime.fromisoformat(r[3])) for r in rows]

    def save_fetch_state(self, source: str, key: str, cursor: str) -> None:
        with self._lock:
            self._writer.execute(
                "INSERT INTO fetch_state (source, key, cursor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, key) DO UPDATE SET cursor = excluded.cursor, "
                "updated_at = excluded.updated_at",
                (source, key, cursor, _now()),
            )

    def delete_fetch_state(self, source: str, key: str) -> bool:
        with self._lock:
            cur = self._writer.execute(
                "DELETE FROM fetch_state WHERE source = ? AND key = ?", (source, key)
            )
            return cur.rowcount > 0

    def start_fetch_run(self, source: str, query: str) -> FetchRun:
        now = _now()
        with self._lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "UPDATE fetch_runs SET status = 'abandoned' "
                    "WHERE source = ? AND query = ? AND status = 'running'",
                    (source, query),
                )
                cur = conn.execute(
                    "INSERT INTO fetch_runs (source, query, started_at, status) "
                    "VALUES (?, ?, ?, 'running')",
                    (source, query, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return FetchRun(
            id=int(cur.lastrowid or 0),
            source=source,
            query=query,
            started_at=dt.datetime.fromisoformat(now),
            status="running",
        )

    def update_fetch_run(self, run: FetchRun) -> None:
        with self._lock:
            self._writer.execute(
                "UPDATE fetch_runs SET status = ?, finished_at = ?, pages = ?, requests = ?, "
                "retries = ?, added = ?, merged = ?, unchanged = ?, quarantined = ?, "
                "appearances = ?, error = ? WHERE id = ?",
                (
                    run.status,
                    run.finished_at.isoformat() if run.finished_at else None,
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
        sql = (
            "SELECT id, source, query, started_at, status, finished_at, pages, requests, "
            "retries, added, merged, unchanged, quarantined, appearances, error FROM fetch_runs"
        )
        params: list[Any] = []
        if source:
            sql += " WHERE source = ?"
            params.append(source)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [
            FetchRun(
                id=r[0],
                source=r[1],
                query=r[2],
                started_at=dt.datetime.fromisoformat(r[3]),
                status=r[4],
                finished_at=dt.datetime.fromisoformat(r[5]) if r[5] else None,
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
            for r in self._reader().execute(sql, params)
        ]

    # -- background jobs -----------------------------------------------------------------
    def acquire_job(self, job: str) -> JobLease | None:
        """A lock file per job beside the database (see paperfeed.store.jobs)."""
        from paperfeed.store.jobs import acquire_file_job

        return acquire_file_job(self._path.with_name(self._path.name + "-jobs"), job)


class _Batch:
    """What one write batch knows about identities, so each record costs no look-up query.

    The keys of every record in the batch are fetched in one query up front; papers added
    or merged during the batch are remembered here, and their key and source rows are
    written in bulk at the end of the batch (same transaction).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
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
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 900):
            chunk = ordered[start : start + 900]
            rows = conn.execute(
                "SELECT k.key, k.paper_pk, p.arxiv_id, p.doi FROM paper_keys k "
                "JOIN papers p ON p.pk = k.paper_pk "
                f"WHERE k.key IN ({','.join('?' * len(chunk))}) ORDER BY k.paper_pk",
                chunk,
            )
            for key, pk, arxiv_id, doi in rows:
                self.keys.setdefault(key, []).append(pk)
                self.identity[pk] = (arxiv_id, doi)

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
