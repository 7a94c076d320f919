"""How two records of the same paper become one (PRODUCT.md: merge, never duplicate).

Rules, field by field — richer information wins, nothing known is ever dropped:

- id: the strongest identity wins (arXiv id > DOI > title hash); an existing id is only
  ever upgraded, so links to a paper keep working (old ids stay resolvable as aliases).
- title: kept, unless the incoming record is the first with an arXiv id (arXiv's title is
  authoritative) or the stored one is empty.
- abstract: the longer one; authors: the longer list (ties keep the stored one).
- categories: union, stored order first; links: stored values kept, gaps filled.
- arxiv_id, doi: filled when missing; published: the earliest; updated: the latest.
- upvotes: the highest count seen; sources: union.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from paperfeed.model import Paper


def id_strength(paper_id: str) -> int:
    if paper_id.startswith("title:"):
        return 1
    if paper_id.startswith("doi:"):
        return 2
    return 3


def _earliest(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _latest(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def merge_papers(stored: Paper, incoming: Paper) -> Paper:
    """Merge ``incoming`` into ``stored`` following the module rules."""
    upgrade = id_strength(incoming.id) > id_strength(stored.id)
    title = stored.title
    if not title or (incoming.arxiv_id and not stored.arxiv_id):
        title = incoming.title or stored.title
    upvotes = stored.upvotes
    if incoming.upvotes is not None:
        upvotes = incoming.upvotes if upvotes is None else max(upvotes, incoming.upvotes)
    return Paper(
        id=incoming.id if upgrade else stored.id,
        title=title,
        abstract=incoming.abstract
        if len(incoming.abstract) > len(stored.abstract)
        else stored.abstract,
        authors=incoming.authors if len(incoming.authors) > len(stored.authors) else stored.authors,
        categories=tuple(dict.fromkeys(stored.categories + incoming.categories)),
        arxiv_id=stored.arxiv_id or incoming.arxiv_id,
        doi=stored.doi or incoming.doi,
        published=_earliest(stored.published, incoming.published),
        updated=_latest(stored.updated, incoming.updated),
        links=stored.links.merged_with(incoming.links),
        upvotes=upvotes,
        sources=tuple(dict.fromkeys(stored.sources + incoming.sources)),
        first_seen=stored.first_seen,
    )


def content_hash(paper: Paper) -> str:
    """Hash of what a paper says (not where it came from): equal hashes mean nothing changed."""
    # Unit and record separators cannot occur in cleaned text, so the join is unambiguous.
    blob = "\x1f".join(
        (
            paper.id,
            paper.title,
            paper.abstract,
            "\x1e".join(paper.authors),
            "\x1e".join(paper.categories),
            paper.arxiv_id or "",
            paper.doi or "",
            paper.published.isoformat() if paper.published else "",
            paper.updated.isoformat() if paper.updated else "",
            paper.links.abs or "",
            paper.links.pdf or "",
            paper.links.code or "",
            paper.links.project or "",
            "" if paper.upvotes is None else str(paper.upvotes),
        )
    )
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()
