"""The storage interface every backend implements (SQLite now, PostgreSQL later).

Nothing outside ``paperfeed.store`` opens a database connection or a file of the store:
the library, the CLI and the web app call these methods only.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paperfeed.model import (
    Appearance,
    IngestReport,
    ListingEntry,
    Paper,
    QuarantinedRecord,
    StoreStats,
)
from paperfeed.store.accounts import AccountStore
from paperfeed.store.recommend import RecommendStore

if TYPE_CHECKING:
    from paperfeed.index.keyword_query import KeywordQuery
    from paperfeed.index.vectors import VectorIndex


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """A good record on its way in, with the listing entry it came with (if any)."""

    paper: Paper
    entry: ListingEntry | None = None


@dataclass(frozen=True, slots=True)
class IncomingRejection:
    source: str
    listing: str
    path: str
    locator: str
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    added: int = 0
    merged: int = 0
    unchanged: int = 0
    quarantined: int = 0
    appearances: int = 0


@dataclass(frozen=True, slots=True)
class PaperQuery:
    """A selection of papers: all filters optional and combined with AND.

    ``feed_date`` / ``date_from`` / ``date_to`` select by appearance on a feed day; papers
    are then ordered by feed day (newest first) and rank, else by published date, then id.
    """

    feed_date: dt.date | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    source: str | None = None
    ids: tuple[str, ...] | None = None
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Filters shared by keyword and semantic search (combined with AND).

    Dates are publication dates; ``categories`` matches papers in any of them (a trailing
    ``.*`` matches a whole archive, e.g. ``cs.*``); ``source`` is a format name;
    ``topics`` matches papers labelled with any of these topic keys (``cs.CL``,
    ``ml.diffusion-models``; see :mod:`paperfeed.recommend.topics`).
    """

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    categories: tuple[str, ...] = ()
    source: str | None = None
    topics: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.categories or self.source or self.topics)


@dataclass(frozen=True, slots=True)
class EmbeddingJob:
    """A paper whose embedding for some model is missing or out of date."""

    pk: int
    title: str
    abstract: str
    content_hash: str


class Store(AccountStore, RecommendStore):
    """A paperfeed store. Safe to share between threads; writes are serialized."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store lives (a path or a URL without password)."""

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    # -- writes ----------------------------------------------------------------------
    @abc.abstractmethod
    def write_batch(
        self, records: Sequence[IncomingRecord], rejections: Sequence[IncomingRejection]
    ) -> BatchResult:
        """Merge a batch of records and quarantine a batch of rejections atomically."""

    @abc.abstractmethod
    def start_ingest_run(self, path: str, fmt: str) -> int: ...

    @abc.abstractmethod
    def finish_ingest_run(self, run_id: int, report: IngestReport, status: str) -> None: ...

    @abc.abstractmethod
    def clear_quarantine(self, listing: str | None = None) -> int: ...

    @abc.abstractmethod
    def refresh_keyword_index(
        self, *, progress: Callable[[int, int], None] | None = None, batch_size: int = 5000
    ) -> int:
        """Index the papers written since the last refresh; returns how many were indexed.

        Ingest calls this after storing a file; a refresh killed midway simply resumes on
        the next call. ``progress(done, total)`` is called after each batch.
        """

    @abc.abstractmethod
    def keyword_index_pending(self) -> int:
        """How many stored papers are not yet in the keyword index."""

    # -- reads -----------------------------------------------------------------------
    @abc.abstractmethod
    def get_paper(self, paper_id: str) -> Paper | None:
        """Look a paper up by its id, any former id, arXiv id (any spelling) or DOI."""

    @abc.abstractmethod
    def query_papers(self, query: PaperQuery) -> list[Paper]: ...

    @abc.abstractmethod
    def iter_papers(self, query: PaperQuery) -> Iterator[Paper]:
        """Like query_papers, streamed (for exports of everything)."""

    @abc.abstractmethod
    def count_papers(self, query: PaperQuery) -> int: ...

    @abc.abstractmethod
    def appearances(self, paper_id: str) -> list[Appearance]: ...

    @abc.abstractmethod
    def feed_dates(self) -> list[dt.date]:
        """Every feed day that has at least one appearance, oldest first."""

    @abc.abstractmethod
    def stats(self) -> StoreStats: ...

    @abc.abstractmethod
    def quarantined(
        self, *, listing: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[QuarantinedRecord]: ...

    # -- search support ----------------------------------------------------------------
    @abc.abstractmethod
    def keyword_search(
        self, query: KeywordQuery, *, limit: int, filters: SearchFilters | None = None
    ) -> list[tuple[int, float]]:
        """(paper pk, BM25-like score, higher is better) of the best ``limit`` papers
        matching a parsed query, best first, ties by pk; each backend compiles the query
        its own way (SQLite: a tantivy index beside the database; PostgreSQL: tsquery)."""

    def vector_index(self, model_id: str, dim: int) -> VectorIndex | None:
        """The store's own vector index for a model, or None when the vectors live in
        files beside the store (SQLite): see :func:`paperfeed.index.semantic.open_index`."""
        return None

    @abc.abstractmethod
    def papers_by_pk(self, pks: Sequence[int]) -> dict[int, Paper]: ...

    @abc.abstractmethod
    def paper_pk(self, paper_id: str) -> int | None:
        """The internal key of a paper given any of its ids (see get_paper)."""

    @abc.abstractmethod
    def filter_pks(self, filters: SearchFilters) -> list[int]:
        """Every paper pk passing the filters, ascending."""

    # -- embeddings bookkeeping ----------------------------------------------------------
    @abc.abstractmethod
    def embedding_jobs(self, model_id: str, *, limit: int, after_pk: int = 0) -> list[EmbeddingJob]:
        """Papers (pk > after_pk, ascending) not embedded by this model since they changed."""

    @abc.abstractmethod
    def embedded_text_hashes(self, model_id: str, pks: Sequence[int]) -> dict[int, str]: ...

    @abc.abstractmethod
    def record_embeddings(self, model_id: str, rows: Sequence[tuple[int, str, str]]) -> None:
        """Record (pk, text_hash, content_hash) rows as embedded by this model."""

    @abc.abstractmethod
    def count_embeddings(self, model_id: str) -> int: ...

    @abc.abstractmethod
    def drop_embeddings(self, model_id: str) -> int: ...

    @abc.abstractmethod
    def get_setting(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_setting(self, key: str, value: str) -> None: ...

    # -- feeds -------------------------------------------------------------------------
    @abc.abstractmethod
    def feed_rows(
        self, date_from: dt.date, date_to: dt.date, filters: SearchFilters | None = None
    ) -> list[FeedRow]:
        """One row per paper listed on a feed day within [date_from, date_to] (inclusive),
        passing the filters; ordered by pk. Ranking is done by :mod:`paperfeed.feeds`."""

    @abc.abstractmethod
    def latest_feed_day(self) -> dt.date | None:
        """The newest feed day with at least one appearance."""

    @abc.abstractmethod
    def feed_days_around(self, day: dt.date) -> tuple[dt.date | None, dt.date | None]:
        """The nearest feed days with appearances before and after ``day``."""

    # -- live sources (paperfeed fetch) ---------------------------------------------------
    @abc.abstractmethod
    def fetch_state(self, source: str, key: str) -> FetchState | None:
        """How far a live source got for one query (None if it never ran)."""

    @abc.abstractmethod
    def fetch_states(self) -> list[FetchState]:
        """Every remembered source + query, by source then key."""

    @abc.abstractmethod
    def save_fetch_state(self, source: str, key: str, cursor: str) -> None:
        """Remember a source's JSON cursor (written once a page's records are stored)."""

    @abc.abstractmethod
    def delete_fetch_state(self, source: str, key: str) -> bool: ...

    @abc.abstractmethod
    def start_fetch_run(self, source: str, query: str) -> FetchRun:
        """Log a fetch as running; earlier runs of the same query left running (killed)
        are marked ``abandoned``."""

    @abc.abstractmethod
    def update_fetch_run(self, run: FetchRun) -> None:
        """Write a run's counts, status, end time and error (after each page and at the end)."""

    @abc.abstractmethod
    def fetch_runs(self, *, source: str | None = None, limit: int = 20) -> list[FetchRun]:
        """The latest fetch runs, newest first."""

    # -- background jobs (added for several processes sharing one store) ----------------
    @abc.abstractmethod
    def acquire_job(self, job: str) -> JobLease | None:
        """The lease of a background job (``fetch``, ``digests``, ``trainer``, ...), or None
        when another process or thread holds it: whoever holds it does the job, the others
        skip it. Held until released (or the holder dies); never waits."""


@dataclass(frozen=True, slots=True)
class FeedRow:
    """What ranking a feed needs about one paper listed within a date range."""

    pk: int
    day: dt.date  # the first feed day it was listed on within the range
    rank: int | None  # its best rank on the listings of the range, when known
    votes: int  # imported upvotes (0 when unknown) + votes cast on this instance


@dataclass(frozen=True, slots=True)
class FetchState:
    """A live source's memory for one query: a JSON cursor shaped by the source."""

    source: str
    key: str
    cursor: str
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FetchRun:
    """One fetch of one source + query, as logged: what came and what failed."""

    id: int
    source: str
    query: str
    started_at: dt.datetime
    status: str  # running | done | failed | interrupted | abandoned
    finished_at: dt.datetime | None = None
    pages: int = 0
    requests: int = 0
    retries: int = 0
    added: int = 0
    merged: int = 0
    unchanged: int = 0
    quarantined: int = 0
    appearances: int = 0
    error: str | None = None


class JobLease(abc.ABC):
    """The right to run one background job, until :meth:`release` (or the holder's death:
    a file lock or a database session that ends frees it, so a killed process never
    blocks a job forever). A context manager."""

    def __init__(self, job: str) -> None:
        self.job = job

    @property
    @abc.abstractmethod
    def held(self) -> bool:
        """Whether the lease is still ours (False once released or its session is lost)."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the job back; releasing twice is harmless."""

    def __enter__(self) -> JobLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
