"""Search end to end over a real store of each backend (SQLite, PostgreSQL): keyword,
semantic, hybrid, filters, similar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index import semantic
from paperfeed.model import new_paper
from paperfeed.search import (
    Fusion,
    SearchEngine,
    SearchMode,
    SearchOptions,
    fuse,
)
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, SearchFilters, Store, open_store

PAPERS = [
    (
        "Diffusion models for text-to-image personalization",
        "We personalize diffusion models to a subject from a few images.",
        ["cs.CV"],
        "2024-01-10",
        ["Ada Lovelace"],
    ),
    (
        "Key-locked rank one editing for personalization",
        "Rank one edits of text-to-image diffusion models personalize them quickly.",
        ["cs.CV", "cs.LG"],
        "2024-02-01",
        ["Noam Shazeer"],
    ),
    (
        "Attention is all you need",
        "The transformer, based solely on attention mechanisms, for machine translation.",
        ["cs.CL"],
        "2017-06-12",
        ["Ashish Vaswani", "Noam Shazeer"],
    ),
    (
        "Graph neural networks for molecules",
        "Message passing networks predict molecular properties.",
        ["cs.LG", "q-bio.BM"],
        "2020-03-03",
        ["Marie Curie"],
    ),
    (
        "Speech recognition with large language models",
        "Generative error correction of speech recognition hypotheses with LLMs.",
        ["cs.CL", "eess.AS"],
        "2024-03-14",
        ["Alan Turing"],
    ),
]


@pytest.fixture
def engine(store_settings: Settings) -> Iterator[SearchEngine]:
    settings = store_settings
    with open_store(settings) as store:
        store.write_batch(
            [
                IncomingRecord(
                    new_paper(
                        title=t,
                        abstract=a,
                        categories=c,
                        published=dt.date.fromisoformat(d),
                        authors=au,
                        source="jsonl",
                    )
                )
                for t, a, c, d, au in PAPERS
            ],
            [],
        )
        store.refresh_keyword_index()
        semantic.activate(store, "fake")
        semantic.build(settings, store)
        yield semantic.open_engine(settings, store)


def titles(engine: SearchEngine, query: str, **kw: object) -> list[str]:
    results = engine.search(query, SearchOptions(**kw))  # type: ignore[arg-type]
    return [h.paper.title for h in results.hits]


def test_keyword_mode_ranks_by_bm25_and_highlights(engine: SearchEngine) -> None:
    results = engine.search("personalization", SearchOptions(mode=SearchMode.KEYWORD))
    assert [h.paper.title for h in results.hits][:2] == [
        "Diffusion models for text-to-image personalization",
        "Key-locked rank one editing for personalization",
    ]
    assert all(h.keyword_score is not None and h.semantic_score is None for h in results.hits)
    assert "<mark>personalize</mark>" in results.hits[0].snippet


def test_query_syntax_fields_phrases_categories_exclusions(engine: SearchEngine) -> None:
    kw = {"mode": SearchMode.KEYWORD}
    assert titles(engine, "au:shazeer", **kw) == [
        "Attention is all you need",
        "Key-locked rank one editing for personalization",
    ] or set(titles(engine, "au:shazeer", **kw)) == {
        "Attention is all you need",
        "Key-locked rank one editing for personalization",
    }
    assert titles(engine, 'ti:"attention is all"', **kw) == ["Attention is all you need"]
    assert titles(engine, "models cat:cs.LG", **kw) == [
        "Key-locked rank one editing for personalization"
    ]
    assert "Key-locked rank one editing for personalization" not in titles(
        engine, "diffusion -rank", **kw
    )


def test_semantic_and_hybrid_modes(engine: SearchEngine) -> None:
    sem = engine.search("diffusion models personalization", SearchOptions(mode=SearchMode.SEMANTIC))
    assert sem.hits
    assert all(h.semantic_score is not None for h in sem.hits)
    hyb = engine.search("diffusion personalization", SearchOptions(mode=SearchMode.HYBRID))
    assert {h.paper.title for h in hyb.hits[:2]} == {
        "Diffusion models for text-to-image personalization",
        "Key-locked rank one editing for personalization",
    }
    assert hyb.hits[0].keyword_score is not None
    assert hyb.hits[0].semantic_score is not None
    rrf = engine.search("diffusion personalization", SearchOptions(fusion=Fusion.RRF))
    assert {h.paper.id for h in rrf.hits} == {h.paper.id for h in hyb.hits}


def test_filters_apply_on_both_sides(engine: SearchEngine) -> None:
    filters = SearchFilters(date_from=dt.date(2024, 1, 1))
    for mode in SearchMode:
        got = titles(engine, "diffusion speech transformer", mode=mode, filters=filters)
        assert got
        assert "Attention is all you need" not in got
    only_cl = SearchFilters(categories=("cs.CL",))
    assert set(titles(engine, "models", filters=only_cl, mode=SearchMode.SEMANTIC)) <= {
        "Attention is all you need",
        "Speech recognition with large language models",
    }
    q_bio = SearchFilters(categories=("q-bio.*",))
    assert titles(engine, "networks", filters=q_bio, mode=SearchMode.KEYWORD) == [
        "Graph neural networks for molecules"
    ]
    assert titles(engine, "models", filters=SearchFilters(source="bibtex")) == []


def test_nonsense_query_says_nothing_relevant(engine: SearchEngine) -> None:
    results = engine.search("qwxz vbnm plokij", SearchOptions(semantic_floor=0.3))
    assert results.nothing_relevant
    assert results.hits == []


def test_pagination_and_stable_ties(engine: SearchEngine) -> None:
    everything = engine.search("models networks diffusion", SearchOptions(limit=10))
    page2 = engine.search("models networks diffusion", SearchOptions(limit=2, offset=2))
    assert [h.paper.id for h in page2.hits] == [h.paper.id for h in everything.hits[2:4]]
    assert [h.rank for h in page2.hits] == [3, 4]
    again = engine.search("models networks diffusion", SearchOptions(limit=10))
    assert [h.paper.id for h in again.hits] == [h.paper.id for h in everything.hits]


def test_long_pasted_abstract(engine: SearchEngine) -> None:
    abstract = " ".join([PAPERS[1][1]] * 30)
    results = engine.search(abstract)
    assert results.hits[0].paper.title == "Key-locked rank one editing for personalization"


def test_similar_papers(engine: SearchEngine) -> None:
    pid = (
        engine.store.query_papers.__self__.get_paper(  # type: ignore[attr-defined]
            "Diffusion models for text-to-image personalization"
        )
        if False
        else None
    )
    del pid
    first = engine.search("Diffusion models for text-to-image personalization").hits[0].paper
    hits = engine.similar(first.id, limit=3)
    assert first.id not in [h.paper.id for h in hits]
    assert len(hits) == 3
    assert [h.rank for h in hits] == [1, 2, 3]
    with pytest.raises(NotFoundError):
        engine.similar("2401.99999")


def test_errors_are_clear(engine: SearchEngine, settings: Settings) -> None:
    with pytest.raises(PaperfeedError, match="empty"):
        engine.search("   ")
    with pytest.raises(PaperfeedError, match="limit"):
        SearchOptions(limit=0)
    with pytest.raises(PaperfeedError, match="keyword weight"):
        SearchOptions(keyword_weight=2.0)
    keyword_only = SearchEngine(engine.store)
    with pytest.raises(PaperfeedError, match="paperfeed index"):
        keyword_only.search("diffusion", SearchOptions(mode=SearchMode.SEMANTIC))


def test_fuse_orders_and_breaks_ties_by_key() -> None:
    fused = fuse(
        {1: 10.0, 2: 5.0}, {2: 0.9, 3: 0.8}, fusion=Fusion.SCORE, keyword_weight=0.5, rrf_k=60
    )
    # Min-max: 1 and 2 each top one side (0.5 fused), a tie broken by key; 3 is last.
    assert [r.pk for r in fused] == [1, 2, 3]
    assert [r.score for r in fused] == [0.5, 0.5, 0.0]
    assert (fused[1].keyword_score, fused[1].semantic_score) == (5.0, 0.9)
    tie = fuse({5: 1.0, 4: 1.0}, {}, fusion=Fusion.RRF, keyword_weight=0.5, rrf_k=60)
    assert [r.pk for r in tie] == [4, 5]


def test_unchanged_papers_are_not_embedded_again(settings: Settings, store: Store) -> None:
    store.write_batch([IncomingRecord(new_paper(title="One paper", source="x"))], [])
    semantic.activate(store, "fake")
    assert semantic.build(settings, store)[2] == 1
    assert semantic.build(settings, store)[2] == 0
    # Only upvotes change: the text is the same, so no new vector.
    store.write_batch([IncomingRecord(new_paper(title="One paper", upvotes=5, source="x"))], [])
    assert semantic.build(settings, store)[2] == 0
    store.write_batch(
        [IncomingRecord(new_paper(title="One paper", abstract="Now with text.", source="x"))], []
    )
    assert semantic.build(settings, store)[2] == 1
    status = semantic.status(settings, store)
    assert (status.papers, status.embedded, status.pending) == (1, 1, 0)
