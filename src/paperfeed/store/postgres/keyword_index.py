"""The PostgreSQL store's keyword index: BM25 postings and statistics kept in tables.

Papers are analyzed here, in Python, by tantivy's analyzers
(:mod:`paperfeed.index.keyword_terms`), so that a term, a term frequency and a field
length mean exactly what they mean in the SQLite store's tantivy index. Tables
(migration 0010):

- ``keyword_terms``: one row per (family, token) with its document frequencies;
- ``keyword_postings``: one row per (term, paper) with the term's frequencies and the
  paper's fieldnorm code;
- ``keyword_docs``: per paper, the fieldnorm codes of title and abstract, its exact field
  lengths and its term ids (what a re-index or a delete takes off again);
- ``keyword_totals``: documents and tokens per field, for avgdl.

Every write of a paper queues its key in ``keyword_pending`` (a trigger); a refresh
takes a batch of keys, removes what the index holds of them and adds what the store now
holds, in one transaction, so the statistics always describe exactly the papers indexed.
Refreshes of several processes take turns (an advisory lock), never ingest's writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from paperfeed.index.keyword_terms import Analysis, DocumentTerms, document_terms, fieldnorm_to_id

# Term families (keyword_terms.family).
WORDS = 0
NAMES = 1
CODES = 2
# Advisory lock key of keyword refreshes (see store.py for the others).
KEYWORD_LOCK = 0x7061706572_03
_SMALLINT_MAX = 32_767

_REMOVE_POSTINGS = """
WITH old AS (
    SELECT d.paper_pk, t.id FROM keyword_docs d, unnest(d.terms) AS t(id)
    WHERE d.paper_pk = ANY(%s)
), gone AS (
    DELETE FROM keyword_postings p USING old
    WHERE p.term_id = old.id AND p.paper_pk = old.paper_pk
    RETURNING p.term_id, p.tf, p.tf_title, p.tf_abstract
)
UPDATE keyword_terms k SET df = k.df - g.n, df_title = k.df_title - g.n_title,
    df_abstract = k.df_abstract - g.n_abstract
FROM (
    SELECT term_id, count(*) AS n, count(*) FILTER (WHERE tf_title > 0) AS n_title,
        count(*) FILTER (WHERE tf_abstract > 0) AS n_abstract
    FROM gone GROUP BY term_id
) g
WHERE k.id = g.term_id
"""

_REMOVE_DOCS = """
WITH gone AS (DELETE FROM keyword_docs WHERE paper_pk = ANY(%s) RETURNING *)
UPDATE keyword_totals SET
    docs = docs - (SELECT count(*) FROM gone),
    tokens_text = tokens_text - (SELECT COALESCE(sum(len_text), 0) FROM gone),
    tokens_title = tokens_title - (SELECT COALESCE(sum(len_title), 0) FROM gone),
    tokens_abstract = tokens_abstract - (SELECT COALESCE(sum(len_abstract), 0) FROM gone),
    tokens_authors = tokens_authors - (SELECT COALESCE(sum(len_authors), 0) FROM gone),
    tokens_categories = tokens_categories - (SELECT COALESCE(sum(len_categories), 0) FROM gone)
WHERE id = 1
"""


def index_batch(conn: psycopg.Connection[Any], analysis: Analysis, batch_size: int) -> int:
    """Re-index one batch of queued papers in one transaction; how many keys it took
    from the queue (0: the queue is empty)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (KEYWORD_LOCK,))
        pks = [
            int(r[0])
            for r in conn.execute(
                "DELETE FROM keyword_pending WHERE pk IN ("
                " SELECT pk FROM keyword_pending ORDER BY pk LIMIT %s FOR UPDATE SKIP LOCKED"
                ") RETURNING pk",
                (batch_size,),
            )
        ]
        if not pks:
            return 0
        conn.execute(_REMOVE_POSTINGS, (pks,))
        conn.execute(_REMOVE_DOCS, (pks,))
        rows = conn.execute(
            "SELECT pk, title, abstract, authors, categories FROM papers "
            "WHERE pk = ANY(%s) ORDER BY pk",
            (pks,),
        ).fetchall()
        docs = [
            (int(pk), document_terms(analysis, title, abstract, authors, categories))
            for pk, title, abstract, authors, categories in rows
        ]
        if docs:
            _add(conn, docs)
        return len(pks)


def _add(conn: psycopg.Connection[Any], docs: Sequence[tuple[int, DocumentTerms]]) -> None:
    vocabulary: set[tuple[int, str]] = set()
    for _, terms in docs:
        vocabulary.update((WORDS, t) for t in terms.words)
        vocabulary.update((NAMES, t) for t in terms.names)
        vocabulary.update((CODES, t) for t in terms.codes)
    ordered = sorted(vocabulary)
    families = [f for f, _ in ordered]
    tokens = [t for _, t in ordered]
    conn.execute(
        "INSERT INTO keyword_terms (family, token) "
        "SELECT * FROM unnest(%s::smallint[], %s::text[]) ON CONFLICT DO NOTHING",
        (families, tokens),
    )
    ids: dict[tuple[int, str], int] = {
        (int(f), str(t)): int(i)
        for i, f, t in conn.execute(
            "SELECT k.id, k.family, k.token FROM keyword_terms k "
            "JOIN unnest(%s::smallint[], %s::text[]) AS q(family, token) "
            "ON k.family = q.family AND k.token = q.token",
            (families, tokens),
        )
    }
    df: dict[int, list[int]] = {}
    totals = [0, 0, 0, 0, 0, 0]
    postings: list[tuple[int, int, int, int, int, int]] = []
    for pk, terms in docs:
        fn = fieldnorm_to_id(terms.text_length)
        for token, (tf, tf_title, tf_abstract) in terms.words.items():
            term = ids[(WORDS, token)]
            postings.append((term, pk, tf, tf_abstract, min(tf_title, _SMALLINT_MAX), fn))
            counts = df.setdefault(term, [0, 0, 0])
            counts[0] += 1
            counts[1] += tf_title > 0
            counts[2] += tf_abstract > 0
        for family, field_terms, length in (
            (NAMES, terms.names, terms.authors_length),
            (CODES, terms.codes, terms.categories_length),
        ):
            fn = fieldnorm_to_id(length)
            for token, tf in field_terms.items():
                term = ids[(family, token)]
                postings.append((term, pk, tf, 0, 0, fn))
                df.setdefault(term, [0, 0, 0])[0] += 1
    # In the primary key's order: each term's leaf pages are visited once per batch.
    postings.sort()
    with conn.cursor() as cur:
        with cur.copy(
            "COPY keyword_postings (term_id, paper_pk, tf, tf_abstract, tf_title, fn) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "int8", "int4", "int4", "int2", "int2"])
            for row in postings:
                copy.write_row(row)
        with cur.copy(
            "COPY keyword_docs (paper_pk, fn_title, fn_abstract, len_text, len_title, "
            "len_abstract, len_authors, len_categories, terms) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["int8", "int2", "int2", "int4", "int4", "int4", "int4", "int4", "int4[]"]
            )
            for pk, terms in docs:
                lengths = (
                    terms.text_length,
                    terms.title_length,
                    terms.abstract_length,
                    terms.authors_length,
                    terms.categories_length,
                )
                term_ids = [ids[(WORDS, t)] for t in terms.words]
                term_ids += [ids[(NAMES, t)] for t in terms.names]
                term_ids += [ids[(CODES, t)] for t in terms.codes]
                copy.write_row(
                    (
                        pk,
                        fieldnorm_to_id(terms.title_length),
                        fieldnorm_to_id(terms.abstract_length),
                        *lengths,
                        term_ids,
                    )
                )
                totals[0] += 1
                for i, n in enumerate(lengths, start=1):
                    totals[i] += n
    changed = sorted(df)
    conn.execute(
        "UPDATE keyword_terms k SET df = k.df + v.n, df_title = k.df_title + v.n_title, "
        "df_abstract = k.df_abstract + v.n_abstract "
        "FROM unnest(%s::int[], %s::int[], %s::int[], %s::int[]) "
        "AS v(id, n, n_title, n_abstract) WHERE k.id = v.id",
        (
            changed,
            [df[t][0] for t in changed],
            [df[t][1] for t in changed],
            [df[t][2] for t in changed],
        ),
    )
    conn.execute(
        "UPDATE keyword_totals SET docs = docs + %s, tokens_text = tokens_text + %s, "
        "tokens_title = tokens_title + %s, tokens_abstract = tokens_abstract + %s, "
        "tokens_authors = tokens_authors + %s, tokens_categories = tokens_categories + %s "
        "WHERE id = 1",
        totals,
    )
