"""Paper identity: the one canonical arXiv id parser, DOI normalization, title keys.

Stable id rule (PRODUCT.md): the arXiv id without version when known, else the DOI
(``doi:10.1234/abc``), else a hash of the normalized title (``title:<16 hex>``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

# New-style ids: YYMM.NNNN (2007-2014) or YYMM.NNNNN (2015-).
_NEW_ID = re.compile(r"(?P<base>\d{4}\.\d{4,5})(?:v(?P<version>\d+))?")
# Old-style ids: archive(.SUBJ)/YYMMNNN, e.g. hep-th/9901001, math.AG/0601001.
_OLD_ID = re.compile(
    r"(?P<archive>[a-z][a-z-]*[a-z])(?:\.(?P<subject>[A-Za-z]{2}))?/(?P<number>\d{7})"
    r"(?:v(?P<version>\d+))?"
)
_URL_PREFIX = re.compile(
    r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html|format)/",
    re.IGNORECASE,
)
_ARXIV_PREFIX = re.compile(r"^arxiv\s*:\s*", re.IGNORECASE)
_DOI_ARXIV = re.compile(r"^10\.48550/arxiv\.", re.IGNORECASE)
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi\s*:\s*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ArxivId:
    """A parsed arXiv identifier: ``base`` never carries a version."""

    base: str
    version: int | None = None

    def __str__(self) -> str:
        return self.base if self.version is None else f"{self.base}v{self.version}"

    @property
    def old_style(self) -> bool:
        return "/" in self.base

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.base}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.base}"


def parse_arxiv_id(text: str) -> ArxivId | None:
    """Parse an arXiv id in any common spelling, or return None.

    Accepts ``2301.12345``, ``2301.12345v2``, ``arXiv:2301.12345``, ``hep-th/9901001v3``,
    ``math.AG/0601001`` (canonical ``math/0601001``), abs / pdf URLs (with or without
    ``.pdf``), and the arXiv DOI ``10.48550/arXiv.2301.12345``. Versions are split off.
    """
    s = text.strip()
    if not s:
        return None
    s = _URL_PREFIX.sub("", s)
    s = _ARXIV_PREFIX.sub("", s)
    s = _DOI_PREFIX.sub("", s)
    s = _DOI_ARXIV.sub("", s)
    s = s.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if s.lower().endswith(".pdf"):
        s = s[:-4]
    m = _NEW_ID.fullmatch(s)
    if m:
        month = int(s[2:4])
        if not 1 <= month <= 12:
            return None
        digits = len(s.split(".", 1)[1].split("v", 1)[0])
        # Five-digit numbers only exist from 1501 on; four-digit only before.
        if (digits == 5) != (s[:4] >= "1501"):
            return None
        version = m.group("version")
        return ArxivId(m.group("base"), int(version) if version else None)
    m = _OLD_ID.fullmatch(s)
    if m:
        version = m.group("version")
        # The subject class (math.AG/...) is not part of the canonical identifier.
        base = m.group("archive") + "/" + m.group("number")
        return ArxivId(base, int(version) if version else None)
    return None


def normalize_doi(text: str) -> str | None:
    """Return a DOI in canonical lower-case form (``10.xxxx/...``) or None if it is not one."""
    s = _DOI_PREFIX.sub("", text.strip()).strip().rstrip(".")
    s = s.lower()
    return s if _DOI.match(s) else None


def normalize_title(title: str) -> str:
    """Fold a title to the form used for identity: case, accents, LaTeX and punctuation removed."""
    if title.isascii():
        s = title.lower()  # the common case, and much cheaper than NFKD
    else:
        s = unicodedata.normalize("NFKD", title)
        s = "".join(ch for ch in s if not unicodedata.combining(ch))
        s = s.casefold()
    s = re.sub(r"\\[a-z]+\s*", " ", s)  # LaTeX commands such as \emph
    s = s.replace("{", "").replace("}", "")  # LaTeX grouping: {N}eed is Need
    s = re.sub(r"[^\w]+", " ", s)
    return " ".join(s.split())


def title_key(title: str) -> str:
    """Hash of the normalized title: 16 hex digits, stable across runs and machines."""
    return hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()[:16]


def stable_id(*, arxiv_id: str | None, doi: str | None, title: str) -> str:
    """Compute a paper's stable id from what is known about it."""
    if arxiv_id:
        parsed = parse_arxiv_id(arxiv_id)
        if parsed:
            return parsed.base
    if doi:
        norm = normalize_doi(doi)
        if norm:
            return f"doi:{norm}"
    return f"title:{title_key(title)}"


_ARXIV_IN_TEXT = re.compile(
    r"arxiv\s*(?:preprint)?\s*[:\s]\s*(?:arxiv\s*:\s*)?"
    r"(\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z-]*[a-z](?:\.[A-Za-z]{2})?/\d{7}(?:v\d+)?)",
    re.IGNORECASE,
)

# arXiv archives; a category is "archive.SUBJECT" (cs.CL, astro-ph.CO) or one of the
# archives that have no subject classes (hep-th, quant-ph).
_ARCHIVES = {"cs", "econ", "eess", "math", "nlin", "physics", "q-bio", "q-fin", "stat"}
_DOTLESS_CATEGORIES = {
    "astro-ph",
    "cond-mat",
    "gr-qc",
    "hep-ex",
    "hep-lat",
    "hep-ph",
    "hep-th",
    "math-ph",
    "nucl-ex",
    "nucl-th",
    "quant-ph",
}
_SUBJECT = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")


def is_arxiv_category(value: str) -> bool:
    """True for an arXiv category such as ``cs.CL``, ``math.AG``, ``astro-ph.CO`` or ``hep-th``."""
    if value in _DOTLESS_CATEGORIES:
        return True
    archive, dot, subject = value.partition(".")
    return (
        bool(dot)
        and (archive in _ARCHIVES or archive in _DOTLESS_CATEGORIES)
        and _SUBJECT.fullmatch(subject) is not None
    )


def find_arxiv_id_in_text(text: str) -> str | None:
    """An arXiv id mentioned in free text ("arXiv preprint arXiv:2301.12345"), or None."""
    for match in _ARXIV_IN_TEXT.finditer(text):
        parsed = parse_arxiv_id(match.group(1))
        if parsed:
            return str(parsed)
    return None
