"""Writers for papers: JSON, JSON lines, CSV, BibTeX and RIS (PRODUCT.md, "Export / takeout").

Each writer is ``write(papers, out) -> int``: it streams the papers to a text stream as it
iterates them (never the whole output in memory) and returns how many it wrote.
:data:`EXPORTERS` is the registry; :func:`get_exporter` imports a writer on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from paperfeed.errors import PaperfeedError
from paperfeed.model import Paper

if TYPE_CHECKING:
    from paperfeed.store import PaperQuery, Store

Exporter = Callable[[Iterable[Paper], TextIO], int]


@dataclass(frozen=True, slots=True)
class ExporterInfo:
    name: str
    module: str
    function: str
    extension: str
    media_type: str
    description: str


EXPORTERS: dict[str, ExporterInfo] = {
    e.name: e
    for e in (
        ExporterInfo("json", "json_doc", "write", ".json", "application/json", "a JSON array"),
        ExporterInfo(
            "jsonl", "json_doc", "write_lines", ".jsonl", "application/jsonl", "JSON lines"
        ),
        ExporterInfo("csv", "csv_table", "write", ".csv", "text/csv", "CSV with one row per paper"),
        ExporterInfo(
            "bibtex", "bibtex", "write", ".bib", "application/x-bibtex", "BibTeX (@misc entries)"
        ),
        ExporterInfo("ris", "ris", "write", ".ris", "application/x-research-info-systems", "RIS"),
    )
}


def get_exporter(name: str) -> Exporter:
    info = EXPORTERS.get(name)
    if info is None:
        raise PaperfeedError(
            f"unknown export format {name!r}; choose one of: {', '.join(EXPORTERS)}"
        )
    module = importlib.import_module(f"paperfeed.export.{info.module}")
    writer: Exporter = getattr(module, info.function)
    return writer


def export_papers(store: Store, query: PaperQuery, fmt: str, out: TextIO) -> int:
    """Write the papers the query selects, streamed from the store; returns how many."""
    writer = get_exporter(fmt)
    return writer(store.iter_papers(query), out)


@dataclass(frozen=True, slots=True)
class NameParts:
    """A display name ("Jan van der Berg", "John Smith Jr.") cut into BibTeX's four parts."""

    first: str
    von: str
    last: str
    jr: str


_SUFFIXES = {"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"}


def name_parts(name: str) -> NameParts:
    """Cut a "First von Last Jr." display name; a "Last, First" name is read as such.

    The last word is the last name; lower-case words just before it are its "von" part,
    unless nothing would be left for the first name ("bell hooks").
    """
    name = " ".join(name.split())
    if "," in name:
        last, _, rest = name.partition(",")
        first, _, jr = (p.strip() for p in rest.partition(","))
        if jr and first and first.lower().strip(".") in {s.strip(".") for s in _SUFFIXES}:
            first, jr = jr, first  # "Smith, Jr., John"
        surname = last.split()
        particles: list[str] = []
        while len(surname) > 1 and surname[0][:1].islower():
            particles.append(surname.pop(0))
        return NameParts(first=first, von=" ".join(particles), last=" ".join(surname), jr=jr)
    words = name.split(" ")
    jr = ""
    if len(words) > 2 and words[-1].lower() in _SUFFIXES:
        jr = words.pop()
    if len(words) == 1:
        return NameParts(first="", von="", last=words[0], jr=jr)
    last = words.pop()
    von: list[str] = []
    while len(words) > 1 and words[-1][:1].islower():
        von.insert(0, words.pop())
    return NameParts(first=" ".join(words), von=" ".join(von), last=last, jr=jr)


__all__ = ["EXPORTERS", "Exporter", "ExporterInfo", "export_papers", "get_exporter"]
