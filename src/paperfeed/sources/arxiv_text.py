"""Text conventions of arXiv metadata: TeX accents in names, author strings, DOI lists."""

from __future__ import annotations

import re
import unicodedata

from paperfeed.sources.base import (
    clean_text,
)

# TeX accents as arXiv authors type them (``Bal\\'azs``, ``M\\"uller``, ``\\c{C}elik``).
_TEX_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "c": "\u0327",
    "v": "\u030c",
    "u": "\u0306",
    "H": "\u030b",
    "r": "\u030a",
    "k": "\u0328",
}
_TEX_ACCENT = re.compile(
    r"\{?\\(?:(?P<sym>['`^\"~=.])\s*|(?P<word>[cvuHrk])(?:\s+|(?=\{)))"
    r"\{?(?:\\(?P<dotless>[ij])\b\s*|(?P<letter>[A-Za-z]))\}?\}?"
)
_TEX_LETTERS = {
    r"\o": "ø",
    r"\O": "Ø",
    r"\l": "ł",
    r"\L": "Ł",
    r"\ss": "ß",
    r"\aa": "å",
    r"\AA": "Å",
    r"\ae": "æ",
    r"\AE": "Æ",
    r"\oe": "œ",
    r"\OE": "Œ",
}
_TEX_LETTER = re.compile(r"\{?(\\(?:ss|aa|AA|ae|AE|oe|OE|o|O|l|L))\b\s*\}?")


def _tex_accent(match: re.Match[str]) -> str:
    accent = _TEX_ACCENTS[match.group("sym") or match.group("word")]
    return (match.group("dotless") or match.group("letter")) + accent


def detex_name(name: str) -> str:
    """Turn the TeX accents of a person's name into Unicode; anything else is left alone."""
    if "\\" not in name:
        return name
    text = _TEX_ACCENT.sub(_tex_accent, name)
    text = _TEX_LETTER.sub(lambda m: _TEX_LETTERS[m.group(1)], text)
    return unicodedata.normalize("NFC", text)


_SUFFIX = re.compile(r"^(?:jr|sr|ii|iii|iv)\.?$", re.IGNORECASE)


def split_author_string(value: str) -> list[str]:
    """Names from an arXiv author string: ``A. One, B. Two (MIT) and C. Three, Jr.``.

    Parenthesised affiliations (arXiv writes ``X (1), Y (2) ((1) MIT, (2) CERN)``) are
    dropped before splitting on commas, semicolons and "and"; a bare "Jr." stays with the
    name before it.
    """
    text = clean_text(value)
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\([^()]*\)", " ", text)
    parts = re.split(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+|\s+&\s+", text)
    names: list[str] = []
    for part in parts:
        name = detex_name(clean_text(part.strip("()")))
        if not name:
            continue
        if names and _SUFFIX.match(name):
            names[-1] = f"{names[-1]} {name}"
        else:
            names.append(name)
    return names


def first_doi(value: str) -> str | None:
    """arXiv's DOI field may hold several DOIs separated by spaces; the first is the paper's."""
    parts = value.split()
    return parts[0] if parts else None
