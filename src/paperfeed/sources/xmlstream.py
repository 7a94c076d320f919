"""Streaming XML for the arXiv feeds: a defused expat parser fed in chunks.

:class:`XmlReader` hands back each wanted element once it is complete and detaches it
from the tree, so memory stays flat however long the feed is; bytes that are not UTF-8
are marked so that only the record holding them is rejected; a break in the document
becomes one :func:`failure_item` after the records completed before it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from paperfeed.sources.base import (
    Rejected,
    clean_text,
    excerpt,
    parse_date,
)

CHUNK_SIZE = 64 * 1024
MAX_DEPTH = 64
CONTEXT_LINES = 3

# A Unicode noncharacter stands in for bytes that are not UTF-8: expat accepts it, real
# metadata never contains it, so a record holding it is known to have had broken bytes.
BROKEN_MARKER = "\ufdd0"
# Lone surrogates come from undecodable bytes (surrogateescape); the rest are characters
# XML 1.0 forbids, which would otherwise stop expat for the whole remaining document.
_NOT_XML_CHARS = re.compile("[\udc80-\udcff\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)")
_UTF8_NAMES = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_NS_DECL = re.compile(r'\s+xmlns:ns\d+="[^"]*"')
_NS_PREFIX = re.compile(r"(</?)ns\d+:")


def local_name(tag: object) -> str:
    """``{namespace}name`` -> ``name``; arXiv's element names never clash across namespaces."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def text_of(elem: Element | None) -> str:
    """All text inside an element, whitespace collapsed."""
    if elem is None:
        return ""
    return clean_text("".join(elem.itertext()))


_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*$")
_RFC822_DATE = re.compile(r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def quick_date(value: str | None, field_name: str) -> dt.date | None:
    """:func:`parse_date` with a fast path for the two spellings arXiv uses.

    ISO 8601 (Atom, OAI ``arXiv``) and RFC 822 (RSS, OAI ``arXivRaw``) are read directly;
    dateutil, ten times slower, only sees the rest and words the errors.
    """
    if value:
        iso = _ISO_DATE.match(value)
        parts = iso.groups() if iso else None
        if parts is None:
            rfc = _RFC822_DATE.match(value)
            month = _MONTHS.get(rfc.group(2).lower()) if rfc else None
            if rfc and month:
                parts = (rfc.group(3), str(month), rfc.group(1))
        if parts is not None and 1900 <= int(parts[0]) <= 2200:
            try:
                return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                pass
    return parse_date(value or None, field_name)


def has_broken_encoding(elem: Element) -> bool:
    for node in elem.iter():
        if BROKEN_MARKER in (node.text or "") or BROKEN_MARKER in (node.tail or ""):
            return True
        if any(BROKEN_MARKER in value for value in node.attrib.values()):
            return True
    return False


def element_excerpt(elem: Element) -> str:
    """The record re-serialized, without the ``ns0:`` prefixes ElementTree invents."""
    text = tostring(elem, encoding="unicode")
    text = _NS_DECL.sub("", text)
    return excerpt(_NS_PREFIX.sub(r"\1", text))


@dataclass(frozen=True, slots=True)
class Node:
    """A complete wanted element (or, once, the root as soon as it opens) and its line."""

    element: Element
    line: int
    is_root: bool = False


@dataclass(frozen=True, slots=True)
class XmlFailure:
    """Why the document stopped being readable, and where."""

    line: int
    message: str
    tail: str


class _TooDeep(ValueError):
    pass


class _Builder(TreeBuilder):
    """A tree builder that reports wanted elements when they close and then forgets them."""

    def __init__(self, wanted: frozenset[str]) -> None:
        super().__init__()
        self._wanted = wanted
        self._stack: list[tuple[Element, int, bool]] = []
        self._inside_wanted = False
        self.expat: Any = None
        self.ready: list[Node] = []

    @property
    def line(self) -> int:
        return int(self.expat.CurrentLineNumber) if self.expat is not None else 0

    def start(self, tag: Any, attrs: dict[Any, Any], /) -> Element:
        elem = super().start(tag, attrs)
        if len(self._stack) >= MAX_DEPTH:
            # Bounded depth keeps every later walk over a record free of recursion limits.
            raise _TooDeep(f"elements nested deeper than {MAX_DEPTH} levels")
        wanted = not self._inside_wanted and local_name(tag) in self._wanted
        if wanted:
            self._inside_wanted = True
        if not self._stack:
            self.ready.append(Node(elem, self.line, is_root=True))
        self._stack.append((elem, self.line, wanted))
        return elem

    def end(self, tag: str, /) -> Element:
        elem = super().end(tag)
        _, line, wanted = self._stack.pop()
        if wanted:
            self._inside_wanted = False
            self.ready.append(Node(elem, line))
        if not self._inside_wanted and self._stack:
            # Outside the wanted records nothing is kept: the tree stays one record deep.
            self._stack[-1][0].remove(elem)
        return elem


class XmlReader:
    """Stream an XML document through a defused expat parser, chunk by chunk.

    :meth:`nodes` yields the root element as soon as it opens, then every element whose
    local name is in ``wanted`` (outermost only) as soon as it closes. When the document
    breaks off (malformed, truncated, unreadable), the nodes completed before the break
    are still yielded, then iteration ends and :attr:`failure` says where and why.
    """

    def __init__(self, stream: IO[bytes], wanted: frozenset[str]) -> None:
        self._stream = stream
        self._builder = _Builder(wanted)
        self._decoder: codecs.IncrementalDecoder | None = None
        self._raw = False
        # The last two chunks fed, for showing the lines around a break.
        self._previous = b""
        self._current = b""
        self._previous_first_line = 1
        self.failure: XmlFailure | None = None
        self.saw_root = False
        self.empty = True
        self.read_failed = False

    def nodes(self) -> Iterator[Node]:
        builder = self._builder
        parser = DefusedXMLParser(target=builder)
        builder.expat = parser.parser
        # read1 hands over what a compressed stream has decoded so far, so a truncated
        # gzip file loses only its last block, not the whole last chunk.
        read = getattr(self._stream, "read1", None) or self._stream.read
        first = True
        while True:
            try:
                chunk = read(CHUNK_SIZE)
            except (OSError, EOFError, zlib.error) as exc:
                # A truncated or corrupt gzip stream shows up here, not as bad XML.
                self.read_failed = True
                self._fail(builder.line, f"input could not be read: {exc}")
                break
            if first:
                self._choose_mode(chunk)
                first = False
            final = not chunk
            if self.empty and chunk.strip():
                self.empty = False
            data = self._prepare(chunk, final)
            self._previous_first_line += self._previous.count(b"\n")
            self._previous, self._current = self._current, data
            try:
                if data:
                    parser.feed(data)
                if final:
                    parser.close()
            except ParseError as exc:
                self._fail(exc.position[0], _expat_message(exc))
            except _TooDeep as exc:
                self._fail(builder.line, str(exc))
            except DefusedXmlException as exc:
                self._fail(builder.line, f"forbidden XML construct ({type(exc).__name__})")
            for node in builder.ready:
                if node.is_root:
                    self.saw_root = True
                yield node
            builder.ready.clear()
            if final or self.failure is not None:
                break

    def _fail(self, line: int, message: str) -> None:
        self.failure = XmlFailure(line=line, message=message, tail=self._context(line))

    def _context(self, line: int) -> str:
        lines = (self._previous + self._current).split(b"\n")
        at = line - self._previous_first_line
        if not 0 <= at < len(lines):
            return excerpt(b"\n".join(lines[-2 * CONTEXT_LINES :]))
        return excerpt(b"\n".join(lines[max(0, at - CONTEXT_LINES) : at + CONTEXT_LINES]))

    def _choose_mode(self, head: bytes) -> None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[:2] in (
            b"\x00<",
            b"<\x00",
        ):
            self._raw = True
            return
        match = _XML_DECL_ENCODING.match(head.removeprefix(codecs.BOM_UTF8)[:300])
        if match and match.group(1).lower() not in _UTF8_NAMES:
            # A declared legacy encoding is left to expat; only UTF-8 is checked here.
            self._raw = True
            return
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")

    def _prepare(self, chunk: bytes, final: bool) -> bytes:
        if self._raw or self._decoder is None:
            return chunk
        text = self._decoder.decode(chunk, final)
        if _NOT_XML_CHARS.search(text):
            text = _NOT_XML_CHARS.sub(_replace_bad_char, text)
        return text.encode("utf-8")


def _replace_bad_char(match: re.Match[str]) -> str:
    return BROKEN_MARKER if "\udc80" <= match.group() <= "\udcff" else " "


def _expat_message(exc: ParseError) -> str:
    return re.sub(r":\s*line \d+, column \d+$", "", str(exc))


def failure_item(failure: XmlFailure, after: str) -> Rejected:
    """The one Rejected item standing for everything after the break."""
    return Rejected(
        locator=f"line {failure.line} (after {after})",
        reason=f"truncated or malformed XML at line {failure.line}: {failure.message}",
        raw=failure.tail,
    )
