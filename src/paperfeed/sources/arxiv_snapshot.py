"""The arXiv bulk metadata snapshot: one JSON object per line, millions of lines.

The widely used ``arxiv-metadata-oai-snapshot.json`` (Kaggle, Cornell University): keys
``id, submitter, authors, title, comments, journal-ref, doi, report-no, categories, license,
abstract, versions, update_date, authors_parsed``. Titles and abstracts keep arXiv's hard
line wraps; ``versions[i].created`` is an RFC 2822 date, ``update_date`` an ISO date.

This is the ingest hot path, so a record whose identity fields are already canonical (the
normal case) is built without the general-purpose helpers: no regex, no dateutil, and the
paper assembled directly with exactly the values :func:`paperfeed.model.new_paper` would
give (the tests check the two agree). Anything unusual takes the general path.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import IO

from paperfeed.ids import normalize_doi
from paperfeed.model import Links, Paper, new_paper
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    excerpt,
    parse_date,
)
from paperfeed.sources.jsonl_table import bounded_lines, iter_json_lines

_MONTHS = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,
}


_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked(text: str, field_name: str) -> str:
    # JSON escapes such as "\ud800" give lone surrogates, which no UTF-8 store accepts.
    if not text.isascii() and _SURROGATE.search(text):
        raise RecordError(f"broken encoding: field '{field_name}' holds an unpaired surrogate")
    return text


def collapse(value: str, field_name: str = "abstract") -> str:
    """Same result as ``clean_text(value)``, without its regex and split for ordinary text.

    Once newlines are spaces and the ends stripped, text that is printable (no control,
    surrogate or non-space whitespace character) and has no double space is already clean.
    """
    text = value.replace("\n", " ").strip()
    if "  " in text or not text.isprintable():
        return _checked(clean_text(value), field_name)
    return text


def collapse_title(value: str) -> str:
    # Long titles are wrapped as "...\n  ..." in the snapshot.
    text = value.replace("\n  ", " ").replace("\n", " ").strip()
    if "  " in text or not text.isprintable():
        return _checked(clean_text(value), "title")
    return text


@functools.lru_cache(maxsize=1 << 16)  # the snapshot spans a few thousand distinct days
def _rfc_day(key: str) -> dt.date | None:
    """The date of a 'D Mon YYYY' key, or None to let the general parser decide."""
    parts = key.split(" ")
    month = _MONTHS.get(parts[1]) if len(parts) == 3 else None
    if month is None or not (parts[0].isdigit() and parts[2].isdigit()):
        return None
    year = int(parts[2])
    if not 1900 <= year <= 2200:
        return None
    try:
        return dt.date(year, month, int(parts[0]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _iso_day(value: str) -> dt.date | None:
    if len(value) != 10 or value[4] != "-" or not value.isascii():
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if 1900 <= day.year <= 2200 else None


def created_date(value: object) -> dt.date | None:
    """A version's ``created`` date ('Mon, 2 Apr 2007 19:18:42 GMT'); other spellings slowly."""
    if isinstance(value, str) and value[3:5] == ", ":
        space = value.find(" ", 5)
        # The key is "2 Apr 2007": the day, month and year words, and nothing else.
        if space > 0 and (len(value) == space + 9 or value[space + 9 : space + 10] == " "):
            day = _rfc_day(value[5 : space + 9])
            if day is not None:
                return day
    return parse_date(value, "versions[0].created")


def iso_date(value: object, field_name: str) -> dt.date | None:
    """An ISO date ('2008-11-13'); other spellings slowly."""
    if isinstance(value, str):
        day = _iso_day(value)
        if day is not None:
            return day
    return parse_date(value, field_name)


def canonical_base(text: str) -> str | None:
    """``text`` itself if it is already a canonical versionless arXiv id, else None.

    A fast subset of :func:`paperfeed.ids.parse_arxiv_id` (which the tests compare it to):
    None only means "ask the full parser".
    """
    if not text.isascii():
        return None
    size = len(text)
    if (size == 9 or size == 10) and text[4] == ".":
        if not (text[:4].isdigit() and text[5:].isdigit()):
            return None
        if not 1 <= int(text[2:4]) <= 12:
            return None
        # Five-digit numbers only exist from 1501 on; four-digit only before.
        if (size == 10) != (text[:4] >= "1501"):
            return None
        return text
    archive, slash, number = text.partition("/")
    if (
        slash
        and len(number) == 7
        and number.isdigit()
        and len(archive) >= 2
        and archive.islower()
        and archive.replace("-", "").isalpha()
        and archive[0] != "-"
        and archive[-1] != "-"
    ):
        return text
    return None


def doi_of(token: str) -> str | None:
    """``normalize_doi(token)`` for one whitespace-free token, fast for a plain '10.x/y'."""
    lowered = token.lower()
    slash = lowered.find("/")
    if (
        7 <= slash <= 12
        and lowered.startswith("10.")
        and lowered.isascii()
        and lowered[3:slash].isdigit()
        and slash + 1 < len(lowered)
        and not lowered.endswith(".")
    ):
        return lowered
    doi = normalize_doi(token)
    return _checked(doi, "doi") if doi else None


_AUTHOR_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_PARENTHESES = re.compile(r"\([^()]*\)")


def split_author_string(value: object) -> list[str]:
    """The ``authors`` string ('A. One, B. Two and C. Three (Place)'), when unparsed."""
    if not isinstance(value, str):
        return []
    text = clean_text(_PARENTHESES.sub(" ", value))
    return [name for name in _AUTHOR_SPLIT.split(text) if name]


def _authors_slowly(parsed: list[object], fallback: object) -> list[str]:
    names: list[str] = []
    for item in parsed:
        if not isinstance(item, list) or not item:
            return split_author_string(fallback)
        last = item[0]
        first = item[1] if len(item) > 1 else ""
        suffix = item[2] if len(item) > 2 else ""
        if not (isinstance(last, str) and isinstance(first, str) and isinstance(suffix, str)):
            return split_author_string(fallback)
        name = clean_text(f"{first} {last} {suffix}")
        if name:
            names.append(_checked(name, "authors_parsed"))
    return names or split_author_string(fallback)


def authors_of(parsed: object, fallback: object) -> list[str]:
    """'First Last Suffix' from ``authors_parsed`` ([last, first, suffix, affiliation...])."""
    if not isinstance(parsed, list) or not parsed:
        return split_author_string(fallback)
    try:
        # The common shape, [last, first, suffix] strings; `+` (unlike an f-string) refuses
        # non-strings, and any other shape falls to the careful loop.
        names = [
            (first + " " + last if first else last) + (" " + suffix if suffix else "")
            for last, first, suffix in parsed
        ]
        # One check over all names instead of one per name: with "|" between them, clean
        # names show no double space, no space beside a "|", no empty name, no odd character.
        joined = "|".join(names)
    except (TypeError, ValueError):
        return _authors_slowly(parsed, fallback)
    if (
        "  " in joined
        or " |" in joined
        or "| " in joined
        or "||" in joined
        or joined[:1] in ("", " ", "|")
        or joined[-1:] in (" ", "|")
        or not joined.isprintable()
    ):
        return _authors_slowly(parsed, fallback)
    return names


def build(obj: dict[str, object], source: str) -> Paper:
    """The paper of one snapshot record; raises RecordError for a bad record."""
    title = obj.get("title")
    if not isinstance(title, str) or not (title := collapse_title(title)):
        raise RecordError("missing title")
    raw_id = obj.get("id")
    if raw_id is None or raw_id == "":
        raise RecordError("missing id")
    if not isinstance(raw_id, str):
        # A number cannot be trusted: 0704.0010 would have lost its zeros.
        raise RecordError(f"field 'id' must be a string, not {raw_id!r:.40}")

    abstract = obj.get("abstract")
    abstract = collapse(abstract) if isinstance(abstract, str) else ""
    authors = authors_of(obj.get("authors_parsed"), obj.get("authors"))
    categories = obj.get("categories")
    category_list = (
        _checked(categories, "categories").split() if isinstance(categories, str) else []
    )

    doi: str | None = None
    raw_doi = obj.get("doi")
    if isinstance(raw_doi, str) and raw_doi:
        # A few records list several DOIs; the first is the paper's. A malformed DOI is
        # dropped rather than the record: the arXiv id identifies it anyway.
        first_doi = raw_doi.split(maxsplit=1)
        doi = doi_of(first_doi[0]) if first_doi else None

    created: object = None
    versions = obj.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        created = versions[0].get("created")
    published = created_date(created) if created is not None else None
    updated = iso_date(obj.get("update_date"), "update_date")

    base = canonical_base(raw_id)
    if base is None:
        paper = new_paper(
            title=title,
            abstract=abstract,
            authors=authors,
            categories=category_list,
            arxiv_id=raw_id,
            doi=doi,
            published=published,
            updated=updated,
            source=source,
        )
        if paper.arxiv_id is None:
            raise RecordError(f"invalid arXiv id in field 'id': {raw_id[:80]!r}")
        return paper
    # What new_paper() gives for a canonical id (the tests hold the two to the same result).
    return Paper(
        id=base,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        categories=tuple(dict.fromkeys(category_list))
        if len(category_list) > 1
        else tuple(category_list),
        arxiv_id=base,
        doi=doi,
        published=published,
        updated=updated,
        links=Links(abs=_ABS + base, pdf=_PDF + base),
        sources=(source,),
    )


_ABS = "https://arxiv.org/abs/"
_PDF = "https://arxiv.org/pdf/"


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    source = ctx.source

    def item(number: int, raw: bytes, obj: dict[str, object]) -> Item:
        try:
            paper = build(obj, source)
        except (RecordError, ValueError) as exc:
            return Rejected(f"line {number}", str(exc), excerpt(raw))
        return Parsed(paper, f"line {number}")

    return iter_json_lines(bounded_lines(stream), ctx, item)
