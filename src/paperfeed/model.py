"""The typed objects passed between modules (PRODUCT.md, "The objects").

Sources produce :class:`Paper` and :class:`ListingEntry`; the store persists them and
hands back the same types. Nothing here touches storage or the network.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from paperfeed.ids import normalize_doi, parse_arxiv_id, stable_id


@dataclass(frozen=True, slots=True)
class Links:
    """Where a paper can be read; every field optional."""

    abs: str | None = None
    pdf: str | None = None
    code: str | None = None
    project: str | None = None

    def merged_with(self, other: Links) -> Links:
        """Fill the fields this one lacks from ``other``; existing values are kept."""
        return Links(
            abs=self.abs or other.abs,
            pdf=self.pdf or other.pdf,
            code=self.code or other.code,
            project=self.project or other.project,
        )

    def as_dict(self) -> dict[str, str]:
        pairs = (
            ("abs", self.abs),
            ("pdf", self.pdf),
            ("code", self.code),
            ("project", self.project),
        )
        return {k: v for k, v in pairs if v}


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, whatever sources it came from.

    ``id`` follows the stable id rule (see :func:`paperfeed.ids.stable_id`); use
    :func:`new_paper` to build one so that the id and the identity fields agree.
    """

    id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    arxiv_id: str | None = None
    doi: str | None = None
    published: dt.date | None = None
    updated: dt.date | None = None
    links: Links = field(default_factory=Links)
    upvotes: int | None = None
    sources: tuple[str, ...] = ()
    first_seen: dt.datetime | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (dates as ISO strings); the shape of ``--json`` output and exports."""
        return {
            "id": self.id,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "categories": list(self.categories),
            "arxiv_id": self.arxiv_id,
            "doi": self.doi,
            "published": self.published.isoformat() if self.published else None,
            "updated": self.updated.isoformat() if self.updated else None,
            "links": self.links.as_dict(),
            "upvotes": self.upvotes,
            "sources": list(self.sources),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
        }


def new_paper(
    *,
    title: str,
    abstract: str = "",
    authors: tuple[str, ...] | list[str] = (),
    categories: tuple[str, ...] | list[str] = (),
    arxiv_id: str | None = None,
    doi: str | None = None,
    published: dt.date | None = None,
    updated: dt.date | None = None,
    links: Links | None = None,
    upvotes: int | None = None,
    source: str | None = None,
) -> Paper:
    """Build a Paper with a canonical arXiv id / DOI and the id derived from them.

    Raises ``ValueError`` if the title is empty: a paper without a title cannot be identified.
    """
    title = " ".join(title.split())
    if not title:
        raise ValueError("missing title")
    parsed = parse_arxiv_id(arxiv_id) if arxiv_id else None
    norm_doi = normalize_doi(doi) if doi else None
    links = links or Links()
    if parsed:
        links = links.merged_with(Links(abs=parsed.abs_url, pdf=parsed.pdf_url))
    return Paper(
        id=stable_id(arxiv_id=parsed.base if parsed else None, doi=norm_doi, title=title),
        title=title,
        abstract=" ".join(abstract.split()),
        authors=tuple(a for a in (" ".join(x.split()) for x in authors) if a),
        categories=tuple(dict.fromkeys(c.strip() for c in categories if c.strip())),
        arxiv_id=parsed.base if parsed else None,
        doi=norm_doi,
        published=published,
        updated=updated,
        links=links,
        upvotes=upvotes,
        sources=(source,) if source else (),
    )


@dataclass(frozen=True, slots=True)
class ListingEntry:
    """Where a source listed a paper: a feed day on a listing, with its rank when known."""

    listing: str
    feed_date: dt.date | None = None
    rank: int | None = None


@dataclass(frozen=True, slots=True)
class Appearance:
    """A paper listed on a feed day (as stored)."""

    paper_id: str
    listing: str
    feed_date: dt.date | None
    rank: int | None
    source: str


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record that could not be ingested, kept with where it was and why."""

    id: int
    source: str
    path: str
    locator: str
    reason: str
    raw: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one ingest of one input did."""

    path: str
    format: str
    added: int = 0
    merged: int = 0
    unchanged: int = 0
    quarantined: int = 0
    appearances: int = 0

    @property
    def read(self) -> int:
        return self.added + self.merged + self.unchanged

    def __add__(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            path=self.path if self.path == other.path else "(several)",
            format=self.format if self.format == other.format else "(several)",
            added=self.added + other.added,
            merged=self.merged + other.merged,
            unchanged=self.unchanged + other.unchanged,
            quarantined=self.quarantined + other.quarantined,
            appearances=self.appearances + other.appearances,
        )


@dataclass(frozen=True, slots=True)
class StoreStats:
    papers: int
    appearances: int
    quarantined: int
    sources: dict[str, int]
    feed_days: int
    first_feed_date: dt.date | None
    last_feed_date: dt.date | None


# The community objects: accounts, votes, collections, subscriptions and digest runs.


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str | None
    is_admin: bool
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal API token as listed (the secret itself is shown once, never stored)."""

    id: int
    user_id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Vote:
    user_id: int
    paper_id: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    user_id: int
    name: str
    is_public: bool
    created_at: dt.datetime
    size: int = 0


@dataclass(frozen=True, slots=True)
class CollectionItem:
    paper: Paper
    note: str
    added_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SubscriptionContents:
    """What a digest holds: the period's trending papers, the user's "for you" picks,
    papers matching saved searches, papers by followed authors, new papers in categories."""

    trending: bool = True
    for_you: bool = True
    searches: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "trending": self.trending,
            "for_you": self.for_you,
            "searches": list(self.searches),
            "authors": list(self.authors),
            "categories": list(self.categories),
        }


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    user_id: int | None
    email: str
    frequency: str  # "daily" | "weekly"
    contents: SubscriptionContents
    max_items: int
    created_at: dt.datetime
    confirmed_at: dt.datetime | None = None
    unsubscribed_at: dt.datetime | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One digest for one subscription and period: the ledger row that makes it go once."""

    id: int
    subscription_id: int
    period: str  # e.g. "2026-03-14" (daily) or "2026-W11" (weekly)
    status: str  # "pending" | "sending" | "sent" | "failed"
    attempts: int
    message_id: str
    items: int = 0
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None


__all__ = [
    "ApiToken",
    "Appearance",
    "Collection",
    "CollectionItem",
    "DigestRun",
    "IngestReport",
    "Links",
    "ListingEntry",
    "Paper",
    "QuarantinedRecord",
    "StoreStats",
    "Subscription",
    "SubscriptionContents",
    "User",
    "Vote",
    "new_paper",
]
