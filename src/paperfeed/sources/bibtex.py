"""BibTeX / BibLaTeX libraries (``.bib``): one paper per entry.

bibtexparser 2 splits the file into blocks. Its splitter recovers at the next line that
starts with ``@``, so an entry with unbalanced braces becomes one failed block and never
swallows the entries after it. The field values are evaluated here rather than by its
middlewares, because its string interpolation does not handle ``#`` concatenation and its
LaTeX decoder would corrupt URLs and DOIs (``%`` starts a LaTeX comment, ``~`` is a space).
Text fields (title, abstract, author names) are decoded with its LatexDecodingMiddleware.

The whole file is read at once: libraries are small, and ``@string`` macros may be used
anywhere after their definition. It is decoded with ``surrogateescape`` so that one bad byte
rejects only the entry that holds it.

Dates: ``date`` (BibLaTeX, ``2023-03-14``) wins over ``year`` / ``month`` / ``day``; a year
without a month gives January 1 of that year, no year gives no date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import bibtexparser
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexDecodingMiddleware
from bibtexparser.middlewares.names import (
    NameParts,
    parse_single_name_into_parts,
    split_multiple_persons_names,
)
from bibtexparser.model import (
    Block,
    DuplicateBlockKeyBlock,
    Entry,
    Field,
    ImplicitComment,
    ParsingFailedBlock,
    String,
)

from paperfeed.errors import FormatError
from paperfeed.ids import find_arxiv_id_in_text, is_arxiv_category, parse_arxiv_id
from paperfeed.model import Links, Paper, new_paper
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

# Entry types that are containers or data blocks rather than works.
_NOT_RECORDS = {"comment", "preamble", "string", "xdata", "set"}

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH_NAMES = (
    *("January", "February", "March", "April", "May", "June", "July"),
    *("August", "September", "October", "November", "December"),
)
# BibTeX's standard styles predefine the month macros; a user @string may override them.
_BUILTIN_MACROS = {abbr: _MONTH_NAMES[n - 1] for abbr, n in _MONTHS.items()}

_SURROGATE = re.compile("[\udc80-\udcff]")
_BLOCK_HEAD = re.compile(r"@\s*([A-Za-z_]\w*)\s*[{(]\s*([^,\s{}()\"=#]*)")
_BLOCK_START_LINE = re.compile(r"^[ \t]*@", re.MULTILINE)
_BARE_TOKEN = re.compile(r"[^\s#{}\"]+")

# An arXiv id written inside free text: "arXiv preprint arXiv:2301.12345", "arXiv:1706.03762 [cs]".
_CORR_VOLUME = re.compile(r"^abs/(\S+)$")
_ISO_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[T ][0-9:.+Z -]*)?", re.ASCII)
_ORDINALS = {"st", "nd", "rd", "th"}


def parse_loose_date(text: str, field_name: str) -> tuple[int, dt.date] | None:
    """(precision: 1 year, 2 month, 3 day; date) from ISO dates (``2023``, ``2023-03``,
    ``2023-03-14``, ``2023-03-14T10:00Z``) or dates in words (``14 March 2023``).

    Other text is rejected before it reaches dateutil, which guesses at anything
    ("20A3R1" is a date with a time zone named R to it).
    """
    text = text.strip()
    if not text:
        return None
    bad = RecordError(f"unparsable date in field '{field_name}': {text[:80]!r}")
    iso = _ISO_DATE.fullmatch(text)
    if iso:
        year, month, day = (int(g) if g else None for g in iso.groups())
        try:
            date = dt.date(year or 0, month or 1, day or 1)
        except ValueError:
            raise bad from None
        if not 1000 <= date.year <= 2200:
            raise RecordError(f"implausible year in field '{field_name}': {text[:80]!r}")
        return (3 if day else 2 if month else 1), date
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text) if w.lower() not in _ORDINALS]
    if (
        not re.fullmatch(r"[A-Za-z0-9 ,.]+", text)
        or not words
        or any(w[:3] not in _MONTHS for w in words)
    ):
        raise bad
    parsed = parse_date(text, field_name)
    return None if parsed is None else (3 if re.search(r"\d{4}.*\d|\d.*\d{4}", text) else 2, parsed)


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    text = stream.read().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    blocks, broken = _split(text)
    if not broken and all(isinstance(b, ImplicitComment) for b, _ in blocks):
        raise FormatError(f"{ctx.path}: no BibTeX entries found (no @type{{...}} block)")
    yield from broken

    macros = dict(_BUILTIN_MACROS)
    for block, _ in blocks:
        string = _string_of(block)
        if string is not None:
            _define_macro(string, macros)

    ordinal = 0
    for block, offset in blocks:
        item = _item(block, offset, macros, ordinal + 1, ctx)
        if item is not None:
            ordinal += 1
            yield item


# -- splitting ---------------------------------------------------------------------------


def _split(text: str) -> tuple[list[tuple[Block, int]], list[Rejected]]:
    """bibtexparser's blocks with the line offset to add to their start_line.

    The splitter is used without middlewares: values stay raw (``{...}``, ``"..."``,
    ``macro # {...}``) and are evaluated by :func:`_evaluate`. Should the splitter ever
    fail on the whole text, the text is cut at lines starting with ``@`` (where the
    splitter itself resynchronises) and each piece is split alone.
    """
    try:
        return [(b, 0) for b in _split_with_bibtexparser(text)], []
    except Exception:  # a third-party failure must cost one block, not the file
        pass
    blocks: list[tuple[Block, int]] = []
    broken: list[Rejected] = []
    starts = [m.start() for m in _BLOCK_START_LINE.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(text))
    offset = 0
    for begin, end in itertools.pairwise(starts):
        piece = text[begin:end]
        try:
            blocks.extend((b, offset) for b in _split_with_bibtexparser(piece))
        except Exception as exc:  # same reason as above
            head = _BLOCK_HEAD.match(piece.lstrip())
            key = _key_text(head.group(2)) if head else ""
            where = f"entry {key} (line {offset + 1})" if key else f"line {offset + 1}"
            detail = _safe(clean_text(str(exc)))[:200]
            reason = f"unreadable BibTeX block ({type(exc).__name__}: {detail})"
            broken.append(Rejected(where, reason, _raw(piece)))
        offset += piece.count("\n")
    return blocks, broken


def _split_with_bibtexparser(text: str) -> list[Block]:
    # parse_string is bibtexparser's documented entry point; its __init__ re-exports it
    # without marking it public for type checkers.
    library: Library = bibtexparser.parse_string(text, parse_stack=[])  # type: ignore[attr-defined]
    return list(library.blocks)


def _string_of(block: Block) -> String | None:
    if isinstance(block, String):
        return block
    if isinstance(block, DuplicateBlockKeyBlock) and isinstance(block.ignore_error_block, String):
        return block.ignore_error_block
    return None


def _define_macro(string: String, macros: dict[str, str]) -> None:
    # A malformed @string defines nothing; entries using it keep the macro's name.
    with contextlib.suppress(RecordError):
        macros[string.key.strip().lower()] = _evaluate(str(string.value), macros, "@string")


# -- one block ---------------------------------------------------------------------------


def _item(
    block: Block, offset: int, macros: dict[str, str], ordinal: int, ctx: ParseContext
) -> Item | None:
    """The Parsed / Rejected item for one block, or None for blocks that are not records."""
    line = (block.start_line or 0) + 1 + offset
    entry: Entry | None = None
    if isinstance(block, Entry):
        entry = block
    elif isinstance(block, ParsingFailedBlock) and isinstance(block.ignore_error_block, Entry):
        # A repeated citation key or a repeated field: BibTeX warns and goes on, so do we
        # (the first value of a repeated field wins, as in BibTeX).
        entry = block.ignore_error_block
    elif isinstance(block, ParsingFailedBlock):
        if _string_of(block) is not None:
            return None  # a redefined @string: it was applied as a macro override
        return _failed(block, line, ordinal)
    if entry is None or entry.entry_type.strip().lower() in _NOT_RECORDS:
        return None

    key = _key_text(entry.key)
    locator = f"entry {key} (line {line})" if key else f"entry {ordinal} (line {line})"
    raw = _raw(entry.raw or "")
    try:
        if entry.raw and _SURROGATE.search(entry.raw):
            decode_record(entry.raw.encode("utf-8", errors="surrogateescape"), "entry")
        paper = _paper(entry, macros, ctx)
    except RecordError as exc:
        return Rejected(locator, str(exc), raw)
    return Parsed(paper, locator)


def _failed(block: ParsingFailedBlock, line: int, ordinal: int) -> Rejected | None:
    raw_text = block.raw or ""
    head = _BLOCK_HEAD.match(raw_text.lstrip())
    kind = head.group(1).lower() if head else ""
    if kind in ("comment", "preamble"):
        return None
    error = block.error
    detail = _safe(clean_text(getattr(error, "abort_reason", "") or str(error)))
    detail = detail or type(error).__name__
    if kind == "string":
        return Rejected(f"@string (line {line})", f"malformed @string: {detail}", _raw(raw_text))
    key = _key_text(head.group(2)) if head else ""
    locator = f"entry {key} (line {line})" if key else f"entry {ordinal} (line {line})"
    if _SURROGATE.search(raw_text):
        reason = "broken encoding: entry is not valid UTF-8 and is malformed"
    elif "closing `}`" in detail or "closing bracket" in detail:
        reason = f"malformed entry, unbalanced braces: {detail}"
    else:
        reason = f"malformed entry: {detail}"
    return Rejected(locator, reason, _raw(raw_text))


# -- values ------------------------------------------------------------------------------


def _evaluate(value: str, macros: dict[str, str], name: str) -> str:
    """The text of a raw BibTeX value: ``{...}``, ``"..."``, numbers, macros, joined by ``#``.

    Unknown macros keep their name (BibTeX would print nothing and warn). Anything else
    after a closed value, such as a second field after a missing comma, is an error.
    """
    parts: list[str] = []
    i, n = 0, len(value)
    expect_value = True
    while True:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            break
        if not expect_value:
            if value[i] != "#":
                raise RecordError(
                    f"malformed value in field '{name}' (missing comma?): {value[:80]!r}"
                )
            i += 1
            expect_value = True
            continue
        char = value[i]
        if char == "{":
            end = _matching_brace(value, i)
            if end < 0:
                raise RecordError(f"unbalanced braces in field '{name}': {value[:80]!r}")
            parts.append(value[i + 1 : end])
            i = end + 1
        elif char == '"':
            end = _closing_quote(value, i)
            if end < 0:
                raise RecordError(f"unterminated quote in field '{name}': {value[:80]!r}")
            parts.append(value[i + 1 : end])
            i = end + 1
        else:
            match = _BARE_TOKEN.match(value, i)
            if match is None:
                raise RecordError(f"malformed value in field '{name}': {value[:80]!r}")
            token = match.group(0)
            parts.append(token if token.isdigit() else macros.get(token.lower(), token))
            i = match.end()
        expect_value = False
    return "".join(parts)


_BRACE_MARKS = re.compile(r"\\.|[{}]", re.DOTALL)
_QUOTE_MARKS = re.compile(r'\\.|[{}"]', re.DOTALL)


def _matching_brace(value: str, start: int) -> int:
    depth = 0
    for mark in _BRACE_MARKS.finditer(value, start):
        char = mark.group(0)
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return mark.start()
    return -1


def _closing_quote(value: str, start: int) -> int:
    depth = 0
    for mark in _QUOTE_MARKS.finditer(value, start + 1):
        char = mark.group(0)
        if char == "{":
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
        elif char == '"' and depth == 0:
            return mark.start()
    return -1


@dataclass(slots=True)
class _Fields:
    """An entry's fields by lower-case name (first occurrence wins), evaluated on demand."""

    raw: dict[str, str]
    macros: dict[str, str]
    cache: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: Entry, macros: dict[str, str]) -> _Fields:
        raw: dict[str, str] = {}
        for item in entry.fields:
            raw.setdefault(item.key.strip().lower(), str(item.value))
        return cls(raw, macros)

    def get(self, name: str) -> str:
        if name in self.cache:
            return self.cache[name]
        value = self.raw.get(name)
        if value is None:
            return ""
        text = _evaluate(value, self.macros, name)
        if _SURROGATE.search(text):
            raise RecordError(
                f"broken encoding: field '{name}' is not valid UTF-8 (it uses a broken @string)"
            )
        self.cache[name] = text
        return text


def _paper(entry: Entry, macros: dict[str, str], ctx: ParseContext) -> Paper:
    fields = _Fields.of(entry, macros)
    raw_title = fields.get("title")
    names = _split_names(fields.get("author"))
    title, abstract, authors = _decode_text(raw_title, fields.get("abstract"), names)
    if not title:
        raise RecordError("missing title")

    arxiv_id = _arxiv_id(fields)
    doi = _verbatim(fields.get("doi")) or None
    if doi is None and arxiv_id is None:
        # Some exports (DBLP, Zotero) only carry the DOI inside the url field.
        url = _verbatim(fields.get("url"))
        if re.match(r"https?://(dx\.)?doi\.org/", url, re.IGNORECASE):
            doi = url
    categories = [
        c
        for c in (_verbatim(fields.get("primaryclass")), _verbatim(fields.get("eprintclass")))
        if c and is_arxiv_category(c)
    ]
    try:
        return new_paper(
            title=title,
            abstract=abstract,
            authors=authors,
            categories=categories,
            arxiv_id=arxiv_id,
            doi=doi,
            published=_published(fields),
            links=_links(fields),
            source=ctx.source,
        )
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def _split_names(value: str) -> list[NameParts]:
    names: list[NameParts] = []
    try:
        persons = split_multiple_persons_names(value)
    except Exception:  # fall back to splitting on " and " ourselves
        persons = re.split(r"\s+and\s+", value)
    for person in persons:
        person = person.strip()
        if not person or person.lower() == "others":
            continue
        try:
            names.append(parse_single_name_into_parts(person, strict=False))
        except Exception:  # an unusual name is kept whole, not lost
            names.append(NameParts(last=[person]))
    return names


@functools.cache
def _decoder() -> LatexDecodingMiddleware:
    # Built on first use: the pylatexenc context it loads takes a noticeable moment.
    return LatexDecodingMiddleware(allow_inplace_modification=True)


_RAW_SPECIAL = re.compile(r"(?<!\\)([%&])")
_CIRCUMFLEX = re.compile(r"\{\\textasciicircum\}|\\textasciicircum(?:\{\})?|\\\^\{\}")
# What only a LaTeX decoder handles: commands, math, and TeX's ligatures (-- `` '' !` ?`).
_NEEDS_DECODER = re.compile(r"[\\$]|--|``|''|[!?]`")


def _decode_text(title: str, abstract: str, names: list[NameParts]) -> tuple[str, str, list[str]]:
    # A name is decoded as a whole ("First von Last Jr"), as LaTeX would typeset it.
    persons = [n.merge_first_name_first for n in names]
    decoded = _decode_all([title, abstract, *persons])
    return decoded[0], decoded[1], [p for p in decoded[2:] if p]


def _decode_all(texts: list[str]) -> list[str]:
    """LaTeX to plain text. pylatexenc is slow (milliseconds per string), so text without
    commands, math or ligatures takes a fast path: braces are grouping, ``~`` a space."""
    out = [_text_of_raw(t.replace("~", " ")) for t in texts]
    slow = [i for i, t in enumerate(texts) if _NEEDS_DECODER.search(t)]
    if not slow:
        return out
    # In LaTeX an unescaped % starts a comment and & is an alignment tab; in a .bib file
    # people mean the characters themselves. pylatexenc has no spelling that decodes to ^.
    fields = [
        Field(str(i), _CIRCUMFLEX.sub("^", _RAW_SPECIAL.sub(r"\\\1", texts[i]))) for i in slow
    ]
    try:
        result = _decoder().transform_entry(Entry("misc", "decode", fields), Library())
    except Exception:  # undecodable LaTeX is kept as written, braces dropped
        return out
    if isinstance(result, Entry):
        for i, decoded in zip(slow, result.fields, strict=True):
            # Braces left after decoding are literal characters (from \{ and \}).
            out[i] = clean_text(str(decoded.value))
    return out


def _text_of_raw(text: str) -> str:
    """Leftover braces removed (decoding failures, keys), whitespace collapsed."""
    return clean_text(re.sub(r"(?<!\\)[{}]", "", text))


def _verbatim(value: str) -> str:
    """A URL / DOI / id field: ``\\url{}`` unwrapped, TeX escapes of special characters undone."""
    text = value.strip()
    match = re.fullmatch(r"\\(?:url|href)\s*\{(.*?)\}(?:\{.*\})?", text, re.DOTALL)
    if match:
        text = match.group(1)
    text = re.sub(r"\\([_%#&$~{}])", r"\1", text)
    text = re.sub(r"(?<!\\)[{}]", "", text)
    return "".join(text.split())


def _arxiv_id(fields: _Fields) -> str | None:
    archive = clean_text(fields.get("archiveprefix") or fields.get("eprinttype")).lower()
    eprint = _verbatim(fields.get("eprint").split("[", 1)[0])
    if eprint and archive in ("", "arxiv"):
        parsed = parse_arxiv_id(eprint)
        if parsed:
            return str(parsed)
        if archive == "arxiv":
            raise RecordError(f"unparsable arXiv id in field 'eprint': {eprint[:80]!r}")
    for name in ("doi", "url", "howpublished", "pdf"):
        value = _verbatim(fields.get(name))
        parsed = parse_arxiv_id(value) if value else None
        if parsed:
            return str(parsed)
    for name in ("journal", "note", "howpublished", "booktitle", "publisher"):
        found = find_arxiv_id_in_text(fields.get(name))
        if found:
            return found
    # DBLP writes arXiv papers as journal = {CoRR}, volume = {abs/1810.04805}.
    if clean_text(fields.get("journal")).lower() == "corr":
        match = _CORR_VOLUME.match(clean_text(fields.get("volume")))
        parsed = parse_arxiv_id(match.group(1)) if match else None
        if parsed:
            return str(parsed)
    return None


def _published(fields: _Fields) -> dt.date | None:
    date_text = clean_text(fields.get("date"))
    if date_text:
        # BibLaTeX ranges ("2020-03-01/2020-03-05") and open ends ("2020/") keep their start.
        start = date_text.split("/", 1)[0].strip()
        if not start:
            raise RecordError(f"unparsable date in field 'date': {date_text[:80]!r}")
        parsed = parse_loose_date(start, "date")
        return parsed[1] if parsed else None
    year_text = clean_text(fields.get("year"))
    if not year_text:
        return None
    if not re.fullmatch(r"\d{4}", year_text, re.ASCII) or not 1000 <= int(year_text) <= 2200:
        raise RecordError(f"unparsable date in field 'year': {year_text[:80]!r}")
    month = _month(clean_text(fields.get("month")))
    day_text = clean_text(fields.get("day"))
    day = 1
    if day_text:
        if not re.fullmatch(r"\d{1,2}", day_text, re.ASCII):
            raise RecordError(f"unparsable date in field 'day': {day_text[:80]!r}")
        day = int(day_text)
    try:
        return dt.date(int(year_text), month or 1, day)
    except ValueError:
        raise RecordError(
            f"unparsable date in fields 'year'/'month'/'day': {year_text}-{month}-{day}"
        ) from None


def _month(text: str) -> int | None:
    """A month from ``3``, ``03``, ``mar``, ``March``, ``Mar.``, ``jan--feb`` (first month)."""
    if not text:
        return None
    match = re.match(r"(\d{1,2}|[A-Za-z]{3,})(?![A-Za-z0-9])", text, re.ASCII)
    token = match.group(1).lower() if match else ""
    if token.isdigit() and 1 <= int(token) <= 12:
        return int(token)
    number = _MONTHS.get(token[:3])
    if number and (_MONTH_NAMES[number - 1].lower().startswith(token) or token == "sept"):
        return number
    raise RecordError(f"unparsable date in field 'month': {text[:80]!r}")


def _links(fields: _Fields) -> Links:
    for name in ("url", "howpublished"):
        url = _verbatim(fields.get(name))
        if not re.match(r"https?://\S+$", url, re.IGNORECASE) or parse_arxiv_id(url):
            # arXiv URLs are rebuilt canonically from the arXiv id by new_paper.
            continue
        if url.lower().split("?", 1)[0].endswith(".pdf"):
            return Links(pdf=url)
        return Links(abs=url)
    return Links()


def _safe(text: str) -> str:
    """Text safe to store: undecodable bytes (kept as lone surrogates) shown as U+FFFD."""
    if _SURROGATE.search(text):
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return text


def _raw(text: str) -> str:
    return excerpt(_safe(text))


def _key_text(key: str) -> str:
    return _safe(_text_of_raw(key))[:100]
