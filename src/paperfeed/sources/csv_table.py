"""CSV (or TSV) with a header row naming the documented fields (:mod:`.fields`).

The delimiter is the one of ``,`` ``;`` tab that makes the header show a ``title`` column
(an Excel ``sep=;`` first line is honoured). Quoted fields may span lines; a locator names
the line a record starts on. Lines are decoded one by one, so a line that is not UTF-8
only costs its own record. A record with the wrong number of columns is rejected, and when
it spanned several lines (typically an unbalanced quote swallowing the lines after it),
only its first line is rejected and the following lines are read again as records.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from typing import IO

from paperfeed.errors import FormatError
from paperfeed.sources.base import Item, ParseContext, Parsed, RecordError, Rejected
from paperfeed.sources.fields import build_record, field_key, text_excerpt
from paperfeed.sources.jsonl_table import MAX_LINE, bounded_lines

_DELIMITERS = (",", ";", "\t")

# (line number, text with its line end, what is wrong with the line or None)
_Line = tuple[int, str, str | None]


class _Lines:
    """The text lines fed to ``csv.reader``, remembering which ones each record used.

    Lines can be pushed back to be read again (after a record that swallowed them).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._source = bounded_lines(stream)
        self.pending: deque[_Line] = deque()
        self.taken: list[_Line] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pending:
            line = self.pending.popleft()
        else:
            number, raw, complete = next(self._source)
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            problem: str | None = None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 1]
                problem = (
                    f"broken encoding: line {number} is not valid UTF-8 (byte {exc.start}: {bad!r})"
                )
                text = raw.decode("utf-8", "surrogateescape")
            if not complete:
                problem = f"line {number} is too long (over {MAX_LINE} bytes)"
                text += "\n"
            line = (number, text, problem)
        self.taken.append(line)
        return line[1]

    def push_back(self, lines: list[_Line]) -> None:
        self.pending.extendleft(reversed(lines))


def _header_delimiter(line: str) -> str | None:
    """The delimiter that makes ``line`` a header with a title column (the widest wins)."""
    best: tuple[int, str] | None = None
    for delimiter in _DELIMITERS:
        try:
            cells = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            continue
        has_title = any(field_key(cell) == "title" for cell in cells)
        if has_title and (best is None or len(cells) > best[0]):
            best = (len(cells), delimiter)
    return best[1] if best else None


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    lines = _Lines(stream)
    first: _Line | None = None
    for text in lines:
        if text.strip():
            first = lines.taken[-1]
            break
    if first is None:
        raise FormatError(f"{ctx.path}: the file is empty")
    text = first[1]
    declared = text.rstrip("\r\n")
    if len(declared) == 5 and declared.lower().startswith("sep=") and declared[4] in ",;\t|":
        delimiter: str | None = declared[4]
    else:
        delimiter = _header_delimiter(text)
        lines.push_back([first])
    if delimiter is None:
        raise FormatError(f"{ctx.path}: no 'title' column in the CSV header {text.strip()[:200]!r}")

    reader = csv.reader(lines, delimiter=delimiter)
    lines.taken = []
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise FormatError(f"{ctx.path}: unreadable CSV header: {exc}") from None
    columns = [field_key(name) for name in header]
    if "title" not in columns:
        raise FormatError(f"{ctx.path}: no 'title' column in the CSV header {header[:20]!r}")

    while True:
        lines.taken = []
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = None
            reason = f"malformed CSV: {exc}"
        taken = lines.taken
        if not taken:
            return
        locator = f"line {taken[0][0]}"
        raw = "".join(line[1] for line in taken)
        if row is not None:
            if not any(cell.strip() for cell in row):
                continue  # a blank line, or a row of empty cells
            problem = next((line[2] for line in taken if line[2]), None)
            if problem is not None:
                yield Rejected(locator, problem, text_excerpt(raw))
                continue
            if len(row) == len(columns):
                yield _row_item(row, columns, locator, raw, ctx)
                continue
            reason = f"row has {len(row)} columns, the header has {len(columns)}"
        if len(taken) > 1:
            # Probably an unbalanced quote: only the first line is known to be bad.
            lines.push_back(taken[1:])
            raw = taken[0][1]
        yield Rejected(locator, reason, text_excerpt(raw))


def _row_item(
    row: list[str], columns: list[str | None], locator: str, raw: str, ctx: ParseContext
) -> Item:
    record: dict[str, object] = {}
    for key, value in zip(columns, row, strict=True):
        if key is not None and value.strip():
            record.setdefault(key, value)
    try:
        paper, entry = build_record(record, ctx)
    except (RecordError, ValueError) as exc:
        return Rejected(locator, str(exc), text_excerpt(raw))
    return Parsed(paper, locator, entry)
