"""RIS (``.ris``) files, as exported by Zotero, Mendeley, EndNote and publisher sites.

A record is the lines from ``TY  - <type>`` to ``ER  - ``; each tag line is two characters
(a capital letter, then a capital letter or a digit), up to two spaces, ``-``, a space and
the value; a line without a tag continues the previous value (multi-line abstracts).
rispy is not used for reading: it needs the whole text, keeps no line numbers and drops a
bad record silently. This reader streams the file line by line, one record in memory.

Decisions worth knowing:
- A record is accepted only when closed by ``ER``. One cut off by the end of the file, or
  by the next ``TY`` line, is rejected as truncated (its abstract or author list may be
  incomplete); it stays visible in the quarantine.
- Tag lines before any ``TY`` (a record whose start line is missing) are rejected at their
  ``ER``; other text outside records (export headers such as ``Provider: ...``) is skipped.
- ``A2`` (editors, secondary authors) are not authors. ``KW`` keywords become categories
  only when they are arXiv categories (``cs.CL``); Zotero's ``Computer Science - ...``
  subjects are not categories.
- Dates: ``DA`` / ``Y1`` / ``PY`` in the RIS form ``YYYY/MM/DD/other`` (any part may be
  empty: ``2023///``) or ISO ``YYYY-MM-DD``; the most precise one wins; a year alone gives
  January 1 of that year. Any malformed date field rejects the record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from paperfeed.errors import FormatError
from paperfeed.ids import find_arxiv_id_in_text, is_arxiv_category, parse_arxiv_id
from paperfeed.model import Links, Paper, new_paper
from paperfeed.sources.base import (
    RAW_EXCERPT,
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    decode_record,
    iter_lines,
)
from paperfeed.sources.bibtex import parse_loose_date

# Zotero's importer accepts one or two spaces before the dash; so do we. The value may be
# missing entirely on an "ER  -" line whose trailing space an editor stripped.
_TAG_LINE = re.compile(rb"([A-Z][A-Z0-9]) {1,2}-(?: (.*)|\s*)$")
_URL_SPLIT = re.compile(r"[\s;]+")
_GIVE_UP_AFTER = 1000


@dataclass(slots=True)
class _Record:
    number: int  # 1-based position among records
    line: int  # line of its first tag
    started_by_ty: bool
    tags: list[tuple[str, str]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    encoding_error: str | None = None

    @property
    def locator(self) -> str:
        return f"record {self.number} (line {self.line})"

    def add_raw(self, line: bytes) -> None:
        if len(self.raw) < RAW_EXCERPT * 2:
            self.raw += line + b"\n"

    def raw_text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")[:RAW_EXCERPT]


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    record: _Record | None = None
    count = 0
    for number, line in iter_lines(stream):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        match = _TAG_LINE.match(line)
        if match is None:
            if count == 0 and number >= _GIVE_UP_AFTER:
                break  # a thousand lines without a tag: this is not RIS
            if record is not None:
                record.add_raw(line)
                text = _decode_value(record, line, line, number)
                if text.strip() and record.tags:
                    tag, value = record.tags[-1]
                    record.tags[-1] = (tag, f"{value}\n{text}" if value else text)
            continue
        tag = match.group(1).decode("ascii")
        if tag == "TY":
            if record is not None:
                yield _unterminated(record, f"no ER line before the next TY (line {number})")
            count += 1
            record = _Record(count, number, started_by_ty=True)
        elif record is None:
            if tag == "ER":
                continue  # a stray end tag closes nothing
            count += 1
            record = _Record(count, number, started_by_ty=False)
        record.add_raw(line)
        value = _decode_value(record, line, match.group(2) or b"", number)
        if tag == "ER":
            yield _finish(record, ctx)
            record = None
            continue
        record.tags.append((tag, value))
    if record is not None:
        yield _unterminated(record, "end of file before its ER line")
    if count == 0:
        raise FormatError(f"{ctx.path}: no RIS records found (no 'TY  - ' line)")


def _unterminated(record: _Record, why: str) -> Rejected:
    if record.started_by_ty:
        return Rejected(record.locator, f"truncated record: {why}", record.raw_text())
    return Rejected(
        record.locator, f"tag lines outside a record (no TY line): {why}", record.raw_text()
    )


def _decode_value(record: _Record, line: bytes, value: bytes, number: int) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        if record.encoding_error is None:
            try:
                decode_record(line, f"line {number}")
            except RecordError as exc:
                record.encoding_error = str(exc)
        return ""


def _finish(record: _Record, ctx: ParseContext) -> Item:
    if not record.started_by_ty:
        return Rejected(record.locator, "record does not start with a TY line", record.raw_text())
    if record.encoding_error:
        return Rejected(record.locator, record.encoding_error, record.raw_text())
    try:
        paper = _paper(record, ctx)
    except RecordError as exc:
        return Rejected(record.locator, str(exc), record.raw_text())
    return Parsed(paper, record.locator)


def _paper(record: _Record, ctx: ParseContext) -> Paper:
    values: dict[str, list[str]] = {}
    for tag, value in record.tags:
        text = clean_text(value)
        if text:
            values.setdefault(tag, []).append(text)

    def first(*tags: str) -> str:
        for tag in tags:
            if tag in values:
                return values[tag][0]
        return ""

    title = first("TI", "T1", "CT")
    if not title:
        raise RecordError("missing title")

    # AU (current spec) and A1 (older spec) both list the authors; a file uses one of them,
    # and two authors may share a name, so the lists are not merged or deduplicated.
    author_tag = "AU" if any(tag == "AU" for tag, _ in record.tags) else "A1"
    authors = [
        _display_name(clean_text(name))
        for tag, value in record.tags
        if tag == author_tag
        for name in value.split(";")
        if clean_text(name)
    ]

    urls = [u for v in values.get("UR", []) for u in _URL_SPLIT.split(v) if u]
    arxiv_id = _arxiv_id(values, urls)
    links = Links()
    for url in urls:
        if re.match(r"https?://", url, re.IGNORECASE) and not parse_arxiv_id(url):
            links = Links(abs=url)
            break
    pdfs = [u for v in values.get("L1", []) for u in _URL_SPLIT.split(v)]
    pdf = next((u for u in pdfs if re.match(r"https?://", u, re.IGNORECASE)), None)
    if pdf and not parse_arxiv_id(pdf):
        links = Links(abs=links.abs, pdf=pdf)

    categories = [
        kw
        for v in values.get("KW", [])
        for kw in (k.strip() for k in v.split(";"))
        if is_arxiv_category(kw)
    ]
    try:
        return new_paper(
            title=title,
            abstract=first("AB", "N2"),
            authors=authors,
            categories=categories,
            arxiv_id=arxiv_id,
            doi=first("DO") or None,
            published=_published(values),
            links=links,
            source=ctx.source,
        )
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def _display_name(name: str) -> str:
    """``Last, First`` (and ``Last, First, Suffix``) as ``First Last``; other forms unchanged."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return name.strip(" ,")
    return " ".join([parts[1], parts[0], *[p for p in parts[2:] if p]])


def _arxiv_id(values: dict[str, list[str]], urls: list[str]) -> str | None:
    candidates = [*values.get("DO", []), *urls, *values.get("L1", []), *values.get("ID", [])]
    for candidate in candidates:
        parsed = parse_arxiv_id(candidate)
        if parsed:
            return str(parsed)
    # Zotero puts "arXiv:1706.03762 [cs]" in N1; others use the journal fields.
    for tag in ("N1", "M1", "M3", "AN", "JO", "JF", "T2", "J2"):
        for value in values.get(tag, []):
            found = find_arxiv_id_in_text(value)
            if found:
                return found
    return None


def _published(values: dict[str, list[str]]) -> dt.date | None:
    best: tuple[int, dt.date] | None = None
    for tag in ("DA", "Y1", "PY"):
        for value in values.get(tag, []):
            parsed = _ris_date(value, tag)
            if parsed and (best is None or parsed[0] > best[0]):
                best = parsed
    return best[1] if best else None


def _ris_date(value: str, tag: str) -> tuple[int, dt.date] | None:
    """(precision 1-3, date) from ``2023``, ``2023/03/14/``, ``2023///``, ``2023-03-14``, ..."""
    text = value.strip()
    bad = RecordError(f"unparsable date in field '{tag}': {text[:80]!r}")
    if re.fullmatch(r"\d{4}(/.*)?", text, re.ASCII | re.DOTALL):
        year, month, day, *_ = [p.strip() for p in text.split("/", 3)] + ["", ""]
        if not re.fullmatch(r"(\d{1,2})?", month, re.ASCII) or not re.fullmatch(
            r"(\d{1,2})?", day, re.ASCII
        ):
            raise bad
        if day and not month:
            raise bad
        try:
            date = dt.date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            raise bad from None
        if not 1000 <= date.year <= 2200:
            raise RecordError(f"implausible year in field '{tag}': {text[:80]!r}")
        return (3 if day else 2 if month else 1), date
    return parse_loose_date(text, tag)
