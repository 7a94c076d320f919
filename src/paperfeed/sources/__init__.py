"""Input formats: one module per format, each exposing ``parse(stream, context)``.

:data:`FORMATS` is the registry (name -> module and description); :func:`detect_format`
picks one from a file's name and first bytes; :func:`get_parser` imports it on demand so
that a command never pays for parsers it does not use.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import PurePath

from paperfeed.errors import FormatError
from paperfeed.sources.base import Parser


@dataclass(frozen=True, slots=True)
class FormatInfo:
    name: str
    module: str
    description: str


FORMATS: dict[str, FormatInfo] = {
    f.name: f
    for f in (
        FormatInfo("listing", "listing_page", "saved listing page text (title + abstract)"),
        FormatInfo("hf-daily", "hf_daily", "Hugging Face daily-papers JSON (/api/daily_papers)"),
        FormatInfo("arxiv-atom", "arxiv_atom", "arXiv query API Atom feed"),
        FormatInfo("oai-pmh", "arxiv_oai", "arXiv OAI-PMH ListRecords (arXiv / arXivRaw)"),
        FormatInfo("arxiv-snapshot", "arxiv_snapshot", "arXiv bulk metadata snapshot (JSON lines)"),
        FormatInfo("bibtex", "bibtex", "BibTeX (.bib)"),
        FormatInfo("ris", "ris", "RIS (.ris)"),
        FormatInfo("csv", "csv_table", "CSV with documented column names"),
        FormatInfo("jsonl", "jsonl_table", "JSON lines or a JSON array, documented field names"),
        FormatInfo("beir", "beir", "BEIR corpus.jsonl (_id, title, text)"),
    )
}

_EXTENSIONS = {
    ".bib": "bibtex",
    ".bibtex": "bibtex",
    ".ris": "ris",
    ".csv": "csv",
    ".tsv": "csv",
}


def get_parser(name: str) -> Parser:
    info = FORMATS.get(name)
    if info is None:
        raise FormatError(f"unknown format {name!r}; choose one of: {', '.join(FORMATS)}")
    module = importlib.import_module(f"paperfeed.sources.{info.module}")
    parser: Parser = module.parse
    return parser


def _strip_compression_suffix(name: str) -> str:
    for suffix in (".gz", ".bz2", ".xz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect_format(path: str, head: bytes) -> str:
    """Guess the format of an input from its name and its first few KB (decompressed).

    Content wins over the extension for JSON and XML (a ``.json`` file may hold daily
    papers, a snapshot or a generic list); text formats fall back to the extension.
    """
    name = _strip_compression_suffix(PurePath(path).name.lower())
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise FormatError(f"{path}: the file is empty")
    if "\x00" in text[:1000]:
        raise FormatError(f"{path}: this looks like a binary file, not a paper list")
    if text.startswith("<"):
        if re.search(r"<(?:\w+:)?OAI-PMH\b", text):
            return "oai-pmh"
        if re.search(r"<rss\b", text) and "arxiv.org" in text:
            return "arxiv-atom"  # arXiv's RSS 2.0 listing feed, read by the same parser
        if re.search(r"<(?:\w+:)?feed\b", text):
            return "arxiv-atom"
        raise FormatError(
            f"{path}: XML that is neither an Atom feed nor an OAI-PMH response; use --format"
        )
    if text.startswith("["):
        # A JSON array: the daily-papers API shape has a nested "paper" object.
        if re.search(r'"paper"\s*:\s*\{', text[:20000]):
            return "hf-daily"
        return "jsonl"
    if text.startswith("{"):
        first_line = text.split("\n", 1)[0]
        keys: set[str] = set()
        try:
            obj = json.loads(first_line)
            if isinstance(obj, dict):
                keys = set(obj)
        except ValueError:
            keys = set(re.findall(r'"([A-Za-z_]+)"\s*:', first_line))
        if "_id" in keys and "text" in keys:
            return "beir"
        snapshot_keys = {"versions", "authors_parsed", "update_date", "submitter"}
        if {"id", "abstract"} <= keys and keys & snapshot_keys:
            return "arxiv-snapshot"
        if "paper" in keys and "title" in keys:
            return "hf-daily"
        return "jsonl"
    ext = PurePath(name).suffix
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if re.match(r"(?:%[^\n]*\n\s*)*@\s*[A-Za-z]+\s*[{(]", text):
        return "bibtex"
    if re.match(r"TY {2}- ", text):
        return "ris"
    entry_types = r"article|inproceedings|misc|book|techreport|phdthesis"
    if re.search(rf"@\s*(?:{entry_types})\s*\{{", text[:5000], re.I):
        return "bibtex"
    first = text.split("\n", 1)[0].lower()
    if "," in first and re.search(r"\btitle\b", first) and len(first) < 500:
        return "csv"
    return "listing"
