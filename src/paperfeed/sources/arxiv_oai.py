"""arXiv OAI-PMH responses (format ``oai-pmh``).

Reads ``ListRecords`` (and ``GetRecord``) responses of ``export.arxiv.org/oai2`` in the
``arXiv``, ``arXivRaw`` and ``arXivOld`` metadata formats, as a stream. Deleted records
(``<header status="deleted">``) are skipped and counted; ``noRecordsMatch`` is an empty
result; any other OAI-PMH error (``badArgument``, ``badResumptionToken``, ...) is a
:class:`~paperfeed.errors.FormatError` carrying the repository's message.

:func:`parse` is the ingest entry point (a bulk harvest, so no listing entries);
:func:`parse_page` reads one whole response page for a harvester and also returns the
resumption token and the number of deleted records.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from xml.etree.ElementTree import Element

from paperfeed.errors import FormatError
from paperfeed.ids import parse_arxiv_id
from paperfeed.model import Paper, new_paper
from paperfeed.sources.arxiv_text import detex_name, first_doi, split_author_string
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    split_categories,
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

_WANTED = frozenset({"record", "resumptionToken", "error"})
_FORMATS = frozenset({"arXiv", "arXivRaw", "arXivOld"})
_OAI_PREFIX = re.compile(r"^oai:arxiv\.org:", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OaiPage:
    """One ListRecords response: its records and what a harvester needs to go on."""

    items: list[Item]
    resumption_token: str | None  # None on the last page (empty token) or without one
    complete_list_size: int | None
    cursor: int | None
    deleted: int  # records marked deleted, skipped


@dataclass(slots=True)
class _PageState:
    resumption_token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    deleted: int = 0


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    yield from _records(stream, ctx, _PageState())


def parse_page(data: bytes, ctx: ParseContext) -> OaiPage:
    """Read one response page whole (pages are bounded: arXiv sends ~1000 records each)."""
    state = _PageState()
    items = list(_records(io.BytesIO(data), ctx, state))
    return OaiPage(
        items=items,
        resumption_token=state.resumption_token,
        complete_list_size=state.complete_list_size,
        cursor=state.cursor,
        deleted=state.deleted,
    )


def _records(stream: IO[bytes], ctx: ParseContext, state: _PageState) -> Iterator[Item]:
    reader = XmlReader(stream, _WANTED)
    number = 0
    parsed_any = False
    for node in reader.nodes():
        elem = node.element
        name = local_name(elem.tag)
        if node.is_root:
            if name != "OAI-PMH":
                raise FormatError(
                    f"{ctx.path}: not an OAI-PMH response (the root element is <{name}>)"
                )
        elif name == "error":
            code = clean_text(elem.get("code") or "")
            if code == "noRecordsMatch":
                continue
            message = text_of(elem) or "no message"
            raise FormatError(f"{ctx.path}: OAI-PMH error {code or '(no code)'}: {message}")
        elif name == "resumptionToken":
            _read_token(elem, state)
        else:
            number += 1
            item = _record_item(elem, number, node.line, ctx, parsed_any)
            if item is None:
                state.deleted += 1
                continue
            parsed_any = parsed_any or isinstance(item, Parsed)
            yield item
    if reader.empty and not reader.read_failed:
        raise FormatError(f"{ctx.path}: the input is empty")
    if reader.failure is not None:
        if not reader.saw_root:
            raise FormatError(f"{ctx.path}: not an XML document ({reader.failure.message})")
        yield failure_item(reader.failure, f"record {number}" if number else "the response header")


def _int_attr(elem: Element, name: str) -> int | None:
    value = (elem.get(name) or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def _read_token(elem: Element, state: _PageState) -> None:
    state.resumption_token = text_of(elem) or None
    state.complete_list_size = _int_attr(elem, "completeListSize")
    state.cursor = _int_attr(elem, "cursor")


def _child(elem: Element | None, name: str) -> Element | None:
    if elem is None:
        return None
    for child in elem:
        if local_name(child.tag) == name:
            return child
    return None


def _record_item(
    elem: Element, number: int, line: int, ctx: ParseContext, parsed_any: bool
) -> Item | None:
    """The record as an item, or None for a deleted record."""
    header = _child(elem, "header")
    if header is not None and header.get("status") == "deleted":
        return None
    identifier = text_of(_child(header, "identifier"))
    metadata = _child(elem, "metadata")
    body = next(iter(metadata), None) if metadata is not None else None
    if not identifier and body is not None:
        identifier = text_of(_child(body, "id"))
    where = f"{identifier[:100]}, line {line}" if identifier else f"line {line}"
    locator = f"record {number} ({where})"
    try:
        if has_broken_encoding(elem):
            raise RecordError("broken encoding: the record contains bytes that are not valid UTF-8")
        if body is None:
            raise RecordError("missing metadata")
        fmt = local_name(body.tag)
        if fmt not in _FORMATS:
            message = (
                f"unsupported metadata format <{fmt}>: "
                "harvest with metadataPrefix=arXiv or arXivRaw"
            )
            if not parsed_any:
                # One response has one metadata format: if the first record cannot be read,
                # none can, and the page as a whole is the wrong input.
                raise FormatError(f"{ctx.path}: {message}")
            raise RecordError(message)
        paper = _paper(body, fmt, identifier, ctx)
    except ValueError as exc:
        return Rejected(locator=locator, reason=str(exc), raw=element_excerpt(elem))
    return Parsed(paper=paper, locator=locator, entry=None)


def _paper(body: Element, fmt: str, identifier: str, ctx: ParseContext) -> Paper:
    fields: dict[str, str] = {}
    authors: list[str] = []
    versions: list[tuple[int, int, str]] = []  # (version number, position, date text)
    for position, child in enumerate(body):
        name = local_name(child.tag)
        if name == "authors" and fmt == "arXiv":
            authors = [a for a in (_author_name(a) for a in child) if a]
        elif name == "version":
            label = (child.get("version") or "").strip().lstrip("vV")
            number = int(label) if label.isdigit() and len(label) < 6 else position
            versions.append((number, position, text_of(_child(child, "date"))))
        elif name not in fields:
            fields[name] = text_of(child)
    if fmt != "arXiv":
        authors = split_author_string(fields.get("authors", ""))
    if fmt == "arXivRaw":
        published, updated = _version_dates(versions)
    else:
        published = quick_date(fields.get("created"), "created")
        updated = quick_date(fields.get("updated"), "updated")
    arxiv_id = fields.get("id") or _OAI_PREFIX.sub("", identifier)
    title = fields.get("title", "")
    if not title:
        raise RecordError("missing title")
    return new_paper(
        title=title,
        abstract=fields.get("abstract", ""),
        authors=authors,
        categories=split_categories(fields.get("categories", "")),
        arxiv_id=arxiv_id if parse_arxiv_id(arxiv_id) else None,
        doi=first_doi(fields.get("doi", "")),
        published=published,
        updated=updated,
        source=ctx.source,
    )


def _author_name(author: Element) -> str:
    if local_name(author.tag) != "author":
        return ""
    parts = {local_name(c.tag): text_of(c) for c in author}
    name = " ".join(parts.get(k, "") for k in ("forenames", "keyname", "suffix"))
    return detex_name(clean_text(name))


def _version_dates(versions: list[tuple[int, int, str]]) -> tuple[dt.date | None, dt.date | None]:
    """First and last version dates, by version number (arXivRaw does not promise order)."""
    if not versions:
        return None, None
    ordered = sorted(versions)
    first_number, _, first_text = ordered[0]
    last_number, _, last_text = ordered[-1]
    published = quick_date(first_text, f"version v{first_number} date")
    updated = quick_date(last_text, f"version v{last_number} date")
    return published, updated
