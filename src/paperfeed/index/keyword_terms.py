"""What both keyword backends share: tantivy's analysis of a paper and tantivy's BM25.

The SQLite store keeps its keyword index in tantivy (store/sqlite/keyword_index.py); the
PostgreSQL store keeps postings and statistics in tables and scores them itself
(store/postgres/keyword.py). For a migrated store to rank exactly like its SQLite
original, both read papers through the analyzers defined here, count terms and field
lengths the way tantivy's segment writer does, and score with tantivy's BM25:

- ``score = weight * tf / (tf + cache[fieldnorm_id])`` with ``weight = idf * (1 + K1)``,
  ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
  ``cache[id] = K1 * (1 - B + B * fieldnorm(id) / avgdl)`` (tantivy ``query/bm25.rs``),
  all in 32-bit floats as tantivy computes them;
- a field's length is the number of tokens its analyzer emits, summed over the field's
  values, stored as one byte (``fieldnorm/code.rs``): exact up to 40, then coarser;
  ``avgdl`` is the exact token total over the number of documents;
- a phrase scores as one term whose idf is the sum of its terms' idfs and whose
  frequency is the number of places the phrase occurs;
- a ``cat:`` prefix (a regex query in tantivy) scores 1.0, whatever the paper.

Fields: ``text`` is the title :data:`TITLE_REPEATS` times, the abstract and the authors,
stemmed (the one BM25 field plain words search); ``title`` and ``abstract`` (stemmed),
``authors`` (names: not stemmed) and ``categories`` (whole codes, lower case) serve the
field prefixes ``ti:``, ``abs:``, ``au:`` and ``cat:``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import tantivy

K1 = np.float32(1.2)
B = np.float32(0.75)
# A word in the title says more about a paper than the same word in its abstract.
TITLE_REPEATS = 4
# Tokens of this many bytes or more are dropped (identifiers, base64, URLs run together).
LONG_TOKEN_BYTES = 40


# tantivy's fieldnorm code: the field length of a document kept in one byte (exact up to
# 40 tokens, then coarser); FIELD_NORMS_TABLE[id] is the length a code stands for.
def _decode_fieldnorm(code: int) -> int:
    if code < 24:
        return code
    bits, shift = (code - 24) & 7, (code - 24) >> 3
    return 24 + (bits if shift == 0 else (bits | 8) << (shift - 1))


FIELD_NORMS_TABLE: tuple[int, ...] = tuple(_decode_fieldnorm(code) for code in range(256))


def fieldnorm_to_id(length: int) -> int:
    """The one-byte code of a field length (the largest table entry not above it)."""
    return bisect_right(FIELD_NORMS_TABLE, length) - 1


def id_to_fieldnorm(fieldnorm_id: int) -> int:
    return FIELD_NORMS_TABLE[fieldnorm_id]


# -- analysis ---------------------------------------------------------------------------
def words_analyzer(*, stem: bool) -> tantivy.TextAnalyzer:
    """Runs of letters and digits, lower-cased, accents folded (Müller = muller); English
    (Snowball) stemming for text, none for names ("Williams" is not "William")."""
    return _filtered(tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()), stem=stem)


def codes_analyzer() -> tantivy.TextAnalyzer:
    """A category code is one token, lower-cased (``cs.CL`` -> ``cs.cl``)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def _filtered(builder: tantivy.TextAnalyzerBuilder, *, stem: bool) -> tantivy.TextAnalyzer:
    builder = (
        builder.filter(tantivy.Filter.remove_long(LONG_TOKEN_BYTES))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stem:
        builder = builder.filter(tantivy.Filter.stemmer("english"))
    return builder.build()


class Analysis:
    """The analyzers of one thread (tantivy's analyzers are not shared between threads).

    Text is split by tantivy's tokenizer alone and each distinct token goes through the
    filters once (a per-token cache): the filters work token by token, so this is what
    the whole analyzer emits, four times faster through the Python binding.
    """

    def __init__(self) -> None:
        self.words = words_analyzer(stem=True)
        self.names = words_analyzer(stem=False)
        self.codes = codes_analyzer()
        self._split = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build()
        self._filters = {
            True: _filtered(tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()), stem=True),
            False: _filtered(tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()), stem=False),
        }
        # raw token -> analyzed token, "" where a filter drops it.
        self._cache: dict[bool, dict[str, str]] = {True: {}, False: {}}

    def positioned(self, text: str, *, stem: bool) -> list[str]:
        """The analyzed token at each position of ``text`` ("" where a filter dropped
        one: the position stays, as in tantivy, so a phrase cannot match across it)."""
        raw = self._split.analyze(text)
        cache = self._cache[stem]
        try:
            return [cache[t] for t in raw]
        except KeyError:
            if len(cache) > 500_000:
                cache.clear()
            analyzer = self._filters[stem]
            for t in raw:
                if t not in cache:
                    tokens = analyzer.analyze(t)
                    cache[t] = tokens[0] if tokens else ""
            return [cache[t] for t in raw]

    def tokens(self, text: str, *, stem: bool) -> list[str]:
        """What the words (``stem``) or names analyzer emits for ``text``."""
        return [t for t in self.positioned(text, stem=stem) if t]

    def phrase_count(self, values: Sequence[str], phrase: Sequence[str], *, stem: bool) -> int:
        """How many times the analyzed ``phrase`` occurs in the values of one field (a
        phrase never spans two values)."""
        n = len(phrase)
        count = 0
        first = phrase[0]
        for value in values:
            tokens = self.positioned(value, stem=stem)
            for start in range(len(tokens) - n + 1):
                if tokens[start] == first and all(
                    tokens[start + j] == phrase[j] for j in range(1, n)
                ):
                    count += 1
        return count


# -- documents --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DocumentTerms:
    """One paper as tantivy indexes it: per field, term counts and length in tokens.

    ``words`` maps each stemmed token to its counts in (text, title, abstract); ``text``
    is the field plain words search (title x TITLE_REPEATS, abstract, authors).
    """

    words: dict[str, tuple[int, int, int]]
    names: dict[str, int]
    codes: dict[str, int]
    text_length: int
    title_length: int
    abstract_length: int
    authors_length: int
    categories_length: int


def document_terms(
    analysis: Analysis,
    title: str,
    abstract: str,
    authors: Sequence[str],
    categories: Sequence[str],
) -> DocumentTerms:
    title_tokens = analysis.tokens(title, stem=True)
    abstract_tokens = analysis.tokens(abstract, stem=True)
    author_words = [t for name in authors for t in analysis.tokens(name, stem=True)]
    name_tokens = [t for name in authors for t in analysis.tokens(name, stem=False)]
    code_tokens = [t for code in categories for t in analysis.codes.analyze(code)]
    in_title = Counter(title_tokens)
    in_abstract = Counter(abstract_tokens)
    in_text = Counter(author_words)
    in_text.update(in_abstract)
    for token, n in in_title.items():
        in_text[token] += TITLE_REPEATS * n
    words = {
        token: (n, in_title.get(token, 0), in_abstract.get(token, 0))
        for token, n in in_text.items()
    }
    return DocumentTerms(
        words=words,
        names=dict(Counter(name_tokens)),
        # Indexed without frequencies (tantivy's "basic" option): a code counts once.
        codes=dict.fromkeys(code_tokens, 1),
        text_length=TITLE_REPEATS * len(title_tokens) + len(abstract_tokens) + len(author_words),
        title_length=len(title_tokens),
        abstract_length=len(abstract_tokens),
        authors_length=len(name_tokens),
        categories_length=len(code_tokens),
    )


# -- BM25 -------------------------------------------------------------------------------
def idf(doc_freq: int, doc_count: int) -> np.float32:
    """tantivy's idf, in 32-bit floats: ln(1 + (N - df + 0.5) / (df + 0.5))."""
    x = (np.float32(doc_count - doc_freq) + np.float32(0.5)) / (
        np.float32(doc_freq) + np.float32(0.5)
    )
    # ln of the float32 value, rounded once to float32 (as the C library's logf does).
    return np.float32(math.log(float(np.float32(1.0) + x)))


def term_weight(idfs: Sequence[np.float32]) -> np.float32:
    """idf x (K1 + 1); a phrase's idf is its terms' idfs summed in order."""
    total = np.float32(0.0)
    for value in idfs:
        total = np.float32(total + value)
    return np.float32(total * (np.float32(1.0) + K1))


def average_fieldnorm(total_tokens: int, doc_count: int) -> np.float32:
    return np.float32(np.float32(total_tokens) / np.float32(doc_count))


@lru_cache(maxsize=64)
def _tf_cache(average: float) -> npt.NDArray[np.float32]:
    avg = np.float32(average)
    norms = np.asarray(FIELD_NORMS_TABLE, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        cache = K1 * ((np.float32(1.0) - B) + (B * norms) / avg)
    cache.setflags(write=False)
    return cache.astype(np.float32, copy=False)


def tf_cache(average: np.float32) -> npt.NDArray[np.float32]:
    """K1 * (1 - B + B * fieldnorm / avgdl) for each of the 256 fieldnorm codes."""
    return _tf_cache(float(average))


def bm25(weight: np.float32, cache: npt.NDArray[np.float32], fieldnorm_id: int, tf: int) -> float:
    """One term's (or phrase's) score in one document, as tantivy computes it."""
    freq = np.float32(tf)
    return float(np.float32(weight * np.float32(freq / np.float32(freq + cache[fieldnorm_id]))))


__all__ = [
    "FIELD_NORMS_TABLE",
    "K1",
    "TITLE_REPEATS",
    "Analysis",
    "B",
    "DocumentTerms",
    "average_fieldnorm",
    "bm25",
    "codes_analyzer",
    "document_terms",
    "fieldnorm_to_id",
    "id_to_fieldnorm",
    "idf",
    "term_weight",
    "tf_cache",
    "words_analyzer",
]
