"""Search end to end over a real store of each backend (SQLite, PostgreSQL): keyword,
semantic, hybrid, filters, similar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index import semantic
from paperfeed.index.encoder import document_views, title_and_abstract, views_text
from paperfeed.index.vectors import VectorIndex, open_vector_index
from paperfeed.model import new_paper
from paperfeed.search import (
    DenseScorer,
    Fusion,
    PaperViews,
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


def test_fuse_z_scores_each_list_and_fills_what_a_list_lacks() -> None:
    keyword = {1: 3.0, 2: 1.0}  # z: +1, -1
    dense = {2: 0.9, 3: 0.5, 4: 0.1}  # mean 0.5, sd 0.3266: z +1.2247, 0, -1.2247
    outside = {1: 0.3}  # keyword candidate beyond the dense list: z -0.6124
    fused = dict(
        fuse(
            keyword,
            dense,
            fusion=Fusion.SCORE,
            keyword_weight=0.5,
            rrf_k=60,
            semantic_outside=outside,
        )
    )
    assert list(fused) == [1, 2, 3, 4]
    # 3 and 4 are not on the keyword list: they get its lowest z (-1).
    assert list(fused.values()) == pytest.approx([0.1938, 0.1124, -0.5, -1.1124], abs=1e-4)
    # A list holding every match: papers outside it match nothing (BM25 0, z -2).
    complete = dict(
        fuse(
            keyword,
            dense,
            fusion=Fusion.SCORE,
            keyword_weight=0.5,
            rrf_k=60,
            semantic_outside=outside,
            keyword_complete=True,
        )
    )
    assert (complete[3], complete[4]) == pytest.approx((-1.0, -1.6124), abs=1e-4)
    assert complete[1] == pytest.approx(fused[1])
    weighted = dict(fuse(keyword, dense, fusion=Fusion.SCORE, keyword_weight=1.0, rrf_k=60))
    assert weighted[1] == pytest.approx(1.0)


def test_fuse_breaks_ties_by_key() -> None:
    for fusion in Fusion:
        tie = fuse({5: 1.0, 4: 1.0}, {}, fusion=fusion, keyword_weight=0.5, rrf_k=60)
        assert [k for k, _ in tie] == [4, 5]


def test_dense_score_is_the_best_view_z_with_each_views_own_list(settings: Settings) -> None:
    def index(name: str, rows: list[tuple[float, float]]) -> VectorIndex:
        idx = open_vector_index(settings.data_dir / name, model_id=name, dim=2, kind="exact")
        idx.add(np.array([1, 2, 3]), np.array(rows, dtype=np.float32))
        return idx

    # cosines to the query (1, 0): view a 1, 0.8, 0; view b 0, 0.6, 1.
    a = index("a", [(1.0, 0.0), (0.8, 0.6), (0.0, 1.0)])
    b = index("b", [(0.0, 1.0), (0.6, 0.8), (1.0, 0.0)])
    views = PaperViews({"a": a, "b": b}, main="a")
    scorer = DenseScorer(views, np.array([1.0, 0.0], dtype=np.float32), 2, None)
    assert scorer.listed() == {1, 2, 3}
    scores = scorer.score([1, 2, 3, 99])
    # Top-2 lists: a {1, 2} (mean 0.9, sd 0.1), b {3, 2} (mean 0.8, sd 0.2). Key 1 is off
    # b's list but still scored exactly there (z -4); 99 has no vector anywhere.
    assert set(scores) == {1, 2, 3}
    assert scores[1] == pytest.approx((1.0, 1.0), abs=1e-5)
    assert scores[2] == pytest.approx((-1.0, 0.8), abs=1e-5)
    assert scores[3] == pytest.approx((1.0, 1.0), abs=1e-5)
    # The floor judges the mean cosine over the views.
    assert scorer.floor_cosine == pytest.approx({1: 0.5, 2: 0.7, 3: 0.5}, abs=1e-5)


def test_document_views_and_the_text_they_are_hashed_from() -> None:
    assert document_views(" A title ", " Its abstract. ") == {
        "title": "A title",
        "abstract": "Its abstract.",
    }
    assert document_views("Only a title", "") == {
        "title": "Only a title",
        "abstract": "Only a title",
    }
    base = views_text("A title", "Its abstract.")
    assert views_text("Another title", "Its abstract.") != base
    assert views_text("A title", "Another abstract.") != base


def test_each_view_holds_its_own_text(store_settings: Settings, store: Store) -> None:
    store.write_batch(
        [
            IncomingRecord(
                new_paper(title="Graph networks", abstract="Message passing.", source="x")
            ),
            IncomingRecord(new_paper(title="Only a title", source="x")),
        ],
        [],
    )
    semantic.activate(store, "fake")
    encoder, main, n = semantic.build(store_settings, store)
    assert n == 2
    views = semantic.open_views(store_settings, encoder, store)
    assert set(views) == {"title", "abstract"}
    assert len(main) == len(views["abstract"]) == len(views["title"]) == 2
    pk = {p.title: k for k, p in store.papers_by_pk(list(views["abstract"].keys())).items()}
    want = encoder.encode_documents(["Graph networks", "Message passing.", "Only a title"])
    keys = np.array([pk["Graph networks"], pk["Only a title"]])
    np.testing.assert_allclose(views["title"].get(keys), want[[0, 2]], atol=2e-3)
    np.testing.assert_allclose(views["abstract"].get(keys), want[[1, 2]], atol=2e-3)


def test_vectors_of_the_single_vector_format_are_replaced(
    store_settings: Settings, store: Store
) -> None:
    papers = [("Graph networks", "Message passing."), ("Speech recognition", "With LLMs.")]
    store.write_batch(
        [IncomingRecord(new_paper(title=t, abstract=a, source="x")) for t, a in papers], []
    )
    store.refresh_keyword_index()
    semantic.activate(store, "fake")
    # A store embedded before views: one title + abstract vector per paper, old text hashes.
    encoder = semantic.load_encoder(store_settings, "fake")
    store.set_setting("semantic.model_id:fake", encoder.model_id)
    old = semantic.open_index(store_settings, encoder, store)
    jobs = store.embedding_jobs(encoder.model_id, limit=10)
    texts = [title_and_abstract(j.title, j.abstract) for j in jobs]
    old.add(np.array([j.pk for j in jobs]), encoder.encode_documents(texts))
    old.save()
    store.record_embeddings(
        encoder.model_id,
        [(j.pk, semantic.text_hash(t), j.content_hash) for j, t in zip(jobs, texts, strict=True)],
    )
    # It still searches meanwhile (the empty title view counts for nothing).
    engine = semantic.open_engine(store_settings, store)
    hits = engine.search("graph networks", SearchOptions(mode=SearchMode.SEMANTIC)).hits
    assert hits[0].paper.title == "Graph networks"
    assert semantic.build(store_settings, store)[2] == 2
    views = semantic.open_views(store_settings, encoder, store)
    keys = np.array([j.pk for j in jobs])
    want = encoder.encode_documents([a for _, a in papers])
    np.testing.assert_allclose(views["abstract"].get(keys), want, atol=2e-3)
    assert views["title"].contains(keys).all()
    assert semantic.build(store_settings, store)[2] == 0


def test_semantic_score_is_the_closest_views_cosine(engine: SearchEngine) -> None:
    title = "Graph neural networks for molecules"
    found = engine.search(title, SearchOptions(mode=SearchMode.SEMANTIC)).hits
    hits = {h.paper.title: h.semantic_score for h in found}
    # The query is the paper's title: its title view is (up to float16) the same vector.
    assert hits.pop(title) == pytest.approx(1.0, abs=2e-3)
    assert all(score is not None and score < 0.9 for score in hits.values())
    # The floor judges the mean cosine over the views: the paper whose title is the query
    # (title view 1.0) passes a high floor that no other paper reaches.
    close = engine.search(title, SearchOptions(mode=SearchMode.SEMANTIC, semantic_floor=0.5))
    assert [h.paper.title for h in close.hits] == [title]
    # In hybrid mode a keyword match is kept whatever its similarity.
    hybrid = engine.search("diffusion", SearchOptions(semantic_floor=0.99))
    assert hybrid.hits
    assert all(h.keyword_score is not None for h in hybrid.hits)


def test_keyword_matches_rank_above_papers_matching_no_word(engine: SearchEngine) -> None:
    # Two matches of five papers: the keyword list is complete, so the other three match
    # nothing and stay below both, however the fake encoder places them.
    got = titles(engine, "diffusion personalization", limit=5)
    assert set(got[:2]) == {
        "Diffusion models for text-to-image personalization",
        "Key-locked rank one editing for personalization",
    }


def test_one_index_without_views_still_searches(engine: SearchEngine) -> None:
    assert engine.views is not None
    single = SearchEngine(engine.store, encoder=engine.encoder, vectors=engine.vectors)
    assert single.views is not None
    assert list(single.views.indexes) == ["document"]
    assert single.vectors is engine.views.primary
    got = single.search("diffusion personalization").hits
    assert {h.paper.title for h in got[:2]} == {
        "Diffusion models for text-to-image personalization",
        "Key-locked rank one editing for personalization",
    }
    with pytest.raises(PaperfeedError, match="either vectors or views"):
        SearchEngine(engine.store, vectors=engine.vectors, views=engine.views)


def test_similar_papers_compare_abstracts(engine: SearchEngine) -> None:
    first = engine.search("Diffusion models for text-to-image personalization").hits[0].paper
    vectors = engine.vectors
    assert vectors is not None
    source = vectors.get(np.array([engine.store.paper_pk(first.id)]))[0]
    for hit in engine.similar(first.id, limit=4):
        other = vectors.get(np.array([engine.store.paper_pk(hit.paper.id)]))[0]
        assert hit.score == pytest.approx(float(other @ source), abs=1e-3)


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
