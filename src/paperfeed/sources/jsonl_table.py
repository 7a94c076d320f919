"""JSON lines (or one JSON array) of papers with the documented field names.

One object per line, or a file that is a single JSON array of objects. Field names are
those of :mod:`paperfeed.sources.fields`. The array form is streamed element by element
(``json.JSONDecoder.raw_decode`` over a growing buffer), so a truncated or partly broken
array keeps its complete elements.

This module also holds the JSON-lines reading shared with the BEIR and arXiv snapshot
parsers: :func:`bounded_lines` and :func:`iter_json_lines`.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from paperfeed.errors import FormatError
from paperfeed.sources.base import Item, ParseContext, Parsed, RecordError, Rejected, excerpt
from paperfeed.sources.fields import build_record, canonical_record, text_excerpt

# A longer line is rejected without being held in memory (records are a few KB).
MAX_LINE = 8 * 1024 * 1024
# If the input does not start like JSON and this many non-blank lines in a row hold no JSON
# object, it is not JSON lines at all: FormatError instead of a rejection per line.
PROBE_LINES = 1000
CHUNK = 64 * 1024
# An array element may not grow the read buffer beyond this.
MAX_ELEMENT = 8 * 1024 * 1024

Line = tuple[int, bytes, bool]

_BOM = b"\xef\xbb\xbf"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def bounded_lines(stream: IO[bytes], limit: int = MAX_LINE, start: int = 1) -> Iterator[Line]:
    """(1-based line number, line with its end, complete) for each line of a binary stream.

    A line longer than ``limit`` is cut there (``complete`` False) and the rest of it is
    skipped in ``limit``-sized reads, so memory stays bounded whatever the input.
    """
    readline = stream.readline
    number = start - 1
    while True:
        line = readline(limit)
        if not line:
            return
        number += 1
        if len(line) < limit or line.endswith(b"\n"):
            yield number, line, True
            continue
        while True:
            rest = readline(limit)
            if len(rest) < limit or rest.endswith(b"\n"):
                break
        yield number, line, False


def describe_json_error(exc: json.JSONDecodeError, text: str) -> str:
    if exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()):
        return "truncated JSON"
    return f"invalid JSON: {exc.msg} (column {exc.colno})"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _load_line(number: int, raw: bytes, complete: bool) -> dict[str, object] | Rejected:
    locator = f"line {number}"
    if not complete:
        return Rejected(locator, f"line too long (over {MAX_LINE} bytes)", excerpt(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1]
        return Rejected(
            locator,
            f"broken encoding: line is not valid UTF-8 (byte {exc.start}: {bad!r})",
            excerpt(raw),
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejected(locator, describe_json_error(exc, text), excerpt(raw))
    except RecursionError:
        return Rejected(locator, "invalid JSON: nested too deeply", excerpt(raw))
    except ValueError as exc:  # e.g. an integer beyond the int conversion limit
        return Rejected(locator, f"invalid JSON: {exc}", excerpt(raw))
    if not isinstance(value, dict):
        return Rejected(locator, f"not a JSON object (found {_json_kind(value)})", excerpt(raw))
    return value


_decode = json.JSONDecoder().decode


def iter_json_lines(
    lines: Iterable[Line],
    ctx: ParseContext,
    build: Callable[[int, bytes, dict[str, object]], Item],
) -> Iterator[Item]:
    """``build(number, raw, object)`` for each non-blank line holding a JSON object.

    Lines that are not JSON objects are yielded as Rejected; blank lines are skipped. If
    the first non-blank line does not even start like JSON, rejections are held back until
    a line holds a JSON object; if none does (within :data:`PROBE_LINES` lines), the input
    is not JSON lines and FormatError is raised.
    """
    lines = iter(lines)
    # Up to the first JSON object (or the first line, if it starts like JSON): the input
    # is still to be recognised.
    held: list[Rejected] | None = None
    seen = recognised = False
    for number, raw, complete in lines:
        if not seen:
            raw = raw.removeprefix(_BOM)
            if not raw or raw.isspace():
                continue
            seen = True
            if raw.lstrip()[:1] not in (b"{", b"["):
                held = []
        elif raw.isspace():
            continue
        loaded = _load_line(number, raw, complete)
        if not isinstance(loaded, Rejected):
            yield from held or ()
            yield build(number, raw, loaded)
            recognised = True
            break
        if held is None:
            yield loaded
            recognised = True
            break
        held.append(loaded)
        if len(held) >= PROBE_LINES:
            break
    if not seen:
        raise FormatError(f"{ctx.path}: the file is empty")
    if not recognised:
        first = f" ({held[0].locator}: {held[0].reason})" if held else ""
        raise FormatError(f"{ctx.path}: not JSON lines{first}; no line holds a JSON object")
    # The hot loop: errors (and the rare blank line) take the slow path for their reason.
    for number, raw, complete in lines:
        try:
            if not complete:
                raise ValueError
            value = _decode(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            if raw.isspace():
                continue
            yield _item(number, raw, complete, build)
            continue
        if type(value) is dict:
            yield build(number, raw, value)
        else:
            yield _item(number, raw, complete, build)  # a rejection naming what it is


def _item(
    number: int,
    raw: bytes,
    complete: bool,
    build: Callable[[int, bytes, dict[str, object]], Item],
) -> Item:
    loaded = _load_line(number, raw, complete)
    return loaded if isinstance(loaded, Rejected) else build(number, raw, loaded)


def _record_item(
    locator: str, raw: bytes | str, value: dict[str, object], ctx: ParseContext
) -> Item:
    try:
        paper, entry = build_record(canonical_record(value), ctx)
    except (RecordError, ValueError) as exc:
        return Rejected(
            locator, str(exc), excerpt(raw) if isinstance(raw, bytes) else text_excerpt(raw)
        )
    return Parsed(paper, locator, entry)


class _ArrayReader:
    """A text window over the stream: decoded incrementally, trimmed as elements are used.

    Bytes that are not UTF-8 decode to lone surrogates (``surrogateescape``) so that only
    the element holding them is rejected.
    """

    def __init__(self, stream: IO[bytes], head: bytes, head_line: int) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.buf = self.decoder.decode(head.removeprefix(_BOM))
        self.pos = 0
        self.eof = False
        # Line number of buf[counted] (for locators), advanced lazily.
        self.counted = 0
        self.line = head_line

    def line_at(self, index: int) -> int:
        self.line += self.buf.count("\n", self.counted, index)
        self.counted = index
        return self.line

    def more(self, want: int = CHUNK) -> bool:
        """Read at least ``want`` more bytes (dropping what is consumed); False at EOF."""
        if self.eof:
            return False
        if self.pos:
            self.line_at(self.pos)
            self.buf = self.buf[self.pos :]
            self.counted -= self.pos
            self.pos = 0
        data = self.stream.read(max(want, CHUNK))
        if not data:
            self.eof = True
            self.buf += self.decoder.decode(b"", final=True)
            return False
        self.buf += self.decoder.decode(data)
        return True

    def skip_space(self) -> str:
        """The next non-blank character (consumed up to it), or '' at EOF."""
        while True:
            buf = self.buf
            pos = self.pos
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.more():
                return ""

    def end_of_value(self, start: int) -> int | None:
        """Where the (broken) JSON value starting at ``start`` ends, by its brackets.

        Used only to skip a bad element; a closing bracket of the wrong kind closes
        everything up to its own opener (a missing ``]`` does not swallow the elements
        after it). None when the value runs to the end of the input.
        """
        stack: list[str] = []
        in_string = False
        escaped = False
        index = start
        while True:
            buf = self.buf
            while index < len(buf):
                ch = buf[index]
                if in_string:
                    if escaped:
                        escaped = False
                    elif ch == "\\":
                        escaped = True
                    elif ch == '"':
                        in_string = False
                elif ch == '"':
                    in_string = True
                elif ch in "{[":
                    stack.append("}" if ch == "{" else "]")
                elif ch in "}]":
                    if not stack:
                        return index  # the array's own closing bracket, or a stray one
                    if ch in stack:
                        while stack.pop() != ch:
                            pass
                    if not stack:
                        return index + 1
                elif ch == "," and not stack:
                    return index
                index += 1
            offset = self.pos
            if len(buf) - start > MAX_ELEMENT or not self.more():
                return None
            # more() trimmed the buffer: shift our indexes with it.
            start -= offset
            index -= offset


def _needs_more(exc: json.JSONDecodeError, buf: str) -> bool:
    # A value cut by the end of the buffer fails either on its unterminated string or at
    # (or just before, for a cut literal such as `tr`) the end of the buffer.
    return exc.msg.startswith("Unterminated string") or len(buf) - exc.pos <= 8


@dataclass(frozen=True, slots=True)
class _Bad:
    reason: str
    raw: str
    final: bool  # nothing can be read after it


def _decode_element(reader: _ArrayReader, decoder: json.JSONDecoder) -> tuple[object, str] | _Bad:
    """Decode the element at ``reader.pos`` and move past it (past its extent when broken)."""
    while True:
        start = reader.pos
        try:
            value, end = decoder.raw_decode(reader.buf, start)
        except json.JSONDecodeError as exc:
            if _needs_more(exc, reader.buf):
                if len(reader.buf) - start <= MAX_ELEMENT and reader.more(len(reader.buf) - start):
                    continue
                if reader.eof:
                    return _Bad("truncated JSON", reader.buf[reader.pos :], final=True)
            reason = f"invalid JSON: {exc.msg}"
        except RecursionError:
            reason = "invalid JSON: nested too deeply"
        except ValueError as exc:  # e.g. an integer beyond the int conversion limit
            reason = f"invalid JSON: {exc}"
        else:
            reader.pos = end
            return value, reader.buf[start:end]
        stop = reader.end_of_value(start)
        start = reader.pos  # end_of_value may have trimmed the buffer
        if stop is None:
            return _Bad(reason, reader.buf[start:], final=True)
        # Always move on, even when the bad value is a lone stray character.
        reader.pos = max(stop, start + 1)
        return _Bad(reason, reader.buf[start : reader.pos], final=False)


def _parse_array(
    stream: IO[bytes], ctx: ParseContext, head: bytes, head_line: int
) -> Iterator[Item]:
    reader = _ArrayReader(stream, head, head_line)
    decoder = json.JSONDecoder()
    reader.skip_space()
    reader.pos += 1  # the opening '['
    index = 0
    expect_value = True
    while True:
        ch = reader.skip_space()
        if not ch:
            return  # an array cut between elements keeps everything before the cut
        if ch == "]":
            reader.pos += 1
            ch = reader.skip_space()
            if not ch:
                return
            if ch == "[":  # several arrays one after the other
                reader.pos += 1
                expect_value = True
                continue
            line = reader.line_at(reader.pos)
            rest = reader.buf[reader.pos : reader.pos + 200]
            reason = "unexpected text after the JSON array"
            yield Rejected(f"line {line}", reason, text_excerpt(rest))
            return
        if ch == "," and not expect_value:
            reader.pos += 1
            expect_value = True
            continue
        # (Two elements without a comma between them: the second is read anyway.)
        index += 1
        locator = f"element {index} (line {reader.line_at(reader.pos)})"
        expect_value = False
        outcome = _decode_element(reader, decoder)
        if isinstance(outcome, _Bad):
            yield Rejected(locator, outcome.reason, text_excerpt(outcome.raw))
            if outcome.final:
                return
            continue
        value, raw_text = outcome
        bad = _ESCAPED_BYTE.search(raw_text)
        if bad is not None:
            byte = ord(bad.group()) - 0xDC00
            yield Rejected(
                locator,
                f"broken encoding: element is not valid UTF-8 (byte 0x{byte:02x})",
                text_excerpt(raw_text),
            )
        elif not isinstance(value, dict):
            yield Rejected(
                locator, f"not a JSON object (found {_json_kind(value)})", text_excerpt(raw_text)
            )
        else:
            yield _record_item(locator, raw_text, value, ctx)


def _line_item(number: int, raw: bytes, value: dict[str, object], ctx: ParseContext) -> Item:
    return _record_item(f"line {number}", raw, value, ctx)


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    # The first line is read in CHUNK-sized pieces: a whole file may be one compact array.
    number = 1
    head = stream.readline(CHUNK).removeprefix(_BOM)
    while head and head.isspace():
        if head.endswith(b"\n"):
            number += 1
        head = stream.readline(CHUNK)
    if head.lstrip().startswith(b"["):
        yield from _parse_array(stream, ctx, head, number)
        return
    complete = True
    if len(head) == CHUNK and not head.endswith(b"\n"):
        head += stream.readline(MAX_LINE - CHUNK)
        if len(head) >= MAX_LINE and not head.endswith(b"\n"):
            complete = False
            while True:  # skip the rest of the overlong line
                rest = stream.readline(MAX_LINE)
                if len(rest) < MAX_LINE or rest.endswith(b"\n"):
                    break
    lines: Iterable[Line] = bounded_lines(stream, start=number + 1)
    if head:
        lines = itertools.chain([(number, head, complete)], lines)
    yield from iter_json_lines(lines, ctx, functools.partial(_line_item, ctx=ctx))
