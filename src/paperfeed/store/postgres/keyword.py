"""Keyword search on PostgreSQL: the query language scored with tantivy's BM25.

A parsed :class:`~paperfeed.index.keyword_query.KeywordQuery` means and scores here what
it means and scores in the SQLite store's tantivy index (``KeywordIndex._compile``):

- plain words: at least one must occur in the ``text`` field; each word's BM25 adds up;
- required groups (phrases, quoted words, ``ti:`` / ``abs:`` / ``au:`` / ``cat:`` terms,
  ``AND``, ``OR`` of those): each must match, and what matches adds its score too
  (a term its BM25 in its field, a phrase BM25 with its terms' idfs summed and the
  phrase's frequency, a ``cat:`` prefix 1.0);
- exclusions leave papers out; filters decide what matches, never how it ranks.

Single terms are scored by the server from their postings (``keyword_postings``, see
:mod:`.keyword_index`), with the weights and the 256-entry length normalisation table
computed here in 32-bit floats exactly as tantivy does, so each term's score is the same
float as tantivy's. Only the postings of the query's terms are read: a query costs the
lengths of its terms' posting lists, never a scan of the corpus. Phrases are found
from the postings of their terms (papers holding all of them) and confirmed on the
papers' text, where positions are counted as tantivy counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from paperfeed.index.keyword_query import Field, KeywordQuery, Term
from paperfeed.index.keyword_terms import (
    TITLE_REPEATS,
    Analysis,
    average_fieldnorm,
    bm25,
    idf,
    term_weight,
    tf_cache,
)
from paperfeed.store.postgres.keyword_index import CODES, NAMES, WORDS
from paperfeed.store.postgres.session import at_least

# How a leg reads its frequency and length: from the posting (tf, fn), from the title or
# abstract columns with the paper's fieldnorm code of that field, or a constant 1.0.
_TF = 0
_TITLE = 1
_ABSTRACT = 2
_CONSTANT = 3
# Offsets of each field's normalisation table in the one array sent to the server.
_FIELD_BASE = {
    Field.ANY: 0,
    Field.TITLE: 256,
    Field.ABSTRACT: 512,
    Field.AUTHORS: 768,
    Field.CATEGORIES: 1024,
}
_LIKE_SPECIAL = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})
WORK_MEM = "64MB"


@dataclass(frozen=True, slots=True)
class CorpusStats:
    docs: int
    tokens: dict[Field, int]

    def caches(self) -> list[float]:
        """The five fields' normalisation tables, one after the other."""
        out: list[float] = []
        for name in (Field.ANY, Field.TITLE, Field.ABSTRACT, Field.AUTHORS, Field.CATEGORIES):
            average = average_fieldnorm(self.tokens[name], self.docs)
            out += [float(x) for x in tf_cache(average)]
        return out


@dataclass(frozen=True, slots=True)
class _TermRow:
    id: int
    df: int
    df_title: int
    df_abstract: int

    def df_in(self, where: Field) -> int:
        if where is Field.TITLE:
            return self.df_title
        if where is Field.ABSTRACT:
            return self.df_abstract
        return self.df


@dataclass(slots=True)
class _Plan:
    """The query as legs (single terms the server scores), phrases (scored here) and
    exclusions; ``need`` holds every slot bit a paper must have."""

    leg_ids: list[int] = field(default_factory=list)
    leg_slots: list[int] = field(default_factory=list)
    leg_weights: list[float] = field(default_factory=list)
    leg_mults: list[int] = field(default_factory=list)
    leg_kinds: list[int] = field(default_factory=list)
    leg_bases: list[int] = field(default_factory=list)
    phrase_pks: list[int] = field(default_factory=list)
    phrase_slots: list[int] = field(default_factory=list)
    phrase_scores: list[float] = field(default_factory=list)
    excluded_ids: dict[int, list[int]] = field(default_factory=dict)  # kind -> term ids
    excluded_pks: set[int] = field(default_factory=set)
    need: int = 0

    def leg(self, term: int, slot: int, weight: float, kind: int, base: int) -> None:
        # The same term twice in one slot (two words with one stem) counts twice, as
        # two term queries do in tantivy.
        for i, (t, s, k) in enumerate(
            zip(self.leg_ids, self.leg_slots, self.leg_kinds, strict=True)
        ):
            if t == term and s == slot and k == kind and kind != _CONSTANT:
                self.leg_mults[i] += 1
                return
        self.leg_ids.append(term)
        self.leg_slots.append(slot)
        self.leg_weights.append(weight)
        self.leg_mults.append(1)
        self.leg_kinds.append(kind)
        self.leg_bases.append(base)


def _slot(i: int) -> int:
    """Slot bit ``i`` as a signed 64-bit value (bit 63 is negative in a bigint)."""
    bit = 1 << i
    return bit - (1 << 64) if bit >= 1 << 63 else bit


class KeywordSearch:
    """One query against one connection (see :meth:`run`)."""

    def __init__(
        self, conn: psycopg.Connection[Any], analysis: Analysis, query: KeywordQuery
    ) -> None:
        self.conn = conn
        self.analysis = analysis
        self.query = query
        self._stats: CorpusStats | None = None
        self._terms: dict[tuple[int, str], _TermRow | None] = {}

    # -- statistics ----------------------------------------------------------------------
    def stats(self) -> CorpusStats:
        if self._stats is None:
            row = self.conn.execute(
                "SELECT docs, tokens_text, tokens_title, tokens_abstract, tokens_authors, "
                "tokens_categories FROM keyword_totals WHERE id = 1"
            ).fetchone()
            assert row is not None  # migration 0010 inserts it
            self._stats = CorpusStats(
                int(row[0]),
                {
                    Field.ANY: int(row[1]),
                    Field.TITLE: int(row[2]),
                    Field.ABSTRACT: int(row[3]),
                    Field.AUTHORS: int(row[4]),
                    Field.CATEGORIES: int(row[5]),
                },
            )
        return self._stats

    def _load_terms(self, keys: Sequence[tuple[int, str]]) -> None:
        wanted = sorted({k for k in keys if k not in self._terms})
        if not wanted:
            return
        for k in wanted:
            self._terms[k] = None
        for i, family, token, df, df_title, df_abstract in self.conn.execute(
            "SELECT k.id, k.family, k.token, k.df, k.df_title, k.df_abstract "
            "FROM keyword_terms k JOIN unnest(%s::smallint[], %s::text[]) AS q(family, token) "
            "ON k.family = q.family AND k.token = q.token",
            ([f for f, _ in wanted], [t for _, t in wanted]),
        ):
            self._terms[(int(family), str(token))] = _TermRow(
                int(i), int(df), int(df_title), int(df_abstract)
            )

    def _idf(self, row: _TermRow, where: Field) -> np.float32:
        return idf(row.df_in(where), self.stats().docs)

    # -- analysis ------------------------------------------------------------------------
    def _tokens(self, where: Field, text: str) -> list[str]:
        analyzer = self.analysis.names if where is Field.AUTHORS else self.analysis.words
        return list(analyzer.analyze(text))

    def _term_tokens(self, term: Term) -> list[str]:
        return [tok for part in term.tokens for tok in self._tokens(term.field, part)]

    # -- planning ------------------------------------------------------------------------
    def plan(self) -> _Plan | None:
        """The query's legs, phrases and exclusions; None when it matches nothing."""
        query = self.query
        words = [tok for word in query.words for tok in self._tokens(Field.ANY, word)]
        if query.words and not words and not query.required:
            return None
        if not words and not query.required:
            return None
        keys = [(WORDS, w) for w in words]
        for term in [t for group in query.required for t in group] + list(query.excluded):
            if term.field is Field.CATEGORIES:
                if not term.prefix:
                    keys.append((CODES, term.text.casefold()))
            else:
                family = NAMES if term.field is Field.AUTHORS else WORDS
                keys += [(family, tok) for tok in self._term_tokens(term)]
        self._load_terms(keys)
        if self.stats().docs == 0:
            return None
        plan = _Plan()
        slot = 0
        if words:
            bit = _slot(slot)
            plan.need |= bit
            for word in words:
                row = self._terms[(WORDS, word)]
                if row is not None and row.df > 0:
                    weight = term_weight([self._idf(row, Field.ANY)])
                    plan.leg(row.id, bit, float(weight), _TF, _FIELD_BASE[Field.ANY])
            slot += 1
        for group in query.required:
            bit = _slot(slot)
            plan.need |= bit
            for term in group:
                self._add_term(plan, term, bit)
            slot += 1
        for term in query.excluded:
            self._exclude(plan, term)
        return plan

    def _add_term(self, plan: _Plan, term: Term, bit: int) -> None:
        if term.field is Field.CATEGORIES:
            if term.prefix:
                for term_id in self._category_prefix(term):
                    plan.leg(term_id, bit, 1.0, _CONSTANT, 0)
                return
            row = self._terms[(CODES, term.text.casefold())]
            if row is not None and row.df > 0:
                weight = term_weight([self._idf(row, Field.CATEGORIES)])
                plan.leg(row.id, bit, float(weight), _TF, _FIELD_BASE[Field.CATEGORIES])
            return
        tokens = self._term_tokens(term)
        if not tokens:
            return  # nothing indexable: matches no paper
        family = NAMES if term.field is Field.AUTHORS else WORDS
        rows = [self._terms[(family, tok)] for tok in tokens]
        found = [r for r in rows if r is not None and r.df_in(term.field) > 0]
        if len(found) < len(rows):
            return  # a term no paper has (in this field)
        if len(tokens) > 1:
            for pk, score in self._phrase_scores(term, tokens, found).items():
                plan.phrase_pks.append(pk)
                plan.phrase_slots.append(bit)
                plan.phrase_scores.append(score)
            return
        single = float(term_weight([self._idf(found[0], term.field)]))
        kind = {Field.TITLE: _TITLE, Field.ABSTRACT: _ABSTRACT}.get(term.field, _TF)
        plan.leg(found[0].id, bit, single, kind, _FIELD_BASE[term.field])

    def _exclude(self, plan: _Plan, term: Term) -> None:
        if term.field is Field.CATEGORIES:
            if term.prefix:
                ids = self._category_prefix(term)
            else:
                row = self._terms[(CODES, term.text.casefold())]
                ids = [row.id] if row is not None else []
            plan.excluded_ids.setdefault(_TF, []).extend(ids)
            return
        tokens = self._term_tokens(term)
        family = NAMES if term.field is Field.AUTHORS else WORDS
        rows = [self._terms[(family, tok)] for tok in tokens]
        found = [r for r in rows if r is not None and r.df_in(term.field) > 0]
        if not tokens or len(found) < len(rows):
            return
        if len(tokens) > 1:
            plan.excluded_pks.update(self._phrase_scores(term, tokens, found))
            return
        kind = {Field.TITLE: _TITLE, Field.ABSTRACT: _ABSTRACT}.get(term.field, _TF)
        plan.excluded_ids.setdefault(kind, []).append(found[0].id)

    def _category_prefix(self, term: Term) -> list[int]:
        # tantivy: a regular expression over whole codes, "<prefix>.*".
        prefix = term.text.casefold().rstrip("*").translate(_LIKE_SPECIAL)
        return [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM keyword_terms WHERE family = %s AND df > 0 "
                "AND token LIKE %s ORDER BY id",
                (CODES, prefix + "%"),
            )
        ]

    def _phrase_scores(
        self, term: Term, tokens: list[str], rows: list[_TermRow]
    ) -> dict[int, float]:
        """BM25 of a phrase in each paper where it occurs."""
        where = term.field
        ids = sorted({r.id for r in rows})
        if where is Field.TITLE:
            text = (
                "SELECT p.paper_pk, min(d.fn_title) FROM keyword_postings p "
                "JOIN keyword_docs d ON d.paper_pk = p.paper_pk "
                "WHERE p.term_id = ANY(%s) AND p.tf_title > 0 "
            )
        elif where is Field.ABSTRACT:
            text = (
                "SELECT p.paper_pk, min(d.fn_abstract) FROM keyword_postings p "
                "JOIN keyword_docs d ON d.paper_pk = p.paper_pk "
                "WHERE p.term_id = ANY(%s) AND p.tf_abstract > 0 "
            )
        else:
            text = "SELECT p.paper_pk, min(p.fn) FROM keyword_postings p WHERE p.term_id = ANY(%s) "
        candidates = {
            int(pk): int(fn)
            for pk, fn in self.conn.execute(
                text + "GROUP BY p.paper_pk HAVING count(*) = %s", (ids, len(ids))
            )
        }
        if not candidates:
            return {}
        weight = term_weight([self._idf(r, where) for r in rows])
        cache = tf_cache(average_fieldnorm(self.stats().tokens[where], self.stats().docs))
        stem = where is not Field.AUTHORS
        scores: dict[int, float] = {}
        for pk, title, abstract, authors in self.conn.execute(
            "SELECT pk, title, abstract, authors FROM papers WHERE pk = ANY(%s)",
            (sorted(candidates),),
        ):
            if where is Field.TITLE:
                values: list[str] = [title]
            elif where is Field.ABSTRACT:
                values = [abstract]
            elif where is Field.AUTHORS:
                values = list(authors)
            else:
                values = [title] * TITLE_REPEATS + [abstract, *authors]
            count = self.analysis.phrase_count(values, tokens, stem=stem)
            if count:
                scores[int(pk)] = bm25(weight, cache, candidates[int(pk)], count)
        return scores

    # -- the search ----------------------------------------------------------------------
    def run(
        self, *, limit: int, filter_sql: str = "", filter_params: Sequence[Any] = ()
    ) -> list[tuple[int, float]]:
        """(pk, score) of the best ``limit`` matches, best first, ties by pk.

        ``filter_sql`` is a condition over ``papers p`` (the store's search filters)."""
        if limit <= 0:
            return []
        plan = self.plan()
        if plan is None or (not plan.leg_ids and not plan.phrase_pks):
            return []
        params: list[Any] = [
            plan.leg_ids,
            plan.leg_slots,
            plan.leg_weights,
            plan.leg_mults,
            plan.leg_kinds,
            plan.leg_bases,
            self.stats().caches(),
        ]
        score = "(l.w * ({tf}::real / ({tf}::real + c.c[l.base + {fn} + 1])))"
        parts = [
            "SELECT p.paper_pk, l.slot, l.mult * "
            + score.format(tf="p.tf", fn="p.fn")
            + "::float8 AS s FROM legs l CROSS JOIN caches c "
            f"JOIN keyword_postings p ON p.term_id = l.term_id WHERE l.kind = {_TF}"
        ]
        for kind, column, norm in (
            (_TITLE, "tf_title", "fn_title"),
            (_ABSTRACT, "tf_abstract", "fn_abstract"),
        ):
            if kind in plan.leg_kinds:
                parts.append(
                    "SELECT p.paper_pk, l.slot, l.mult * "
                    + score.format(tf=f"p.{column}", fn=f"d.{norm}")
                    + "::float8 FROM legs l CROSS JOIN caches c "
                    f"JOIN keyword_postings p ON p.term_id = l.term_id AND p.{column} > 0 "
                    f"JOIN keyword_docs d ON d.paper_pk = p.paper_pk WHERE l.kind = {kind}"
                )
        if _CONSTANT in plan.leg_kinds:
            # A cat: prefix scores 1.0 once per paper, however many of its codes match.
            parts.append(
                "SELECT DISTINCT p.paper_pk, l.slot, 1.0::float8 FROM legs l "
                f"JOIN keyword_postings p ON p.term_id = l.term_id WHERE l.kind = {_CONSTANT}"
            )
        if plan.phrase_pks:
            parts.append("SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::float8[])")
            params += [plan.phrase_pks, plan.phrase_slots, plan.phrase_scores]
        where = ["m.slots = %s"]
        where_params: list[Any] = [plan.need]
        for kind, condition in (
            (_TF, ""),
            (_TITLE, " AND x.tf_title > 0"),
            (_ABSTRACT, " AND x.tf_abstract > 0"),
        ):
            if plan.excluded_ids.get(kind):
                where.append(
                    "NOT EXISTS (SELECT 1 FROM keyword_postings x WHERE "
                    f"x.term_id = ANY(%s) AND x.paper_pk = m.paper_pk{condition})"
                )
                where_params.append(sorted(set(plan.excluded_ids[kind])))
        if plan.excluded_pks:
            where.append("m.paper_pk <> ALL(%s)")
            where_params.append(sorted(plan.excluded_pks))
        join = ""
        if filter_sql:
            join = "JOIN papers p ON p.pk = m.paper_pk "
            where.append(filter_sql)
            where_params += list(filter_params)
        sql = (
            "WITH legs AS (SELECT * FROM unnest(%s::int[], %s::bigint[], %s::real[], "
            "%s::int[], %s::int[], %s::int[]) AS l(term_id, slot, w, mult, kind, base)), "
            "caches AS (SELECT %s::real[] AS c), "
            "hits AS (" + " UNION ALL ".join(parts) + ") "
            "SELECT m.paper_pk, m.score FROM ("
            "SELECT paper_pk, sum(s) AS score, bit_or(slot) AS slots FROM hits GROUP BY paper_pk"
            ") m " + join + "WHERE " + " AND ".join(where) + " "
            "ORDER BY m.score DESC, m.paper_pk LIMIT %s"
        )
        with self.conn.transaction():
            # Room to add up the scores of every paper the query's words reach (600,000
            # for a SciFact claim at 1M papers) in memory: the default 4MB made PostgreSQL
            # spill them to disk in 21 batches, which took a third of the time. A server
            # configured with more keeps its own.
            at_least(self.conn, "work_mem", WORK_MEM)
            rows = self.conn.execute(sql, [*params, *where_params, limit]).fetchall()
        return [(int(pk), float(score)) for pk, score in rows]
