"""Hugging Face daily-papers JSON (format ``hf-daily``): what ``/api/daily_papers`` returns.

The response is a JSON array of items shaped like::

    {"paper": {"id": "2403.08764", "title": ..., "summary": ...,
               "authors": [{"_id": ..., "name": ..., "hidden": false}, ...],
               "publishedAt": "2024-03-13T17:59:56.000Z", "submittedOnDailyAt": ...,
               "upvotes": 12, "githubRepo": ..., "projectPage": ..., ...},
     "publishedAt": "2024-03-14T00:44:25.913Z", "title": ..., "summary": ...,
     "thumbnail": ..., "numComments": 3, "submittedBy": {...}, ...}

(the shape of ``huggingface_hub.PaperInfo`` and of the API's OpenAPI description).
``paper.publishedAt`` is the arXiv publication time; ``paper.submittedOnDailyAt`` and the
top-level ``publishedAt`` are when the paper was put on the daily page, which is the feed
day of its listing entry (in that order of preference). ``rank`` is the 1-based position
in the array.

Mapping: ``paper.id`` -> arXiv id (and so the paper id; a non-arXiv id leaves a title
id), ``paper.title`` (else ``title``), ``paper.summary`` (else ``summary``) -> abstract,
``paper.authors[].name`` -> authors, ``paper.publishedAt`` -> published,
``paper.upvotes`` (else ``upvotes``) -> upvotes, ``paper.githubRepo`` -> links.code,
``paper.projectPage`` -> links.project. Rejected, with the element's 1-based index: a
missing title, an unparsable date, a non-numeric upvote count, a non-string id, an
element that is not an object, an element with a JSON syntax error or broken UTF-8.

Also accepted: a single item object, several items one after another (JSON lines), an
object wrapping the list (``{"papers": [...]}``, ``{"dailyPapers": [...]}``), several
arrays one after another (ranks restart with each array), and bare paper objects (the
``/api/papers/{id}`` shape, without the ``paper`` wrapper).

The array is read one element at a time (``json.JSONDecoder.raw_decode``) from a bounded
buffer, so a file cut mid-array keeps every complete element and rejects the rest as
"truncated JSON"; a syntax error inside one element rejects that element only.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import lzma
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from paperfeed.errors import FormatError
from paperfeed.model import Links, ListingEntry, new_paper
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    decode_record,
    excerpt,
    parse_date,
)

CHUNK = 1 << 16
MAX_ELEMENT = 32 << 20  # one daily-papers item is a few KB; a wrapper object may be larger
_WRAPPER_KEYS = ("papers", "dailyPapers", "daily_papers", "data", "items", "results")
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_WS = " \t\r\n"


class _Truncated(Exception):
    """The input ends inside a JSON value; ``args`` are (reason, the text read of it)."""


class _Buffer:
    """Decoded text read incrementally; undecodable bytes kept as lone surrogates.

    ``surrogateescape`` keeps a broken byte inside one element from stopping the whole
    read: the element that contains it is rejected when it is taken out. Only the unread
    part is kept, so memory stays bounded by the largest element.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text = ""
        self.pos = 0
        self.line = 1  # line number at ``pos``
        self.eof = False
        self.read_error: str | None = None
        self.started = False

    def fill(self) -> bool:
        """Read more; False at the end of the input."""
        if self.eof:
            return False
        pending = len(self.text) - self.pos
        try:
            # Growing reads keep re-decoding a large value linear in its size.
            chunk = self.stream.read(max(CHUNK, pending))
        except _READ_ERRORS as exc:
            self.read_error = f"input ends unexpectedly: {exc}"
            chunk = b""
        if not chunk:
            self.eof = True
            self.text = self.text[self.pos :] + self.decoder.decode(b"", final=True)
            self.pos = 0
            return False
        text = self.decoder.decode(chunk)
        if not self.started:
            self.started = True
            text = text.removeprefix("\ufeff")
        self.text = self.text[self.pos :] + text
        self.pos = 0
        return True

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def peek(self, skip: str = _WS) -> str:
        """Skip characters in ``skip``; the next character, or '' at the end of the input."""
        while True:
            text = self.text
            pos = self.pos
            while pos < len(text) and text[pos] in skip:
                pos += 1
            self.advance(pos)
            if pos < len(text):
                return text[pos]
            if not self.fill():
                return ""


_decoder = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class _Taken:
    value: Any
    raw: str
    line: int
    error: str | None = None


def _value_extent(text: str, start: int) -> int | None:
    """End of the object/array starting at ``start`` by bracket counting, or None.

    Used when ``raw_decode`` failed in the middle of the buffer, to skip exactly the bad
    element and go on with the next one.
    """
    depth = 0
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return None
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _take_value(buf: _Buffer) -> _Taken:
    """Decode the value at the buffer position, reading more input as needed.

    Raises ``_Truncated`` when the input ends inside the value (or the value is too large
    to hold); everything after that point is consumed, since none of it can be read.
    """
    line = buf.line
    while True:
        start = buf.pos
        text = buf.text
        try:
            value, end = _decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            opener = text[start] in "{["
            incomplete = exc.pos >= len(text) - 16 or exc.msg.startswith("Unterminated")
            too_large = len(text) - start >= MAX_ELEMENT
            # Reading more rebases the buffer, so every read is followed by a fresh try.
            if incomplete and not too_large and not buf.eof:
                buf.fill()
                continue  # the value (or a number or literal) may go on in the next read
            if opener:
                extent = _value_extent(text, start)
                if extent is not None:
                    # Brackets balance, so the value is complete but broken: skip just it.
                    where = line + text.count("\n", start, exc.pos)
                    buf.advance(extent)
                    reason = f"invalid JSON: {exc.msg}"
                    if where != line:
                        reason += f" (line {where})"
                    return _Taken(None, text[start:extent], line, reason)
                if not too_large and not buf.eof:
                    buf.fill()
                    continue
                while True:
                    buf.advance(len(buf.text))
                    if not buf.fill():
                        break
                reason = (
                    f"JSON value larger than {MAX_ELEMENT >> 20} MiB; the rest is not read"
                    if too_large
                    else "truncated JSON"
                )
                raise _Truncated(reason, text[start : start + 2000]) from None
            # A bad bare value: skip to the next line so the rest can still be read.
            newline = text.find("\n", start)
            buf.advance(newline if newline != -1 else len(text))
            return _Taken(None, text[start : start + 200], line, f"invalid JSON: {exc.msg}")
        if end == len(text) and not isinstance(value, dict | list) and not buf.eof:
            buf.fill()
            continue  # a number or literal at the end of the buffer may go on in the next read
        buf.advance(end)
        return _Taken(value, text[start:end], line)


def _excerpt(raw: str) -> str:
    """An excerpt that can be stored: undecodable bytes shown as U+FFFD."""
    return _SURROGATE.sub("\ufffd", excerpt(raw))


def _check_encoding(raw: str, what: str) -> None:
    if _SURROGATE.search(raw):
        try:
            data = raw.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            raise RecordError(f"broken encoding: {what} contains an unpaired surrogate") from None
        decode_record(data, what)


def _text_field(value: object, name: str) -> str:
    text = clean_text(value)
    if _SURROGATE.search(text):
        raise RecordError(f"broken encoding: field '{name}' contains an unpaired surrogate")
    return text


def _first(*candidates: tuple[dict[str, Any], str, str]) -> tuple[object, str]:
    """The first present, non-empty value among (object, key, field name) candidates."""
    for obj, key, name in candidates:
        value = obj.get(key)
        if value is not None and value != "":
            return value, name
    return None, candidates[0][2]


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|$)")


def _date(value: object, name: str) -> dt.date | None:
    """An API timestamp as a date (the day as written); other spellings go through parse_date."""
    if isinstance(value, str) and _ISO_DAY.match(value):
        # The API writes ISO 8601 ("2024-03-15T00:33:10.541Z"): a fast path for it.
        try:
            day = dt.datetime.fromisoformat(value).date()
        except ValueError:
            pass
        else:
            if 1900 <= day.year <= 2200:
                return day
    return parse_date(value, name)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "array"


def _upvotes(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"invalid number in field '{name}': {value!r}")
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value.is_integer():
        return max(int(value), 0)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise RecordError(f"invalid number in field '{name}': {str(value)[:40]!r}")


def _url(value: object) -> str | None:
    text = clean_text(value)
    if not text or _SURROGATE.search(text):
        return None
    if not re.match(r"https?://", text, re.I):
        # A repository given without a scheme ("github.com/x/y") still names a URL.
        if re.match(r"[\w.-]+\.[a-z]{2,}/", text, re.I):
            return "https://" + text
        return None
    return text


def _authors(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for i, author in enumerate(value):
        if isinstance(author, dict):
            raw = author.get("name")
            if not raw and isinstance(author.get("user"), dict):
                raw = author["user"].get("fullname")
        else:
            raw = author
        name = _text_field(raw, f"paper.authors[{i}].name")
        if name:
            names.append(name)
    return names


def _element(value: object, ctx: ParseContext, rank: int) -> tuple[Any, ListingEntry]:
    """Build the paper and its listing entry from one array element, or raise RecordError."""
    if not isinstance(value, dict):
        raise RecordError(f"element is a JSON {_json_type(value)}, not an object")
    if "paper" in value:
        paper = value["paper"]
        if not isinstance(paper, dict):
            raise RecordError("field 'paper' is not an object")
    else:
        paper = value
    top: dict[str, Any] = value
    bare = paper is top  # the /api/papers/{id} shape, without the "paper" wrapper
    p = "" if bare else "paper."

    # The paper object's fields win: the top-level copies are the daily page's own.
    title_value, title_field = _first((paper, "title", f"{p}title"), (top, "title", "title"))
    title = _text_field(title_value, title_field)
    if not title:
        raise RecordError("missing title")
    abstract_value, abstract_field = _first(
        (paper, "summary", f"{p}summary"), (top, "summary", "summary")
    )
    abstract = _text_field(abstract_value, abstract_field)

    arxiv_value = paper.get("id")
    if arxiv_value is not None and not isinstance(arxiv_value, str):
        raise RecordError(
            f"invalid id in field 'paper.id': {str(arxiv_value)[:40]!r} (expected a string)"
        )
    arxiv_id = _text_field(arxiv_value, "paper.id") or None

    published = _date(paper.get("publishedAt"), f"{p}publishedAt")
    day_candidates = [
        (paper, "submittedOnDailyAt", f"{p}submittedOnDailyAt"),
        (top, "submittedOnDailyAt", "submittedOnDailyAt"),
    ]
    if not bare:
        # On a daily-papers item the top-level publishedAt is when it was put on the page;
        # on a bare paper object it is the arXiv date, not a feed day.
        day_candidates.append((top, "publishedAt", "publishedAt"))
    day_value, day_field = _first(*day_candidates)
    feed_date = _date(day_value, day_field)

    upvotes_value, upvotes_field = _first(
        (paper, "upvotes", f"{p}upvotes"), (top, "upvotes", "upvotes")
    )
    upvotes = _upvotes(upvotes_value, upvotes_field)
    links = Links(
        code=_url(paper.get("githubRepo") or top.get("githubRepo")),
        project=_url(paper.get("projectPage") or top.get("projectPage")),
    )
    try:
        built = new_paper(
            title=title,
            abstract=abstract,
            authors=_authors(paper.get("authors")),
            arxiv_id=arxiv_id,
            published=published,
            links=links,
            upvotes=upvotes,
            source=ctx.source,
        )
    except ValueError as exc:
        raise RecordError(str(exc)) from None
    return built, ListingEntry(listing=ctx.listing, feed_date=feed_date, rank=rank)


def _item(taken: _Taken, locator: str, ctx: ParseContext, rank: int) -> Item:
    try:
        _check_encoding(taken.raw, "element")
        if taken.error:
            raise RecordError(taken.error)
        paper, entry = _element(taken.value, ctx, rank)
    except RecordError as exc:
        return Rejected(locator, str(exc), _excerpt(taken.raw))
    return Parsed(paper, locator, entry)


def _unwrap(value: object) -> list[Any] | None:
    """The item list inside a wrapper object (``{"papers": [...]}``), or None."""
    if not isinstance(value, dict) or "paper" in value:
        return None
    for key in _WRAPPER_KEYS:
        inner = value.get(key)
        if isinstance(inner, list):
            return inner
    return None


class _Reader:
    def __init__(self, stream: IO[bytes], ctx: ParseContext) -> None:
        self.buf = _Buffer(stream)
        self.ctx = ctx
        self.number = 0  # values seen in the whole input, for locators
        self.decoded = 0  # values decoded without a JSON error
        self.truncated = False  # the input ended inside a value: nothing more to read

    def fail(self, message: str) -> FormatError:
        return FormatError(f"{self.ctx.path}: {message}")

    def take(self, rank: int) -> Iterator[Item]:
        """The value at the buffer position as items (a wrapper object gives several)."""
        self.number += 1
        locator = f"element {self.number} (line {self.buf.line})"
        try:
            taken = _take_value(self.buf)
        except _Truncated as exc:
            self.truncated = True
            reason, raw = exc.args
            if self.decoded == 0:
                raise self.fail(f"{reason} before the first complete element") from None
            yield Rejected(locator, reason, _excerpt(raw))
            return
        if taken.error is None:
            self.decoded += 1
        elif self.decoded == 0:
            raise self.fail(f"not a daily-papers JSON response ({taken.error})")
        value = taken.value
        inner = _unwrap(value)
        if inner is not None:
            for i, element in enumerate(inner, start=1):
                raw = json.dumps(element, ensure_ascii=False)
                yield _item(_Taken(element, raw, taken.line), f"element {i}", self.ctx, i)
            return
        if (
            self.number == 1
            and isinstance(value, dict)
            and "error" in value
            and not {"title", "paper"} & value.keys()
        ):
            raise self.fail(f"the response is an API error: {str(value['error'])[:200]}")
        yield _item(taken, locator, self.ctx, rank)

    def array(self) -> Iterator[Item]:
        """The elements of an array whose '[' was just consumed; rank is the position."""
        buf = self.buf
        rank = 0
        while not self.truncated:
            ch = buf.peek(_WS + ",")
            if ch == "]":
                buf.advance(buf.pos + 1)
                return
            if not ch:
                self.truncated = True
                if self.decoded == 0:
                    raise self.fail("truncated JSON: the array is not closed")
                yield Rejected(f"line {buf.line}", "truncated JSON: the array is not closed")
                return
            rank += 1
            yield from self.take(rank)

    def run(self) -> Iterator[Item]:
        buf = self.buf
        first = buf.peek()
        if not first:
            raise self.fail(buf.read_error or "the input is empty")
        if first not in "[{":
            raise self.fail("not JSON (a daily-papers response starts with '[' or '{')")
        rank = 0  # outside an array: values one after another (JSON lines)
        while not self.truncated:
            ch = buf.peek()
            if not ch:
                break
            if ch == "[":
                buf.advance(buf.pos + 1)
                yield from self.array()
                rank = 0
                continue
            rank += 1
            yield from self.take(rank)
        if buf.read_error:
            yield Rejected(f"line {buf.line}", buf.read_error)


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    """Parse daily-papers JSON; see the module docstring for the accepted shapes."""
    yield from _Reader(stream, ctx).run()
