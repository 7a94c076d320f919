"""Saved listing pages of a daily-papers site (format ``listing``).

What a browser's "save as text" (or a copy-paste) of a daily-papers page gives: a few
header lines ("Get trending papers in your email inbox!", "Subscribe", "by AK and the
research community", a date such as ``Mar 13``), then one entry per paper: a title line
followed by an abstract paragraph. No ids are printed, so papers get title-hash ids.

The layout varies in the wild, so nothing here depends on blank lines or exact wording:

* Each non-empty line is scored as a title or an abstract from its own shape (length,
  sentence breaks, final punctuation, how it starts and ends); lines that could be either
  are settled by what comes before them (a line right after a title is its abstract).
* Header text may be glued to the first title (``Mar 13SpaRP: ...``, ``SubscribeSpaRP``);
  known header phrases and the date are cut off the start of lines until the first entry.
* A date line (``Mar 13``, ``March 13``, ``Mar 13, 2024``, ``2024-03-13``,
  ``Friday, Mar 13``, ``13 March 2024``) sets ``feed_date``. A date without a year is the
  latest such day on or before ``ctx.today``; a date with a year is used as is. No date
  line gives ``feed_date=None``. A second, different date line further down starts a new
  feed day and ranks restart at 1 there.
* Saved pages joined into one file work: a page header line ("Subscribe", "Get trending
  papers ...", "by AK and the research community", or header text glued to a title)
  after entries starts the next page, with its own date and ranks from 1.
* A title whose abstract is missing (a title line followed by another title line) is kept
  with an empty abstract when it looks like a title (two or more words, starts like a
  title, no URL or page decoration), and rejected otherwise. Before the date line (or,
  without one, before the first complete entry) such lines are page header and skipped.
* Navigation and footer lines ("Previous", "Load more", "© 2024 ...", "Models Datasets
  Spaces Docs") are skipped; unrecognised lines after the last complete entry are footer
  and skipped too, while the same lines between two entries are rejected.
* Hard-wrapped text (a page saved at a fixed width such as 72 columns) is joined back:
  inside a paragraph of adjacent lines, a line continues the previous one when the
  previous line is full at the paragraph's wrap width (see ``_Reflow``); a title line
  above its wrapped abstract in the same paragraph stays a title. Otherwise an abstract
  line continues onto the next adjacent line when that is recognisable (it starts in
  lower case, the previous line ends mid-sentence, or the page separates entries with
  blank lines so adjacent lines belong together).
* CRLF and lone-CR line ends, a BOM, non-breaking spaces and gzip input are accepted.

``rank`` is the 1-based position of the entry on the page (for its date); an entry
rejected for broken encoding keeps its place in the count, since it was on the page.
"""

from __future__ import annotations

import datetime as dt
import enum
import lzma
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from paperfeed.errors import FormatError
from paperfeed.model import ListingEntry, new_paper
from paperfeed.sources.base import (
    Item,
    ParseContext,
    Parsed,
    RecordError,
    Rejected,
    clean_text,
    decode_record,
    excerpt,
)

MAX_LINE = 1 << 20  # an abstract is a few KB; a longer line is not part of a listing page
RAW_LINE_EXCERPT = 2000
_SNIFF_BYTES = 8192
_MAX_DEFERRED = 1000

# --- dates ------------------------------------------------------------------------------

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_ORDINAL = r"(?:(?-i:st|nd|rd|th)(?![A-Za-z]))?"
_DATE_MDY = re.compile(
    rf"{_WEEKDAY}(?P<mon>[a-z]{{3,9}})\.?\s+(?P<day>\d{{1,2}})(?P<ord>{_ORDINAL})"
    r"(?:,?\s+(?P<year>\d{4})(?!\d))?",
    re.IGNORECASE,
)
_DATE_DMY = re.compile(
    rf"{_WEEKDAY}(?P<day>\d{{1,2}}){_ORDINAL}\s+(?P<mon>[a-z]{{3,9}})\.?"
    r"(?:,?\s+(?P<year>\d{4})(?!\d))?",
    re.IGNORECASE,
)
_DATE_ISO = re.compile(r"(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})(?!\d)")


def _month_number(name: str) -> int | None:
    name = name.lower()
    if len(name) < 3:
        return None
    for number, full in enumerate(_MONTHS, start=1):
        if full.startswith(name) or (name == "sept" and number == 9):
            return number
    return None


def _resolve(year: int | None, month: int, day: int, today: dt.date) -> dt.date | None:
    """The date, or for a yearless day the latest such day on or before ``today``."""
    if year is not None:
        try:
            return dt.date(year, month, day)
        except ValueError:
            return None
    # Eight years back always contains a Feb 29.
    for y in range(today.year, today.year - 9, -1):
        try:
            candidate = dt.date(y, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def _date_from_match(m: re.Match[str], today: dt.date, *, day: str | None = None) -> dt.date | None:
    groups = m.groupdict()
    year = int(groups["year"]) if groups.get("year") else None
    month = _month_number(groups["mon"]) if "mon" in groups else int(groups["month"])
    if month is None or not 1 <= month <= 12:
        return None
    if year is not None and not 1900 <= year <= 2200:
        return None
    return _resolve(year, month, int(day or groups["day"]), today)


def _full_date(text: str, today: dt.date) -> dt.date | None:
    """The date if the whole line is a date line, else None."""
    for pattern in (_DATE_ISO, _DATE_MDY, _DATE_DMY):
        m = pattern.fullmatch(text)
        if m:
            found = _date_from_match(m, today)
            if found:
                return found
    return None


def _date_prefix(text: str, today: dt.date) -> tuple[dt.date, str] | None:
    """A date glued to the start of a line (``Mar 13SpaRP: ...``): (date, rest) or None."""
    m = _DATE_ISO.match(text)
    if m:
        found = _date_from_match(m, today)
        return (found, text[m.end() :].lstrip()) if found else None
    m = _DATE_MDY.match(text)
    if not m:
        return None
    rest = text[m.end() :]
    digits = m.group("day")
    # "Mar 13D Gaussian..." is more likely "Mar 1" + "3D Gaussian...": a title rarely
    # starts with a lone capital letter, while "3D"/"2D" starts many.
    if (
        len(digits) == 2
        and not m.group("year")
        and not m.group("ord")
        and re.match(r"[A-Za-z](?![A-Za-z])", rest)
    ):
        alt = _date_from_match(m, today, day=digits[0])
        if alt:
            return alt, (digits[1] + rest).lstrip()
    found = _date_from_match(m, today)
    return (found, rest.lstrip()) if found else None


# --- header, navigation and footer lines -------------------------------------------------

# Lines that open a page header: seen again after entries, they start a new page (saved
# pages joined into one file).
_PAGE_MARKER = re.compile(
    r"""(?ix)
    subscribe |
    get\s+(?:the\s+)?(?:trending|daily|latest|top)\s+papers\b.* |
    by\s*@?\s*ak\s+and\s+the\s+research\s+community
    """
)
# Other header words: skipped in a header, and page decoration anywhere.
_HEADER_LINE = re.compile(
    r"""(?ix)
    new | daily\s+papers | trending\s+papers | papers | today | latest |
    (?:daily|trending)\s+papers\s+by\s+.* | hugging\s*face | 🤗.*
    """
)
# Header phrases that may be glued to what follows them; case matters so that titles
# such as "New Insights into ..." or "Subscriber Churn ..." are never cut.
_HEADER_PREFIXES = (
    re.compile(r"new(?=[A-Z])"),
    re.compile(
        r"Get (?:the )?(?:trending|daily|latest|top) papers(?: in your (?:email )?inbox)?"
        r"(?: once a day| daily| every day)?[!.]?\s*",
        re.I,
    ),
    re.compile(r"Subscribe(?:\s+|(?=[A-Z0-9\"'(\[]|by))"),
    re.compile(r"by\s*@?\s*AK and the research community\s*", re.I),
    re.compile(r"Daily Papers(?=[A-Z0-9])"),
)
_NAV_WORDS = frozenset(
    """previous next prev more older newer load show see view back top home search models
    datasets spaces posts docs solutions pricing enterprise community papers collections
    blog learn discord forum github twitter linkedin contact about jobs company website
    tos privacy policy terms service of to the system theme light dark mode log login in
    sign signup up out settings menu page hugging face huggingface daily trending new
    subscribe all rights reserved and « » ‹ › ← → · | / - • … ... upvote upvotes comment
    comments share copy link bookmark""".split()
)
_CHROME = re.compile(
    r"""(?ix)
    (?:©|\(c\)|copyright)\s.* | page\s+\d+(?:\s+of\s+\d+)? | [\d\s.,k·•|/+-]+ |
    submitted\s+by\b.* | published\s+on\b.* | \d+\s+(?:comments?|upvotes?|authors?) |
    [·•]\s*\d+\s+authors? | view\s+(?:arxiv\s+page|pdf) | add\s+to\s+collection |
    (?:go\s+)?back\s+to\s+(?:top|home) | made\s+with\s+.*
    """
)


def _is_chrome(text: str) -> bool:
    if len(text) > 200:
        return False  # page decoration is short; abstracts are not
    if _CHROME.fullmatch(text):
        return True
    words = re.split(r"[\s·|•]+", text.lower())
    words = [w for w in words if w]
    return bool(words) and len(words) <= 12 and all(w in _NAV_WORDS for w in words)


def _strip_header_prefixes(
    text: str, today: dt.date, want_date: bool
) -> tuple[str, dt.date | None]:
    """Cut header phrases (and, if still wanted, the date) off the start of a line."""
    found: dt.date | None = None
    changed = True
    while text and changed:
        changed = False
        for pattern in _HEADER_PREFIXES:
            m = pattern.match(text)
            if m and m.end() > 0:
                text = text[m.end() :].lstrip()
                changed = True
        if want_date and found is None and text and text[0].isalnum():
            glued = _date_prefix(text, today)
            if glued and glued[1] != text:
                found, text = glued
                changed = True
    return text, found


# --- telling titles from abstracts -------------------------------------------------------


class _Kind(enum.Enum):
    TITLE = "title"
    ABSTRACT = "abstract"
    MAYBE = "maybe"


_BREAK = re.compile(r"(?P<word>\S*?)(?P<mark>[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    """vs v e.g i.e al etc fig figs eq eqs cf dr mr mrs ms st no vol approx resp sec""".split()
)
_LOWER_START = re.compile(r"[a-z][a-z'’-]*(?:[\s,;:)]|$)")
_FUNCTION_WORDS = frozenset(
    """a an the and or but of to in on at by for with from as that which who whose is are
    was were be been its their our we this these than via into onto over under""".split()
)
_ABSTRACT_OPENERS = re.compile(
    r"(?:we|our|in this (?:paper|work|study)|this (?:paper|work|study)|here,? we)\b", re.I
)
_URL = re.compile(r"https?://|www\.", re.I)
_ENDS_WITH_URL = re.compile(r"(?:https?://|www\.)\S+$", re.I)
# "SpaRP: ...", "DefSent+: ...": a system name before a colon opens many titles.
_NAME_PREFIX = re.compile(r"[A-Z0-9][\w+.-]{0,30}:\s")


def _sentence_breaks(text: str) -> tuple[int, int]:
    """(full stops, question/exclamation marks) followed by a new sentence."""
    stops = others = 0
    for m in _BREAK.finditer(text):
        word = m.group("word").lower().strip("\"'([")
        if m.group("mark") == ".":
            # Abbreviations ("vs.", "e.g.", "U.S.") and initials do not end sentences.
            if word.rstrip(".") in _ABBREVIATIONS or len(word) <= 1 or "." in word:
                continue
            stops += 1
        else:
            others += 1
    return stops, others


def _last_word(text: str) -> str:
    words = text.rsplit(None, 1)
    return words[-1].lower().strip("\"'()[]") if words else ""


def _classify(text: str) -> _Kind:
    n = len(text)
    if n > 600:
        return _Kind.ABSTRACT
    words = text.split()
    if len(words) > 80:
        return _Kind.ABSTRACT
    stops, others = _sentence_breaks(text)
    score = 2 if n <= 150 else 1 if n <= 250 else -1 if n <= 400 else -4
    score -= 2 * min(stops, 2) + min(others, 1)
    last = text.rstrip("\"')]”’")[-1:] or text[-1]
    if last == ".":
        score -= 2
    elif last in ",;":
        score -= 3
    elif last == ":":
        score -= 2
    elif last.isalnum() or last in ")]\"'":
        score += 1
    if _LOWER_START.match(text):
        score -= 3
    if _last_word(text) in _FUNCTION_WORDS:
        score -= 2
    if _ABSTRACT_OPENERS.match(text):
        score -= 2
    if _NAME_PREFIX.match(text):
        score += 1
    if _URL.search(text):
        score -= 1
    long_words = [w for w in words if len(w) >= 4 and w[0].isalpha()]
    if long_words:
        capitalised = sum(1 for w in long_words if w[0].isupper()) / len(long_words)
        if capitalised >= 0.5:
            score += 1
        elif capitalised < 0.2 and len(words) >= 6:
            score -= 1
    if score >= 2:
        return _Kind.TITLE
    if score <= -2:
        return _Kind.ABSTRACT
    return _Kind.MAYBE


def _plausible_title(text: str) -> bool:
    """Whether a line standing alone (no abstract after it) can be a paper title."""
    words = text.split()
    if not 2 <= len(words) <= 40 or not 8 <= len(text) <= 300:
        return False
    if sum(1 for w in words if sum(ch.isalpha() for ch in w) >= 2) < 2:
        return False
    start = text.lstrip("\"'“‘([")
    # Mixed-case brand names ("iVideoGPT: ...") are still titles.
    if not start or not (
        start[0].isupper() or start[0].isdigit() or any(ch.isupper() for ch in words[0])
    ):
        return False
    if _URL.search(text) or re.search(r"[©|·•»«›‹]", text):
        return False
    return text[-1] not in ",;:" and _classify(text) is not _Kind.ABSTRACT


def _valid_title(text: str) -> str | None:
    """Why a title line followed by an abstract cannot be a title, or None if it can."""
    if not any(ch.isalpha() for ch in text):
        return "title line has no letters"
    if len(text) > 500 or len(text.split()) > 60:
        return "title line is too long to be a title"
    if _URL.match(text):
        return "title line is a URL"
    return None


# --- reading lines -----------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    number: int
    text: str  # whitespace collapsed; broken bytes shown as U+FFFD
    blank_before: bool
    error: str | None = None


_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


def _raw_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, bytes without newline, read problem); constant memory per line."""
    number = 0
    while True:
        try:
            line = stream.readline(MAX_LINE)
        except _READ_ERRORS as exc:
            yield number + 1, None, f"input ends unexpectedly: {exc}"
            return
        if not line:
            return
        number += 1
        if not line.endswith(b"\n") and len(line) >= MAX_LINE:
            try:
                while True:
                    more = stream.readline(MAX_LINE)
                    if not more or more.endswith(b"\n"):
                        break
            except _READ_ERRORS:
                pass
            yield number, line[:RAW_LINE_EXCERPT], f"line {number} is longer than {MAX_LINE} bytes"
            continue
        # A lone CR is an old-style line end; CRLF is handled by stripping.
        for part in line.rstrip(b"\r\n").split(b"\r"):
            yield number, part, None


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    text = sample.decode("utf-8", errors="replace")
    if not text:
        return False
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    return odd / len(text) > 0.1


# --- the parser --------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    title: _Line
    abstract: list[_Line] = field(default_factory=list)


class _PageParser:
    """The entry state machine; ``feed`` takes one non-empty line, ``finish`` ends the page."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.feed_date: dt.date | None = None
        self.rank = 0
        # In a page header: before the page's first complete entry (title and abstract).
        self.in_header = True
        self.header_date = False  # this header had its date line
        self.entries_seen = 0  # Parsed or Rejected entries (what makes this a listing)
        self.pending: _Entry | None = None
        self.deferred: list[Rejected] = []
        self.sep_blank = 0  # entry boundaries with a blank line before the next title
        self.sep_adjacent = 0  # entry boundaries without one

    @property
    def expects_title(self) -> bool:
        return self.pending is None or bool(self.pending.abstract)

    # Lines -----------------------------------------------------------------------------

    def feed(self, line: _Line) -> Iterator[Item]:
        text = line.text
        if line.error is None:
            if not self.in_header and any(p.match(text) for p in _HEADER_PREFIXES):
                yield from self._new_page()  # header text glued to a title: a new page
            want_date = self.in_header and not self.header_date
            text, glued = _strip_header_prefixes(text, self.ctx.today, want_date)
            if glued is not None:
                yield from self._set_date(glued)
            if not text:
                return
            line.text = text
        if _PAGE_MARKER.fullmatch(text):
            yield from self._new_page()
            return
        if _HEADER_LINE.fullmatch(text):
            return
        date = _full_date(text, self.ctx.today)
        if date is not None:
            yield from self._set_date(date)
            return
        if _is_chrome(text):
            return
        yield from self._place(line, _classify(text))

    def _new_page(self) -> Iterator[Item]:
        """A page header begins; after entries, it is the next saved page."""
        if self.in_header:
            return
        yield from self._close()
        self.in_header = True
        self.header_date = False
        self.feed_date = None
        self.rank = 0

    def _set_date(self, date: dt.date) -> Iterator[Item]:
        if self.pending is not None:
            yield from self._close()
        if date != self.feed_date and self.rank:
            self.rank = 0  # a new day further down the page
        self.feed_date = date
        self.header_date = self.header_date or self.in_header

    def _place(self, line: _Line, kind: _Kind) -> Iterator[Item]:
        pending = self.pending
        if pending is None:
            if kind is _Kind.ABSTRACT:
                self._orphan(line)
            else:
                self.pending = _Entry(line)
            return
        if not pending.abstract:
            if kind is _Kind.TITLE:
                yield from self._close()
                self.pending = _Entry(line)
            else:
                pending.abstract.append(line)
            return
        if self._continues(pending.abstract[-1], line, kind):
            pending.abstract.append(line)
            return
        if kind is _Kind.ABSTRACT:
            # A second paragraph after a complete entry: its title is missing.
            yield from self._close()
            self._orphan(line)
            return
        if line.blank_before:
            self.sep_blank += 1
        else:
            self.sep_adjacent += 1
        yield from self._close()
        self.pending = _Entry(line)

    def _continues(self, previous: _Line, line: _Line, kind: _Kind) -> bool:
        """Whether ``line`` continues the abstract paragraph ending with ``previous``."""
        if line.blank_before:
            return False
        prev = previous.text
        mid_sentence = prev[-1] in "-,;:(" or _last_word(prev) in _FUNCTION_WORDS
        if kind is _Kind.ABSTRACT or mid_sentence or _LOWER_START.match(line.text):
            return True
        if self.sep_blank > self.sep_adjacent:
            # This page separates entries with blank lines, so adjacent lines belong together.
            return True
        ended = prev.rstrip("\"')]")[-1:] in ".!?" or _ENDS_WITH_URL.search(prev)
        return kind is _Kind.MAYBE and not ended

    def _orphan(self, line: _Line) -> None:
        if self.in_header:
            return  # text above the first entry is page header
        self._defer(
            Rejected(
                f"line {line.number}",
                "not a paper entry: a paragraph without a title line",
                excerpt(line.text),
            )
        )

    def _defer(self, item: Rejected) -> None:
        # Held back until another entry follows: at the end of the page it is footer text.
        self.deferred.append(item)

    def flush_deferred(self) -> Iterator[Item]:
        yield from self.deferred
        self.deferred.clear()

    # Entries ---------------------------------------------------------------------------

    def _close(self) -> Iterator[Item]:
        entry, self.pending = self.pending, None
        if entry is None:
            return
        title = entry.title
        abstract = " ".join(line.text for line in entry.abstract)
        raw = excerpt(title.text + ("\n" + abstract if abstract else ""))
        if not entry.abstract:
            if self.in_header and not self.header_date:
                return  # above the first entry and no date line yet: page header
            if not _plausible_title(title.text):
                if not self.in_header:
                    self._defer(
                        Rejected(
                            f"line {title.number}",
                            "not a paper entry: a line without an abstract that does not "
                            "look like a title",
                            raw,
                        )
                    )
                return
        else:
            self.in_header = False
        yield from self.flush_deferred()
        self.rank += 1
        self.entries_seen += 1
        locator = f"entry {self.rank} (line {title.number})"
        broken = next((line.error for line in [title, *entry.abstract] if line.error), None)
        if broken:
            yield Rejected(locator, broken, raw)
            return
        problem = _valid_title(title.text)
        if problem:
            yield Rejected(locator, f"not a paper entry: {problem}", raw)
            return
        try:
            paper = new_paper(title=title.text, abstract=abstract, source=self.ctx.source)
        except ValueError as exc:
            yield Rejected(locator, str(exc), raw)
            return
        entry_info = ListingEntry(
            listing=self.ctx.listing, feed_date=self.feed_date, rank=self.rank
        )
        yield Parsed(paper, locator, entry_info)

    def finish(self) -> Iterator[Item]:
        yield from self._close()
        self.deferred.clear()  # trailing unrecognised lines are the page footer


def _decode_line(number: int, raw: bytes) -> tuple[str, str | None]:
    try:
        return decode_record(raw, f"line {number}"), None
    except RecordError as exc:
        return raw.decode("utf-8", errors="replace"), str(exc)


_SUSPENDED = re.compile(r"(?:and|or|nor|to|vs\.?)\b")
_WRAP_MAX = 100  # text saved at a fixed width is wrapped at 72-100 columns
_MAX_PARAGRAPH_LINES = 2000


class _Reflow:
    """Joins hard-wrapped paragraphs (text saved at a fixed width) back into single units.

    Within a paragraph (adjacent lines), a line continues the previous one when the
    previous line is full, i.e. the first word of the line would not have fitted after it
    at the paragraph's wrap width. A paragraph counts as wrapped when it has three or more
    lines, none longer than 100 characters (except a line holding one unbreakable token
    such as a URL), most of them close to the longest; that width is remembered for shorter
    paragraphs later on (a title wrapped over two lines).
    """

    def __init__(self) -> None:
        self.width: int | None = None
        # Paragraphs seen holding a title above its wrapped abstract, and paragraphs
        # holding a wrapped abstract alone: which layout this page uses.
        self.title_above = 0
        self.abstract_alone = 0

    def _width(self, paragraph: list[_Line]) -> int | None:
        # A line holding one unbreakable token (a long URL) may pass the wrap width.
        lengths = [len(line.text) for line in paragraph if " " in line.text]
        if not lengths or max(lengths) > _WRAP_MAX:
            return None
        longest = max(lengths)
        body = [len(line.text) for line in paragraph[:-1]]
        full = sum(1 for n in body if n >= 0.8 * longest)
        if len(paragraph) >= 3 and full >= max(2, 0.6 * len(body)):
            self.width = max(self.width or 0, longest)
            return longest
        if self.width and longest <= self.width:
            return self.width
        if len(paragraph) == 2 and len(paragraph[0].text) >= 40:
            # Two short lines and no width known yet: one title wrapped in two, if joined
            # they read as a title.
            joined = f"{paragraph[0].text} {paragraph[1].text}"
            if (
                _classify(joined) is _Kind.TITLE
                and _classify(paragraph[1].text) is not _Kind.ABSTRACT
            ):
                return len(paragraph[0].text)
        return None

    def units(self, paragraph: list[_Line], *, expect_title: bool) -> list[_Line]:
        """The paragraph's lines, wrapped ones joined.

        A title-like first line followed by an abstract-like rest that wraps on is a title
        above its wrapped abstract, not the start of one long paragraph: taken as such
        when the page expects a title next (``expect_title``: no title is waiting for its
        abstract), or when this page has shown that layout more often than the other.
        """
        if len(paragraph) < 2:
            return paragraph
        width = self._width(paragraph)
        if width is None:
            return paragraph

        def wraps(i: int) -> bool:
            if i + 1 >= len(paragraph):
                return False
            first_word = paragraph[i + 1].text.split(" ", 1)[0]
            return len(paragraph[i].text) + 1 + len(first_word) > width - 2

        # Only when line 0 runs straight into a wrapping paragraph: a title that ends
        # short (a natural break within its first three lines) is split by the geometry.
        shaped = (
            len(paragraph) > 2
            and wraps(0)
            and wraps(1)
            and (len(paragraph) == 3 or wraps(2))
            and _classify(" ".join(line.text for line in paragraph[1:])) is _Kind.ABSTRACT
        )
        first = _classify(paragraph[0].text)
        if expect_title:
            title_above = shaped and first is not _Kind.ABSTRACT
        else:
            title_above = shaped and first is _Kind.TITLE and self.title_above > self.abstract_alone
        units = [paragraph[0]]
        for i, line in enumerate(paragraph[1:], start=1):
            if wraps(i - 1) and not (i == 1 and title_above):
                unit = units[-1]
                glue = " "
                # A break right after a letter-hyphen splits a compound ("Text-to-Image"),
                # unless the hyphen is a suspended one ("micro- and macro-F1").
                if re.search(r"[A-Za-z]-$", unit.text) and not _SUSPENDED.match(line.text):
                    glue = ""
                units[-1] = _Line(
                    unit.number,
                    unit.text + glue + line.text,
                    unit.blank_before,
                    unit.error or line.error,
                )
            else:
                units.append(line)
        if len(units) == 1:
            self.abstract_alone += _classify(units[0].text) is _Kind.ABSTRACT
        elif _classify(units[0].text) is not _Kind.ABSTRACT:
            self.title_above += _classify(units[1].text) is _Kind.ABSTRACT
        return units


def parse(stream: IO[bytes], ctx: ParseContext) -> Iterator[Item]:
    """Parse a saved listing page; see the module docstring for the accepted layouts."""
    lines = _raw_lines(stream)
    head: list[tuple[int, bytes | None, str | None]] = []
    size = 0
    for item in lines:
        head.append(item)
        size += len(item[1] or b"") + 1
        if size >= _SNIFF_BYTES:
            break
    sample = b"\n".join(raw for _, raw, _ in head if raw is not None)[:_SNIFF_BYTES]
    if _looks_binary(sample):
        raise FormatError(f"{ctx.path}: not a text file, so not a saved listing page")

    page = _PageParser(ctx)
    reflow = _Reflow()
    paragraph: list[_Line] = []
    capped = False  # the paragraph was cut at the size limit, not by a blank line
    first = True

    def chained() -> Iterator[tuple[int, bytes | None, str | None]]:
        yield from head
        yield from lines

    def flush() -> Iterator[Item]:
        for unit in reflow.units(paragraph, expect_title=page.expects_title):
            yield from page.feed(unit)
        paragraph.clear()
        if len(page.deferred) > _MAX_DEFERRED:
            yield from page.flush_deferred()

    for number, raw, problem in chained():
        if raw is None:
            # The input itself broke off (e.g. a truncated gzip file): keep what was read.
            yield from flush()
            yield from page.finish()
            if page.entries_seen == 0:
                raise FormatError(f"{ctx.path}: {problem}")
            yield Rejected(f"line {number}", problem or "input ends unexpectedly")
            return
        text, error = _decode_line(number, raw)
        if problem:
            error = problem
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        text = clean_text(text.replace("\u00a0", " ").replace("\u200b", ""))
        if not text:
            yield from flush()
            capped = False
            continue
        paragraph.append(_Line(number, text, not paragraph and not capped, error))
        capped = len(paragraph) >= _MAX_PARAGRAPH_LINES
        if capped:
            # A page without blank lines is one long paragraph: take it in bounded parts.
            yield from flush()
    yield from flush()
    yield from page.finish()
    if page.entries_seen == 0:
        raise FormatError(
            f"{ctx.path}: no paper entries found (a listing page has a title line followed by "
            "an abstract paragraph for each paper)"
        )
