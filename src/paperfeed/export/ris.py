"""RIS export: one ``GEN`` record per paper (the type Zotero uses when it cannot tell).

Tags: TI, AU (``Last, First, Suffix``), PY, DA (``YYYY/MM/DD/``), AB, DO, UR (the abstract
page), L1 (the PDF), KW (arXiv categories), ID (the paperfeed id). Lines end with CRLF as
in the RIS specification; every value is on one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO

from paperfeed.export import name_parts
from paperfeed.model import Paper


def _author(name: str) -> str:
    parts = name_parts(name)
    last = " ".join(p for p in (parts.von, parts.last) if p)
    return ", ".join(p for p in (last, parts.first, parts.jr) if p)


def lines(paper: Paper) -> Iterator[tuple[str, str]]:
    yield "TY", "GEN"
    yield "TI", paper.title
    for author in paper.authors:
        yield "AU", _author(author)
    if paper.published:
        yield "PY", str(paper.published.year)
        yield "DA", paper.published.strftime("%Y/%m/%d/")
    if paper.abstract:
        yield "AB", paper.abstract
    if paper.doi:
        yield "DO", paper.doi
    if paper.links.abs:
        yield "UR", paper.links.abs
    if paper.links.pdf:
        yield "L1", paper.links.pdf
    for category in paper.categories:
        yield "KW", category
    yield "ID", paper.id
    yield "ER", ""


def write(papers: Iterable[Paper], out: TextIO) -> int:
    count = 0
    for paper in papers:
        for tag, value in lines(paper):
            out.write(f"{tag}  - {' '.join(value.split())}\r\n")
        out.write("\r\n")
        count += 1
    return count
