"""The search query language compiled to PostgreSQL full-text search.

A parsed :class:`~paperfeed.index.keyword_query.KeywordQuery` becomes one ``tsquery`` (the
part the GIN index answers: words, phrases, field terms, text exclusions) plus SQL
conditions for what a tsquery cannot say (``cat:`` terms). It means what the FTS5 form
means for SQLite:

- plain words: at least one must occur in title, abstract or authors (``w1 | w2``);
- phrases: consecutive words (``a <-> b``); ``ti:`` / ``abs:`` / ``au:`` restrict a term
  to the title (weight A), the abstract (B) or the authors (C) of ``paper_search.tsv``;
- ``cat:``: token phrases over the category codes, exactly as FTS5 matches its
  ``categories`` column (``cat:cs.CL`` is the phrase ``cs cl``, ``cat:cs.*`` any category
  with the token ``cs``, ``cat:cs.C*`` a prefix);
- exclusions: ``!term`` in the tsquery, ``NOT`` for categories.

Tokens are folded and split here exactly as ``paperfeed_fold`` does for documents
(migration 0003), so every operand of the tsquery is a run of letters and digits: user
text never reaches ``to_tsquery`` as syntax.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from paperfeed.index.keyword_query import Field, KeywordQuery, Term

TS_CONFIG = "paperfeed"
# ts_rank weights for {D, C, B, A}: authors (C) and abstract (B) count 1, the title (A) 4,
# the same proportions as SQLite's BM25 column weights.
RANK_WEIGHTS = "{0.0, 0.25, 0.25, 1.0}"
_WEIGHT_LABELS = {
    Field.ANY: "",
    Field.TITLE: "A",
    Field.ABSTRACT: "B",
    Field.AUTHORS: "C",
}
_TOKEN = re.compile(r"[^\W_]+")


def fold_tokens(text: str) -> list[str]:
    """Lower-case, diacritics removed, split into runs of letters and digits.

    The Python twin of ``paperfeed_fold`` (migration 0003).
    """
    decomposed = unicodedata.normalize("NFKD", text.lower())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(stripped)


def _operand(term: Term) -> str | None:
    tokens = [t for tok in term.tokens for t in fold_tokens(tok)]
    if not tokens:
        return None
    label = _WEIGHT_LABELS[term.field]
    parts = [f"{t}:{label}" if label else t for t in tokens]
    return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"


def _category_pattern(term: Term) -> str | None:
    """A LIKE pattern over ``' ' || paperfeed_fold(categories::text) || ' '``."""
    tokens = [t for tok in term.tokens for t in fold_tokens(tok)]
    if not tokens:
        return None
    # As for FTS5: "cs.C*" makes "c" a prefix; "cs.*" is the whole token "cs".
    is_prefix = term.prefix and term.text.rstrip("*")[-1:].isalnum()
    return "% " + " ".join(tokens) + ("%" if is_prefix else " %")


_CATEGORY_TEXT = "(' ' || paperfeed_fold(p.categories::text) || ' ')"


@dataclass(slots=True)
class CompiledQuery:
    """SQL conditions over ``paper_search s`` joined to ``papers p``, and a ranking tsquery.

    ``conditions`` hold ``%s`` placeholders filled by ``params`` in order; ``rank_query``
    is the tsquery text whose matches give the score (None: every match scores 0).
    """

    conditions: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    rank_query: str | None = None
    needs_papers: bool = False

    @property
    def matches_nothing(self) -> bool:
        return not self.conditions


def compile_query(query: KeywordQuery) -> CompiledQuery:
    out = CompiledQuery()
    tsquery: list[str] = []
    ranked: list[str] = []
    for group in query.required:
        texts = [op for t in group if t.field is not Field.CATEGORIES if (op := _operand(t))]
        categories = [
            pat for t in group if t.field is Field.CATEGORIES if (pat := _category_pattern(t))
        ]
        ranked += texts
        if not categories:
            if texts:
                tsquery.append("(" + " | ".join(texts) + ")")
            continue
        alternatives = [f"{_CATEGORY_TEXT} LIKE %s" for _ in categories]
        params = list(categories)
        if texts:
            alternatives.append(f"s.tsv @@ to_tsquery('{TS_CONFIG}', %s)")
            params.append(" | ".join(texts))
        out.conditions.append("(" + " OR ".join(alternatives) + ")")
        out.params += params
        out.needs_papers = True
    words = [w for word in query.words for w in fold_tokens(word)]
    if words:
        any_word = " | ".join(dict.fromkeys(words))
        tsquery.append(f"({any_word})")
        ranked.append(any_word)
    for term in query.excluded:
        if term.field is Field.CATEGORIES:
            pattern = _category_pattern(term)
            if pattern:
                out.conditions.append(f"{_CATEGORY_TEXT} NOT LIKE %s")
                out.params.append(pattern)
                out.needs_papers = True
        elif (op := _operand(term)) is not None:
            tsquery.append(f"!{op}")
    if (tsquery and any(not part.startswith("!") for part in tsquery)) or out.conditions:
        if tsquery:
            out.conditions.insert(0, f"s.tsv @@ to_tsquery('{TS_CONFIG}', %s)")
            out.params.insert(0, " & ".join(tsquery))
    else:
        # Exclusions alone select nothing (the parser refuses such queries anyway).
        out.conditions.clear()
        out.params.clear()
    out.rank_query = " | ".join(ranked) if ranked else None
    return out
