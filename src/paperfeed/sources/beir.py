"""A BEIR corpus: ``corpus.jsonl`` lines ``{"_id", "title", "text", "metadata"}``.

The standard layout of the BEIR benchmarks (SciFact, TREC-COVID, ...), used for
evaluation and for generic corpora. ``title`` becomes the title and ``text`` the abstract;
an ``_id`` that is an arXiv id, and a ``doi`` in ``metadata``, give the paper's identity.
Every locator carries the document's ``_id`` (``line 12 (_id 4983)``) so that evaluation
can map judged document ids to papers: :func:`beir_doc_id` reads it back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import IO

from paperfeed.ids import normalize_doi, parse_arxiv_id
from paperfeed.model import new_paper
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    excerpt,
)
from paperfeed.sources.fields import check_encodable
from paperfeed.sources.jsonl_table import bounded_lines, iter_json_lines

_ID_MARK = " (_id "


def beir_doc_id(item: Parsed | Rejected) -> str | None:
    """The BEIR ``_id`` of an item this parser produced (None if it had none)."""
    _, mark, rest = item.locator.partition(_ID_MARK)
    if not mark or not rest.endswith(")"):
        return None
    return rest[:-1]


def _doc_id(value: object) -> str:
    if isinstance(value, bool):
        return ""
    if isinstance(value, (str, int)):
        return str(value)
    return ""


def _metadata_doi(metadata: object) -> str | None:
    if not isinstance(metadata, dict):
        return None
    for key, value in metadata.items():
        if isinstance(key, str) and key.lower() == "doi" and isinstance(value, str):
            return normalize_doi(value)
    return None


def _item(number: int, raw: bytes, obj: dict[str, object], ctx: ParseContext) -> Item:
    doc_id = _doc_id(obj.get("_id"))
    if not doc_id.isprintable():
        # A locator is one printed line, read back by beir_doc_id.
        return Rejected(f"line {number}", f"invalid _id: {doc_id[:80]!r}", excerpt(raw))
    locator = f"line {number}{_ID_MARK}{doc_id})" if doc_id else f"line {number}"
    try:
        if not doc_id:
            raise RecordError("missing _id")
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            raise RecordError("field 'title' must be text")
        text = obj.get("text")
        if text is not None and not isinstance(text, str):
            raise RecordError("field 'text' must be text")
        parsed = parse_arxiv_id(doc_id)
        paper = new_paper(
            title=clean_text(title),
            abstract=clean_text(text),
            arxiv_id=parsed.base if parsed else None,
            doi=_metadata_doi(obj.get("metadata")),
            source=ctx.source,
        )
        check_encodable(paper)
    except (RecordError, ValueError) as exc:
        return Rejected(locator, str(exc), excerpt(raw))
    return Parsed(paper, locator)


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    return iter_json_lines(bounded_lines(stream), ctx, functools.partial(_item, ctx=ctx))
