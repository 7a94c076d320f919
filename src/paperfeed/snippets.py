"""Highlighted snippets: the passage of a text that best matches the query words.

The same function serves keyword and semantic hits, so a result shows its snippet the same
way whichever side found it. Matching is by word prefix (``diffusion`` highlights
"diffusion" and "diffusions"; ``personalization`` highlights "personalized" through its
stem-like prefix) because the keyword index stems with Porter and users expect what it
matched to be highlighted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from functools import lru_cache

MARK_OPEN = "<mark>"
MARK_CLOSE = "</mark>"
_WORD = re.compile(r"\w+", re.UNICODE)


# Suffixes stripped (once, longest first) to find the stem whose word forms to highlight.
_SUFFIXES = tuple(
    sorted(
        (
            "izations ization ations ation izing ized izes ize isations isation ising ised "
            "ises ise ings ing edly ed ies es s ments ment ness ities ity ally al ly ers er"
        ).split(),
        key=len,
        reverse=True,
    )
)


def _stem(term: str) -> str:
    """A light, predictable stem: personalization, personalized -> personal."""
    term = term.lower()
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            return term[: -len(suffix)]
    return term


def _prefixes(terms: Iterable[str]) -> tuple[str, ...]:
    # Only word characters can start a word: anything else could never match one.
    stems = {_stem(t) for t in terms if len(t) > 1 and _WORD.fullmatch(t)}
    return tuple(sorted(stems, key=lambda p: (-len(p), p)))


@lru_cache(maxsize=256)
def _pattern_for(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    return _words_starting_with(_prefixes(terms))


def _words_starting_with(prefixes: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole words that start with one of the prefixes, in any case (one compiled
    pattern per query: a page of results reuses it for every snippet)."""
    if not prefixes:
        return None
    alternatives = "|".join(re.escape(p) for p in prefixes)
    return re.compile(rf"(?<!\w)(?:{alternatives})\w*", re.IGNORECASE | re.UNICODE)


def make_snippet(text: str, terms: Iterable[str], *, width: int = 240) -> str:
    """A window of about ``width`` characters around the densest cluster of query words.

    The text is HTML-escaped and matched words are wrapped in ``<mark>``; an ellipsis marks
    a cut. With no match the snippet is the start of the text.
    """
    pattern = _pattern_for(tuple(terms))
    hits = list(pattern.finditer(text)) if pattern is not None else []
    if len(text) <= width:
        start, end = 0, len(text)
    elif not hits:
        start, end = 0, width
    else:
        # Slide over the matches: the window starting at a match that covers most matches.
        best_start, best_count = hits[0].start(), 0
        last = 0  # one past the last match that fits in the window starting at hits[i]
        for i, m in enumerate(hits):
            last = max(last, i)
            while last < len(hits) and hits[last].end() <= m.start() + width:
                last += 1
            count = last - i
            if count > best_count:
                best_start, best_count = m.start(), count
        start = max(0, best_start - width // 5)
        end = min(len(text), start + width)
        start = max(0, end - width)
    # Cut on word boundaries.
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    pieces: list[str] = ["…" if start > 0 else ""]
    cursor = start
    for m in hits:
        if m.start() < start or m.end() > end:
            continue
        pieces.append(html.escape(text[cursor : m.start()]))
        pieces.append(MARK_OPEN + html.escape(m.group(0)) + MARK_CLOSE)
        cursor = m.end()
    pieces.append(html.escape(text[cursor:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces)
