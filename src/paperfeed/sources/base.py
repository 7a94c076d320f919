"""What every input parser shares: the items it yields and small field helpers.

A parser is a function ``parse(stream, context) -> Iterator[Item]`` where ``stream`` is a
binary file object (so that broken encodings can be caught per record) and each item is
either a :class:`Parsed` record or a :class:`Rejected` one. A parser raises
:class:`paperfeed.errors.FormatError` only when nothing at all can be read; any other
exception escaping a parser is a bug (the fuzz tests check this).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from dateutil import parser as date_parser

from paperfeed.model import ListingEntry, Paper

RAW_EXCERPT = 2000


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a parser knows about its input besides its bytes."""

    source: str  # short source name recorded on papers, e.g. "bibtex", "arxiv-snapshot"
    listing: str  # identity of this listing/file for appearances, e.g. "hf-pages/000.txt"
    path: str = "-"
    # Dates printed without a year ("Mar 13") resolve to the latest such day on or before this.
    today: dt.date = field(default_factory=dt.date.today)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A good record: the paper, where it was, and its listing entry when it was listed."""

    paper: Paper
    locator: str
    entry: ListingEntry | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad record: where it was (``line 12``, ``record 3``, ``entry smith2020``) and why."""

    locator: str
    reason: str
    raw: str = ""


Item = Parsed | Rejected
Parser = Callable[[IO[bytes], ParseContext], Iterator[Item]]


class RecordError(ValueError):
    """Raised inside a parser for one bad record; the parser turns it into ``Rejected``."""


def excerpt(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    return raw[:RAW_EXCERPT]


def decode_record(raw: bytes, what: str = "record") -> str:
    """Decode UTF-8 (a BOM is dropped) or raise RecordError naming the bad byte offset."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1]
        raise RecordError(
            f"broken encoding: {what} is not valid UTF-8 (byte {exc.start}: {bad!r})"
        ) from None
    return text.removeprefix("\ufeff")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: object) -> str:
    """Whitespace collapsed, control characters removed; non-strings give ''."""
    if not isinstance(value, str):
        return ""
    return " ".join(_CONTROL.sub(" ", value).split())


def parse_date(value: object, field_name: str) -> dt.date | None:
    """Parse a date in any common spelling; empty gives None, garbage raises RecordError."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise RecordError(f"unparsable date in field '{field_name}': {value!r}")
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{4}", text):
        return dt.date(int(text), 1, 1)
    if re.fullmatch(r"\d{4}-\d{2}", text):
        try:
            return dt.date(int(text[:4]), int(text[5:7]), 1)
        except ValueError:
            raise RecordError(f"unparsable date in field '{field_name}': {text!r}") from None
    try:
        # A fixed default means missing parts never silently take today's values.
        parsed = date_parser.parse(text, default=dt.datetime(1900, 1, 1), ignoretz=True)
    except (ValueError, OverflowError, TypeError):
        raise RecordError(f"unparsable date in field '{field_name}': {text[:80]!r}") from None
    if not re.search(r"\d{4}", text):
        raise RecordError(f"date without a year in field '{field_name}': {text[:80]!r}")
    if not 1900 <= parsed.year <= 2200:
        raise RecordError(f"implausible year in field '{field_name}': {text[:80]!r}")
    return parsed.date()


def split_authors(value: object) -> list[str]:
    """Authors from a list, or from a string separated by ';', ' and ' or ','."""
    if isinstance(value, list):
        names: list[str] = []
        for item in value:
            if isinstance(item, str):
                names.append(clean_text(item))
            elif isinstance(item, dict):
                name = item.get("name") or " ".join(
                    str(item.get(k, "")) for k in ("given", "family") if item.get(k)
                )
                names.append(clean_text(name))
        return [n for n in names if n]
    if not isinstance(value, str):
        return []
    text = clean_text(value)
    if not text:
        return []
    if ";" in text:
        parts = text.split(";")
    else:
        by_and = re.split(r"\s+and\s+", text)
        if len(by_and) > 1 and all(part.count(",") == 1 for part in by_and):
            parts = by_and  # BibTeX style: "Last, First and Last, First"
        else:
            # "A, B and C", "A and B", "A, B, and C" all split into names.
            parts = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", text)
    return [p.strip() for p in parts if p.strip()]


def split_categories(value: object) -> list[str]:
    if isinstance(value, list):
        return [clean_text(v) for v in value if isinstance(v, str) and clean_text(v)]
    if isinstance(value, str):
        return [c for c in re.split(r"[\s,;]+", value) if c]
    return []


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line without its newline) for a binary stream."""
    for number, line in enumerate(stream, start=1):
        yield number, line.rstrip(b"\r\n")
