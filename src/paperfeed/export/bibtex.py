"""BibTeX export: one ``@misc`` entry per paper, readable by BibTeX, BibLaTeX and our parser.

- Citation keys: first author's last name + year + first significant title word, folded
  to ASCII (``vaswani2017attention``); a key already used in this export gets a suffix
  (``...a``, ``...b``). Only the keys are remembered, never the output.
- Text fields are UTF-8 with LaTeX's special characters escaped (``& % $ # _ { } ~ ^ \\``),
  TeX ligatures (``--``, ``''``, ``!```) broken up, and words with inner capitals
  (``BERT``, ``LoRA``) braced so that styles do not lower-case them.
- arXiv papers carry ``eprint`` / ``archivePrefix`` / ``primaryClass``; ``date`` keeps the
  full publication day next to ``year`` and ``month`` (BibTeX has no day field).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import TextIO

from paperfeed.export import name_parts
from paperfeed.ids import is_arxiv_category
from paperfeed.model import Paper

_MONTH_MACROS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Inside names BibTeX treats a braced group as one "special character": "{\&}" neither
# splits a name nor loses its backslash when the name is cut into parts.
_SPECIAL_IN_NAMES = {
    char: "{" + (seq[:-2] if seq.endswith("{}") else seq) + "}" for char, seq in _SPECIAL.items()
}
_SPECIAL_RE = re.compile(r"[\\{}&%$#_~^]")
# Character pairs TeX turns into one glyph (en dash, curly quotes, inverted marks).
_LIGATURE_RE = re.compile(r"(?<=-)(?=-)|(?<=`)(?=`)|(?<=')(?=')|(?<=[!?])(?=`)")
_STOPWORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "is", "are", "at"}


def escape(text: str, *, in_name: bool = False) -> str:
    """Text as a BibTeX value that decodes back to the same characters."""
    table = _SPECIAL_IN_NAMES if in_name else _SPECIAL
    text = _SPECIAL_RE.sub(lambda m: table[m.group(0)], " ".join(text.split()))
    return _LIGATURE_RE.sub("{}", text)


def _title(text: str) -> str:
    words = []
    for word in " ".join(text.split()).split(" "):
        escaped = escape(word)
        if any(ch.isupper() for ch in word[1:]):
            escaped = "{" + escaped + "}"
        words.append(escaped)
    return " ".join(words)


def _verbatim(text: str) -> str:
    # URL and DOI fields are read verbatim; only braces (and stray whitespace) would break
    # the entry. Percent-encoding keeps a URL valid; DOIs practically never hold braces.
    return "".join(text.split()).replace("{", "%7B").replace("}", "%7D").replace("\\", "%5C")


def _author(name: str) -> str:
    # A name BibTeX would split ("Barnes and Noble") or read as "et al." stays one group.
    if re.search(r"(?:^|\s)and(?:\s|$)", name, re.IGNORECASE) or name.lower() == "others":
        return "{" + escape(name, in_name=True) + "}"
    parts = name_parts(name)
    last = " ".join(p for p in (parts.von, parts.last) if p)
    if not parts.first and not parts.jr:
        return escape(last, in_name=True)
    pieces = [last, parts.jr, parts.first] if parts.jr else [last, parts.first]
    return ", ".join(escape(p, in_name=True) for p in pieces)


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum()).lower()


def citation_key(paper: Paper) -> str:
    last = _ascii_word(name_parts(paper.authors[0]).last) if paper.authors else ""
    year = str(paper.published.year) if paper.published else ""
    word = ""
    for token in re.split(r"[\s\-:/]+", paper.title):
        candidate = _ascii_word(token)
        if candidate and candidate not in _STOPWORDS:
            word = candidate
            break
    return f"{last}{year}{word}" or "paper"


def _suffixes() -> Iterable[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    yield from letters
    n = 0
    while True:
        n += 1
        for a in letters:
            yield a * (n + 1)


def _unique(key: str, used: set[str]) -> str:
    if key in used:
        key = next(key + s for s in _suffixes() if key + s not in used)
    used.add(key)
    return key


def entry(paper: Paper, key: str) -> str:
    fields: list[tuple[str, str]] = [("title", "{" + _title(paper.title) + "}")]
    if paper.authors:
        authors = " and ".join(_author(a) for a in paper.authors)
        fields.append(("author", "{" + authors + "}"))
    if paper.published:
        fields.append(("year", "{" + str(paper.published.year) + "}"))
        fields.append(("month", _MONTH_MACROS[paper.published.month - 1]))
        fields.append(("date", "{" + paper.published.isoformat() + "}"))
    if paper.arxiv_id:
        fields.append(("eprint", "{" + _verbatim(paper.arxiv_id) + "}"))
        fields.append(("archivePrefix", "{arXiv}"))
        primary = next((c for c in paper.categories if is_arxiv_category(c)), None)
        if primary:
            fields.append(("primaryClass", "{" + primary + "}"))
    if paper.doi:
        fields.append(("doi", "{" + _verbatim(paper.doi) + "}"))
    if paper.links.abs:
        fields.append(("url", "{" + _verbatim(paper.links.abs) + "}"))
    if paper.abstract:
        fields.append(("abstract", "{" + escape(paper.abstract) + "}"))
    width = max(len(name) for name, _ in fields)
    body = ",\n".join(f"  {name.ljust(width)} = {value}" for name, value in fields)
    return f"@misc{{{key},\n{body},\n}}\n"


def write(papers: Iterable[Paper], out: TextIO) -> int:
    used: set[str] = set()
    count = 0
    for paper in papers:
        if count:
            out.write("\n")
        out.write(entry(paper, _unique(citation_key(paper), used)))
        count += 1
    return count
