"""PostgreSQL keyword search scores exactly like the SQLite store's tantivy index.

The same papers go into a SQLite store (tantivy BM25) and a PostgreSQL store (postings
in tables, paperfeed.store.postgres.keyword); every query must return the same papers
with the same scores (to float rounding), for plain words, field prefixes, phrases,
categories, exclusions and filters. Updates and deletes must leave the PostgreSQL
statistics exactly as a rebuild from scratch makes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from paperfeed.index.keyword_query import parse_query
from paperfeed.index.keyword_terms import (
    FIELD_NORMS_TABLE,
    Analysis,
    document_terms,
    fieldnorm_to_id,
    idf,
)
from paperfeed.model import Paper, new_paper
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, PaperQuery, SearchFilters, Store, open_store
from paperfeed.store.postgres.store import PostgresStore
from tests.pg_server import PgServer

_VOCABULARY = (
    "diffusion model models modeling image images text language reasoning rank one edit "
    "editing personalization transformer attention network networks graph molecule speech "
    "recognition learning reinforcement policy robot agents large small protein cell cells "
    "gene expression tumor über Müller naïve café state-of-the-art"
).split()
_FIXED = [
    (
        "Diffusion models for text-to-image personalization",
        "We personalize diffusion models to a subject from a few images. Diffusion models diffuse.",
        ["cs.CV"],
        ["Ada Lovelace"],
    ),
    (
        "Key-locked rank one editing for personalization",
        "Rank one edits of text-to-image diffusion models personalize them quickly; rank one "
        "rank one.",
        ["cs.CV", "cs.LG"],
        ["Noam Shazeer"],
    ),
    (
        "Attention is all you need",
        "The transformer, based solely on attention mechanisms. " + "x" * 45 + " attention is all",
        ["cs.CL"],
        ["Ashish Vaswani", "Noam Shazeer"],
    ),
    (
        "Reinforcement learning",
        "reinforcement learning and learning reinforcement",
        ["cs.LG", "stat.ML"],
        [],
    ),
    ("Müller's über model of naïve cafés", "", ["q-bio.BM"], ["Jürgen Müller", "Williams"]),
    (
        "Language models are few-shot learners",
        "Large language models " * 30,
        ["cs.CL"],
        ["Tom Brown", "William Smith"],
    ),
]


def _corpus() -> list[Paper]:
    rng = random.Random(7)
    papers = [
        new_paper(
            title=t,
            abstract=a,
            categories=c,
            authors=au,
            source="jsonl",
            published=dt.date(2024, 1, 1 + i),
        )
        for i, (t, a, c, au) in enumerate(_FIXED)
    ]
    cats = ["cs.CV", "cs.CL", "cs.LG", "cs.AI", "stat.ML", "q-bio.BM", "eess.AS"]
    for i in range(60):
        title = " ".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(2, 9)))
        # Lengths from a few words to several hundred: fieldnorm codes beyond 40 too.
        abstract = " ".join(rng.choice(_VOCABULARY) for _ in range(rng.choice([0, 5, 30, 90, 400])))
        authors = [
            f"{rng.choice(['Ann', 'Bob', 'Noam'])} {rng.choice(['Lee', 'Shazeer', 'Smith'])}"
            for _ in range(rng.randint(0, 3))
        ]
        papers.append(
            new_paper(
                title=f"{title} {i}",
                abstract=abstract,
                categories=rng.sample(cats, rng.randint(1, 3)),
                authors=authors,
                published=dt.date(2023, 1 + i % 12, 1 + i % 28),
                arxiv_id=f"2301.{i:05d}",
                source="jsonl",
            )
        )
    return papers


QUERIES = (
    "diffusion",
    "diffusion models",
    "model models modeling",
    "large language models reasoning",
    "muller uber",
    "Williams",
    "ti:diffusion",
    "ti:personalization model",
    "abs:rank",
    "au:shazeer",
    "au:william",
    '"diffusion models"',
    '"rank one"',
    'ti:"rank one" editing',
    '"reinforcement learning"',
    'au:"noam shazeer"',
    '"attention is all"',
    '"language models"',
    "cat:cs.CV model",
    "cat:cs.*",
    "cat:cs.C* learning",
    "cat:stat.ML OR cat:cs.AI",
    "model -diffusion",
    "model -cat:cs.CV",
    'model -"rank one"',
    "images -ti:image",
    "diffusion AND attention",
    "ti:diffusion OR ti:attention",
    '"diffusion"',
    "x" * 60,
    "x" * 60 + " model",
    "protein cell gene expression tumor",
)
FILTERS = (
    SearchFilters(categories=("cs.CL",)),
    SearchFilters(date_from=dt.date(2023, 6, 1), date_to=dt.date(2023, 12, 31)),
    SearchFilters(categories=("cs.*",)),
)


def _fill(store: Store, papers: list[Paper]) -> None:
    store.write_batch([IncomingRecord(p) for p in papers], [])
    store.refresh_keyword_index()


@pytest.fixture
def pg_settings(settings: Settings, pg_server: PgServer) -> Iterator[Settings]:
    with pg_server.fresh_database() as url:
        yield dataclasses.replace(settings, database_url=url)


def _by_id(store: Store, hits: list[tuple[int, float]]) -> list[tuple[str, float]]:
    papers = store.papers_by_pk([pk for pk, _ in hits])
    return [(papers[pk].id, score) for pk, score in hits]


def assert_same_ranking(
    expected: list[tuple[str, float]], got: list[tuple[str, float]], what: str
) -> None:
    assert dict(got).keys() == dict(expected).keys(), what
    for key, score in expected:
        assert math.isclose(dict(got)[key], score, rel_tol=1e-5, abs_tol=1e-6), (what, key)

    # The same order, except among scores equal to float rounding.
    def order(hits: list[tuple[str, float]]) -> list[str]:
        return [k for k, _ in sorted(hits, key=lambda h: (-round(h[1], 4), h[0]))]

    assert order(got) == order(expected), what


def compare(sqlite: Store, pg: Store, *, limit: int = 1000) -> int:
    checked = 0
    for text in QUERIES:
        query = parse_query(text)
        for filters in (None, *FILTERS):
            a = _by_id(sqlite, sqlite.keyword_search(query, limit=limit, filters=filters))
            b = _by_id(pg, pg.keyword_search(query, limit=limit, filters=filters))
            assert_same_ranking(a, b, f"{text!r} {filters}")
            checked += bool(a)
    return checked


def test_postgres_scores_equal_tantivy_scores(settings: Settings, pg_settings: Settings) -> None:
    papers = _corpus()
    with open_store(settings) as sqlite, open_store(pg_settings) as pg:
        assert isinstance(pg, PostgresStore)
        _fill(sqlite, papers)
        _fill(pg, papers)
        assert pg.keyword_index_pending() == 0
        matched = compare(sqlite, pg)
        # The fixture exercises the queries: most of them find something.
        assert matched >= 3 * len(QUERIES)
        # A top-k cut returns the best k of the same ranking.
        for text in ("diffusion models", "model -diffusion", "cat:cs.*"):
            full = pg.keyword_search(parse_query(text), limit=1000)
            assert pg.keyword_search(parse_query(text), limit=5) == full[:5]


def _snapshot(store: PostgresStore) -> dict[str, Any]:
    with store.pool.connection() as conn:
        return {
            "terms": conn.execute(
                "SELECT family, token, df, df_title, df_abstract FROM keyword_terms "
                "WHERE df > 0 ORDER BY family, token"
            ).fetchall(),
            "postings": conn.execute(
                "SELECT pa.id, k.family, k.token, p.tf, p.tf_title, p.tf_abstract, p.fn "
                "FROM keyword_postings p JOIN keyword_terms k ON k.id = p.term_id "
                "JOIN papers pa ON pa.pk = p.paper_pk ORDER BY 1, 2, 3"
            ).fetchall(),
            "docs": conn.execute(
                "SELECT pa.id, d.fn_title, d.fn_abstract, d.len_text, d.len_title, "
                "d.len_abstract, d.len_authors, d.len_categories, cardinality(d.terms) "
                "FROM keyword_docs d JOIN papers pa ON pa.pk = d.paper_pk ORDER BY 1"
            ).fetchall(),
            "totals": conn.execute(
                "SELECT docs, tokens_text, tokens_title, tokens_abstract, tokens_authors, "
                "tokens_categories FROM keyword_totals"
            ).fetchall(),
        }


def test_updates_and_deletes_keep_the_statistics_exact(
    settings: Settings, pg_settings: Settings, tmp_path: Any
) -> None:
    papers = _corpus()
    with open_store(pg_settings) as pg:
        assert isinstance(pg, PostgresStore)
        _fill(pg, papers)
        # Longer abstracts replace the stored ones (merge), one paper loses its authors'
        # weight to a new title word, and three papers are deleted.
        changed = [
            dataclasses.replace(p, abstract=p.abstract + " reinforcement policy agents " * 3)
            for p in papers[10:20]
        ]
        report = pg.write_batch([IncomingRecord(p) for p in changed], [])
        assert report.merged == 10
        assert pg.keyword_index_pending() == 10
        with pg.pool.connection() as conn:
            conn.execute("DELETE FROM papers WHERE id = ANY(%s)", ([p.id for p in papers[30:33]],))
            conn.execute(
                "UPDATE papers SET categories = '[\"cs.RO\"]' WHERE id = %s", (papers[40].id,)
            )
        assert pg.keyword_index_pending() == 14
        pg.refresh_keyword_index()
        incremental = _snapshot(pg)
        # Rebuilt from nothing: the same terms, postings, documents and totals.
        with pg.pool.connection() as conn, conn.transaction():
            conn.execute("TRUNCATE keyword_postings, keyword_docs")
            conn.execute("UPDATE keyword_terms SET df = 0, df_title = 0, df_abstract = 0")
            conn.execute(
                "UPDATE keyword_totals SET docs = 0, tokens_text = 0, tokens_title = 0, "
                "tokens_abstract = 0, tokens_authors = 0, tokens_categories = 0"
            )
            conn.execute("INSERT INTO keyword_pending (pk) SELECT pk FROM papers")
        assert pg.refresh_keyword_index(batch_size=7) == len(papers) - 3
        assert _snapshot(pg) == incremental
        assert incremental["totals"][0][0] == len(papers) - 3
        # And a fresh tantivy index of the same papers ranks the same.
        final = list(pg.iter_papers(PaperQuery()))
        with open_store(settings) as sqlite:
            _fill(sqlite, final)
            compare(sqlite, pg)


def test_document_terms_count_like_tantivy() -> None:
    analysis = Analysis()
    terms = document_terms(
        analysis,
        "Diffusion models",
        "Diffusion " + "x" * 45 + " model-based DIFFUSION",
        ["Jürgen Müller"],
        ["cs.CV", "cs.LG", "cs.CV"],
    )
    # Title x4 (8 tokens), abstract 4 (the 45-letter token is dropped), authors 2.
    assert terms.text_length == 14
    assert terms.words["diffus"] == (4 + 2, 1, 2)
    assert terms.words["model"] == (4 + 1, 1, 1)
    assert terms.names == {"jurgen": 1, "muller": 1}
    assert terms.codes == {"cs.cv": 1, "cs.lg": 1}
    assert terms.categories_length == 3
    assert analysis.phrase_count(["a b c a b", "b a b"], ["a", "b"], stem=True) == 3
    # A dropped token keeps its position: no phrase across it.
    assert analysis.phrase_count(["a " + "y" * 50 + " b"], ["a", "b"], stem=True) == 0


def test_fieldnorm_codes_and_idf_are_tantivys() -> None:
    # tantivy's fieldnorm/code.rs: exact to 40, then 42, 44, ...; the last code 2013265944.
    assert FIELD_NORMS_TABLE[:42] == (*range(41), 42)
    assert FIELD_NORMS_TABLE[-1] == 2_013_265_944
    assert [fieldnorm_to_id(n) for n in (0, 40, 41, 42, 43, 10**12)] == [0, 40, 40, 41, 41, 255]
    # query/bm25.rs test: idf(1, 2) = ln 2.
    assert idf(1, 2) == np.float32(math.log(2.0))


def test_a_bulk_refresh_repacks_and_vacuums_the_postings(
    settings: Settings, pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paperfeed.store.postgres import store as pg_store

    # The maintenance after a large refresh (20,000 papers in production), on a small one.
    monkeypatch.setattr(pg_store, "VACUUM_AFTER", 10)
    papers = _corpus()
    with open_store(settings) as sqlite, open_store(pg_settings) as pg:
        assert isinstance(pg, PostgresStore)
        _fill(sqlite, papers)
        built = _postings_index_file(pg)
        _fill(pg, papers)  # REINDEX CONCURRENTLY, then VACUUM (ANALYZE), on a pooled connection
        assert _postings_index_file(pg) != built  # the index was rebuilt
        before = _snapshot(pg)
        compare(sqlite, pg)  # searches answer the same after the rebuild
        assert _snapshot(pg) == before


def _postings_index_file(store: PostgresStore) -> int:
    with store.pool.connection() as conn:
        row = conn.execute(
            "SELECT i.relfilenode FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'keyword_postings'::regclass AND x.indisprimary"
        ).fetchone()
    assert row is not None
    return int(row[0])
