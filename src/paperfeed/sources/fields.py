"""The documented field names of a user's own reading list, shared by CSV and JSON lines.

Both formats accept the same fields under the same names (case-insensitive; ``-`` and spaces
count as ``_``); unknown fields are ignored. :data:`FIELDS` is the single list the user
documentation is written from, and :func:`build_record` turns one record, already keyed by
canonical field name, into a paper and its listing entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from paperfeed.ids import normalize_doi, parse_arxiv_id
from paperfeed.model import Links, ListingEntry, Paper, new_paper
from paperfeed.sources.base import (
    RAW_EXCERPT,
    ParseContext,
    RecordError,
    clean_text,
    excerpt,
    parse_date,
    split_authors,
    split_categories,
)

# Canonical field -> the names it is accepted under (after case and separator folding).
FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "arxiv_id": ("arxiv_id",),
    "doi": ("doi",),
    "title": ("title",),
    "abstract": ("abstract", "summary"),
    "authors": ("authors",),
    "categories": ("categories",),
    "published": ("published",),
    "updated": ("updated",),
    "url": ("url",),
    "pdf_url": ("pdf_url",),
    "code_url": ("code_url",),
    "project_url": ("project_url",),
    "upvotes": ("upvotes",),
    # JSON only: {"abs", "pdf", "code", "project"}, as in paperfeed's own JSON export; the
    # flat url fields above win over it.
    "links": ("links",),
    # Appearance fields: present when the file is a listing (a feed day, a ranked list).
    "feed_date": ("feed_date",),
    "rank": ("rank",),
    "listing": ("listing",),
}

_ALIASES: dict[str, str] = {
    alias: canonical for canonical, aliases in FIELDS.items() for alias in aliases
}

# Spreadsheets and dataframe exports write these for "no value"; a title is never folded.
_NULLS = frozenset({"", "-", "n/a", "na", "none", "null", "nan"})


def field_key(name: str) -> str | None:
    """The canonical field a column or key name stands for, or None if it is not documented."""
    return _ALIASES.get(name.strip().lower().replace("-", "_").replace(" ", "_"))


def canonical_record(record: Mapping[str, object]) -> dict[str, object]:
    """Re-key a record by canonical field; the first non-empty value of a field wins."""
    out: dict[str, object] = {}
    for name, value in record.items():
        key = field_key(name)
        if key is None or value is None or value == "":
            continue
        out.setdefault(key, value)
    return out


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__


def text_field(value: object, name: str) -> str:
    """A one-line text value; numbers are accepted as text, structures are an error."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise RecordError(f"field '{name}' must be text, not {_kind(value)}")


def optional_text(value: object, name: str) -> str:
    text = text_field(value, name)
    return "" if text.lower() in _NULLS else text


def int_field(value: object, name: str) -> int | None:
    """A non-negative integer given as a number or as text ('12', '1,234', '12.0')."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() in _NULLS:
            return None
        try:
            number = int(text.replace(",", ""))
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                as_float = 0.5
            number = int(as_float) if as_float.is_integer() else None
    # Stores keep integers in 64 bits.
    if number is None or not 0 <= number < 2**63:
        raise RecordError(f"invalid number in field '{name}': {str(value)[:80]!r}")
    return number


def date_field(value: object, name: str) -> dt.date | None:
    """A date in any common spelling, with a fast path for ISO dates and timestamps."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a bare year
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NULLS:
            return None
        if len(text) >= 10 and text[4] == "-" and (len(text) == 10 or text[10] in "T "):
            try:
                day = dt.date.fromisoformat(text[:10])
            except ValueError:
                pass
            else:
                if 1900 <= day.year <= 2200:
                    return day
    return parse_date(value, name)


def surrogate_field(paper: Paper) -> str | None:
    """The first field of ``paper`` holding a lone surrogate (unstorable text), or None.

    JSON escapes such as ``\\ud800`` and bytes decoded with ``surrogateescape`` produce
    them; SQLite and every UTF-8 writer refuse them, so such a record is rejected.
    """
    fields: list[tuple[str, str | None]] = [
        ("title", paper.title),
        ("abstract", paper.abstract),
        ("authors", "\n".join(paper.authors)),
        ("categories", "\n".join(paper.categories)),
        ("doi", paper.doi),
        ("url", paper.links.abs),
        ("pdf_url", paper.links.pdf),
        ("code_url", paper.links.code),
        ("project_url", paper.links.project),
    ]
    for name, value in fields:
        if value:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def text_excerpt(text: str) -> str:
    """An excerpt of decoded text that may hold lone surrogates, made storable."""
    return excerpt(text[:RAW_EXCERPT].encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


def check_encodable(paper: Paper) -> None:
    name = surrogate_field(paper)
    if name is not None:
        raise RecordError(f"broken encoding: field '{name}' holds an unpaired surrogate")


def build_record(
    record: Mapping[str, object], ctx: ParseContext
) -> tuple[Paper, ListingEntry | None]:
    """Turn a record keyed by canonical field (see :func:`canonical_record`) into a paper.

    Raises RecordError naming the field for a missing title or an invalid value.
    """
    title = text_field(record.get("title"), "title")
    if not title:
        raise RecordError("missing title")

    arxiv_id: str | None = None
    doi: str | None = None
    value = optional_text(record.get("arxiv_id"), "arxiv_id")
    if value:
        parsed = parse_arxiv_id(value)
        if parsed is None:
            raise RecordError(f"invalid arXiv id in field 'arxiv_id': {value[:80]!r}")
        arxiv_id = parsed.base
    value = optional_text(record.get("doi"), "doi")
    if value:
        doi = normalize_doi(value)
        if doi is None:
            raise RecordError(f"invalid DOI in field 'doi': {value[:80]!r}")
    value = optional_text(record.get("id"), "id")
    if value:
        parsed = parse_arxiv_id(value)
        if parsed is not None:
            arxiv_id = arxiv_id or parsed.base
        else:
            # Anything else in `id` (a row number, our own "title:..." ids) is not identity:
            # the paper is then identified by its title.
            doi = doi or normalize_doi(value)

    abs_url: str | None = None
    value = optional_text(record.get("url"), "url")
    if value:
        parsed = parse_arxiv_id(value)
        if parsed is not None:
            # The paper's arXiv links then follow from its id, in their canonical form.
            arxiv_id = arxiv_id or parsed.base
        else:
            abs_url = value
    links_value = record.get("links")
    if links_value is not None and not isinstance(links_value, dict):
        raise RecordError(f"field 'links' must be an object, not {_kind(links_value)}")
    links: Mapping[str, object] = links_value or {}
    abs_url = abs_url or optional_text(links.get("abs"), "links.abs") or None
    pdf_url = optional_text(record.get("pdf_url"), "pdf_url") or None
    pdf_url = pdf_url or optional_text(links.get("pdf"), "links.pdf") or None
    if pdf_url and arxiv_id is None:
        parsed = parse_arxiv_id(pdf_url)
        arxiv_id = parsed.base if parsed else None
    if doi and arxiv_id is None:
        parsed = parse_arxiv_id(doi)  # the arXiv DOI 10.48550/arXiv.<id>
        arxiv_id = parsed.base if parsed else None

    authors_value = record.get("authors")
    if isinstance(authors_value, (int, float)) and not isinstance(authors_value, bool):
        authors_value = str(authors_value)
    elif isinstance(authors_value, dict):
        authors_value = [authors_value]  # a single {"name": ...}
    categories_value = record.get("categories")

    paper = new_paper(
        title=title,
        abstract=optional_text(record.get("abstract"), "abstract"),
        authors=split_authors(authors_value),
        categories=split_categories(categories_value),
        arxiv_id=arxiv_id,
        doi=doi,
        published=date_field(record.get("published"), "published"),
        updated=date_field(record.get("updated"), "updated"),
        links=Links(
            abs=abs_url,
            pdf=pdf_url,
            code=optional_text(record.get("code_url"), "code_url")
            or optional_text(links.get("code"), "links.code")
            or None,
            project=optional_text(record.get("project_url"), "project_url")
            or optional_text(links.get("project"), "links.project")
            or None,
        ),
        upvotes=int_field(record.get("upvotes"), "upvotes"),
        source=ctx.source,
    )
    check_encodable(paper)

    feed_date = date_field(record.get("feed_date"), "feed_date")
    rank = int_field(record.get("rank"), "rank")
    listing = optional_text(record.get("listing"), "listing")
    try:
        listing.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError("broken encoding: field 'listing' holds an unpaired surrogate") from None
    entry = None
    if feed_date is not None or rank is not None or listing:
        entry = ListingEntry(listing=listing or ctx.listing, feed_date=feed_date, rank=rank)
    return paper, entry
