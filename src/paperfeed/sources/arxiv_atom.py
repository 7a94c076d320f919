"""arXiv Atom feeds (format ``arxiv-atom``).

Reads, as a stream:

- results of the arXiv query API (``export.arxiv.org/api/query``): Atom 1.0 with the
  ``opensearch:`` and ``arxiv:`` extensions, in the long-standing layout (namespaces
  declared on each element, links told apart by ``rel`` / ``title``) and in the 2025 layout
  (namespaces on the root, links without ``rel`` or ``title``);
- the daily listing feeds ``rss.arxiv.org/atom/<category>`` (ids ``oai:arXiv.org:...``,
  "Announce Type" inside the summary, authors in ``dc:creator``) and their RSS 2.0 twins
  ``rss.arxiv.org/rss/<category>``.

Every entry is a listing entry: API results are ranked (``opensearch:startIndex`` + position)
on the feed's ``<updated>`` day; listing-feed entries are ranked by position on their
announcement day.

The XML machinery lives in :mod:`paperfeed.sources.xmlstream` (shared with
:mod:`paperfeed.sources.arxiv_oai`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO
from xml.etree.ElementTree import Element

from paperfeed.errors import FormatError
from paperfeed.ids import parse_arxiv_id
from paperfeed.model import Links, ListingEntry, Paper, new_paper
from paperfeed.sources.arxiv_text import detex_name, first_doi, split_author_string
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
)
from paperfeed.sources.xmlstream import (
    XmlReader,
    element_excerpt,
    failure_item,
    has_broken_encoding,
    local_name,
    quick_date,
    text_of,
)

# --------------------------------------------------------------------------- Atom / RSS

_ENTRY_NAMES = frozenset({"entry", "item"})
# Feed-level elements read outside the entries.
_WANTED = _ENTRY_NAMES | frozenset({"id", "updated", "pubDate", "lastBuildDate", "startIndex"})
_ROOT_NAMES = frozenset({"feed", "rss"})
_ERROR_ID = re.compile(r"^https?://(?:export\.)?arxiv\.org/api/errors", re.IGNORECASE)
_OAI_PREFIX = re.compile(r"^oai:arxiv\.org:", re.IGNORECASE)
_ANNOUNCE = re.compile(
    r"^\s*arXiv:\S+\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)
# arXiv also lists ACM (``I.2.6``) and MSC (``68T05``) classes as categories; only arXiv's
# own taxonomy (``cs.LG``, ``hep-th``, ``cond-mat.stat-mech``) is kept.
_ARXIV_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")
_REPLACEMENTS = frozenset({"replace", "replace-cross"})


@dataclass(slots=True)
class _FeedState:
    feed_date: dt.date | None = None  # from the feed's <updated> / <pubDate>
    start_index: int | None = None
    listing_feed: bool = False


@dataclass(slots=True)
class _EntryFields:
    id: str = ""
    guid: str = ""
    title: str = ""
    summary: str = ""
    published: str = ""
    updated: str = ""
    pub_date: str = ""
    doi: str = ""
    announce_type: str = ""
    primary: str = ""
    abs_link: str | None = None
    pdf_link: str | None = None
    authors: list[str] = field(default_factory=list)
    creators: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def _read_entry(elem: Element) -> _EntryFields:
    f = _EntryFields()
    for child in elem:
        name = local_name(child.tag)
        if name == "id":
            f.id = text_of(child)
        elif name == "guid":
            f.guid = text_of(child)
        elif name == "title":
            f.title = text_of(child)
        elif name in ("summary", "description") and not f.summary:
            f.summary = text_of(child)
        elif name == "author":
            names = [detex_name(text_of(c)) for c in child if local_name(c.tag) == "name"]
            f.authors.extend(n for n in names if n)
        elif name == "creator":
            f.creators.append(text_of(child))
        elif name == "category":
            term = child.get("term")
            f.categories.append(clean_text(term) if term is not None else text_of(child))
        elif name == "primary_category":
            f.primary = clean_text(child.get("term") or "")
        elif name == "link":
            _read_link(child, f)
        elif name == "published":
            f.published = text_of(child)
        elif name == "updated":
            f.updated = text_of(child)
        elif name == "pubDate":
            f.pub_date = text_of(child)
        elif name in ("doi", "DOI") and not f.doi:
            f.doi = text_of(child)
        elif name == "announce_type":
            f.announce_type = text_of(child).lower()
    return f


def _read_link(link: Element, f: _EntryFields) -> None:
    href = clean_text(link.get("href") or "")
    if not href:
        # RSS 2.0: the link is the element's text.
        href = text_of(link)
        if href and f.abs_link is None:
            f.abs_link = href
        return
    rel = link.get("rel") or "alternate"
    if link.get("title") == "pdf" or link.get("type") == "application/pdf" or "/pdf/" in href:
        f.pdf_link = f.pdf_link or href
    elif link.get("title") == "doi" or "doi.org/" in href:
        return
    elif rel == "alternate":
        f.abs_link = f.abs_link or href


def _short_id(f: _EntryFields) -> str:
    raw = f.id or f.guid
    parsed = parse_arxiv_id(_OAI_PREFIX.sub("", raw)) if raw else None
    if parsed:
        return str(parsed)
    return raw[:100]


def _arxiv_id(f: _EntryFields) -> str | None:
    for candidate in (f.id, f.guid, f.abs_link or ""):
        parsed = parse_arxiv_id(_OAI_PREFIX.sub("", candidate)) if candidate else None
        if parsed:
            return str(parsed)
    return None


def _entry_item(
    elem: Element, number: int, line: int, state: _FeedState, ctx: ParseContext
) -> Item:
    f = _read_entry(elem)
    ident = _short_id(f)
    locator = f"entry {number} ({ident}, line {line})" if ident else f"entry {number} (line {line})"
    try:
        paper, listed_on = _entry_paper(elem, f, state, ctx)
    except ValueError as exc:
        return Rejected(locator=locator, reason=str(exc), raw=element_excerpt(elem))
    if listed_on is None:
        # A query API result is a search answer, not a feed day: no appearance.
        return Parsed(paper=paper, locator=locator)
    rank = number if state.start_index is None else state.start_index + number
    entry = ListingEntry(listing=ctx.listing, feed_date=listed_on, rank=rank)
    return Parsed(paper=paper, locator=locator, entry=entry)


def _entry_paper(
    elem: Element, f: _EntryFields, state: _FeedState, ctx: ParseContext
) -> tuple[Paper, dt.date | None]:
    if has_broken_encoding(elem):
        raise RecordError("broken encoding: the entry contains bytes that are not valid UTF-8")
    if _ERROR_ID.match(f.id):
        raise RecordError(f"arXiv API error: {f.summary or f.id}")
    abstract = f.summary
    announce_type = f.announce_type
    match = _ANNOUNCE.match(abstract)
    if match:
        abstract = abstract[match.end() :]
        announce_type = announce_type or match.group("type").lower()
    listing_entry = bool(announce_type) or state.listing_feed or bool(_OAI_PREFIX.match(f.id))
    if listing_entry:
        # In listing feeds <published> is the announcement day, not the submission date.
        announced = quick_date(f.published or f.pub_date, "published")
        if announce_type in _REPLACEMENTS:
            published, updated = None, announced
        else:
            published, updated = announced, None
        feed_date = announced or state.feed_date
    else:
        published = quick_date(f.published or f.pub_date, "published")
        updated = quick_date(f.updated, "updated")
        feed_date = None
    authors = list(f.authors)
    if not authors:
        for creator in f.creators:
            authors.extend(split_author_string(creator))
    categories = [c for c in [f.primary, *f.categories] if _ARXIV_CATEGORY.match(c)]
    if not f.title:
        raise RecordError("missing title")
    paper = new_paper(
        title=f.title,
        abstract=abstract,
        authors=authors,
        categories=categories,
        arxiv_id=_arxiv_id(f),
        doi=first_doi(f.doi),
        published=published,
        updated=updated,
        links=Links(abs=f.abs_link, pdf=f.pdf_link),
        source=ctx.source,
    )
    return paper, feed_date


def _read_feed_element(elem: Element, state: _FeedState) -> None:
    name = local_name(elem.tag)
    value = text_of(elem)
    if name == "id":
        state.listing_feed = "rss.arxiv.org" in value
    elif name == "startIndex":
        state.start_index = int(value) if value.isdigit() and len(value) < 10 else None
    elif name in ("updated", "pubDate", "lastBuildDate") and state.feed_date is None:
        try:
            state.feed_date = quick_date(value, name)
        except RecordError:
            state.feed_date = None


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    reader = XmlReader(stream, _WANTED)
    state = _FeedState()
    number = 0
    for node in reader.nodes():
        elem = node.element
        name = local_name(elem.tag)
        if node.is_root:
            if name not in _ROOT_NAMES:
                raise FormatError(
                    f"{ctx.path}: not an Atom or RSS feed (the root element is <{name}>)"
                )
        elif name in _ENTRY_NAMES:
            number += 1
            yield _entry_item(elem, number, node.line, state, ctx)
        else:
            _read_feed_element(elem, state)
    if reader.empty and not reader.read_failed:
        raise FormatError(f"{ctx.path}: the input is empty")
    if reader.failure is not None:
        if not reader.saw_root:
            raise FormatError(f"{ctx.path}: not an XML feed ({reader.failure.message})")
        yield failure_item(reader.failure, f"entry {number}" if number else "the feed header")
