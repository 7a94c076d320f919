"""LiveSearch: a long-running process follows new vectors and model switches."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from paperfeed.errors import PaperfeedError
from paperfeed.index import semantic
from paperfeed.index.live import LiveSearch, ReembedResult
from paperfeed.model import new_paper
from paperfeed.search import SearchEngine, SearchMode, SearchOptions
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, Store

SEMANTIC = SearchOptions(mode=SearchMode.SEMANTIC, limit=5)


def add(store: Store, *titles: str) -> None:
    store.write_batch(
        [
            IncomingRecord(
                new_paper(
                    title=t,
                    abstract=f"An abstract about {t.lower()}.",
                    categories=["cs.LG"],
                    published=dt.date(2024, 1, 1),
                    source="jsonl",
                )
            )
            for t in titles
        ],
        [],
    )
    store.refresh_keyword_index()


def found(live: LiveSearch, query: str) -> list[str]:
    return [h.paper.title for h in live.search(query, SEMANTIC).hits]


def test_starts_keyword_only_and_picks_up_vectors_built_later(
    store_settings: Settings, store: Store
) -> None:
    add(store, "Graph neural networks for molecules", "Diffusion models for images")
    semantic.activate(store, "fake")
    live = LiveSearch(store_settings, store, check_every=0)
    assert not live.semantic_available
    semantic.build(store_settings, store)  # e.g. `paperfeed index` in another process
    live.refresh(wait=True)
    assert live.semantic_available
    assert found(live, "graph neural networks")[0] == "Graph neural networks for molecules"


def test_new_vectors_of_the_same_model_are_seen_without_reloading_the_encoder(
    store_settings: Settings, store: Store
) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    live = LiveSearch(store_settings, store, check_every=0)
    encoder = live.current().encoder
    assert "Speech recognition with language models" not in found(live, "speech recognition")
    add(store, "Speech recognition with language models")
    semantic.build(store_settings, store)  # an ingest elsewhere saves a new index generation
    assert found(live, "speech recognition")[0] == "Speech recognition with language models"
    assert live.current().encoder is encoder


def test_a_new_generation_reopens_every_view(store_settings: Settings, store: Store) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    live = LiveSearch(store_settings, store, check_every=0)
    title = "Speech recognition with language models"
    add(store, title)
    semantic.build(store_settings, store)
    hits = {h.paper.title: h.semantic_score for h in live.search(title, SEMANTIC).hits}
    # Only the new title view holds a vector this close to the query: the paper's title.
    assert hits[title] == pytest.approx(1.0, abs=2e-3)


def test_checks_are_rate_limited(store_settings: Settings, store: Store) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    live = LiveSearch(store_settings, store, check_every=3600)
    semantic.build(store_settings, store)
    assert not live.semantic_available  # not looked at again within the hour
    live.refresh(wait=True)
    assert live.semantic_available


def test_reembed_with_another_model_switches_only_when_complete(
    store_settings: Settings, store: Store
) -> None:
    add(store, "Graph neural networks for molecules", "Diffusion models for images")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    live = LiveSearch(store_settings, store, check_every=0)
    old = live.current()
    assert old.encoder is not None
    assert old.encoder.dim == 32

    answered_during: list[list[str]] = []
    gate = threading.Event()

    def progress(done: int, total: int) -> None:
        # Mid-build: the old model still answers every query.
        if done and not answered_during:
            answered_during.append(found(live, "diffusion models"))
            assert live.current() is old
            gate.set()

    results: list[ReembedResult] = []
    thread = live.reembed("fake:48", progress=progress, on_done=results.append)
    with pytest.raises(PaperfeedError, match="already running"):
        live.reembed("fake:48")
    thread.join(timeout=60)
    assert gate.is_set()
    assert answered_during[0][0] == "Diffusion models for images"
    assert results == [ReembedResult("fake:48", 2, None)]
    assert semantic.active_model(store) == "fake:48"
    new = live.current()
    assert new is not old
    assert new.encoder is not None
    assert new.encoder.dim == 48
    assert found(live, "diffusion models")[0] == "Diffusion models for images"


def test_a_failed_reembed_leaves_the_old_model_answering(
    store_settings: Settings, store: Store
) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    live = LiveSearch(store_settings, store, check_every=0)
    results: list[ReembedResult] = []
    live.reembed("no-such-model", on_done=results.append).join(timeout=60)
    assert results[0].error is not None
    assert "unknown encoder" in results[0].error
    assert semantic.active_model(store) == "fake"
    assert found(live, "graph networks")[0] == "Graph neural networks for molecules"


def test_keyword_only_mode_never_loads_a_model(store_settings: Settings, store: Store) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    live = LiveSearch(store_settings, store, semantic_search=False, check_every=0)
    assert not live.semantic_available
    hits = live.search("graph", SearchOptions(mode=SearchMode.KEYWORD)).hits
    assert [h.paper.title for h in hits] == ["Graph neural networks for molecules"]


def test_a_prepared_engine_keeps_its_bare_encoder_for_reopening(
    store_settings: Settings, store: Store
) -> None:
    add(store, "Graph neural networks for molecules")
    semantic.activate(store, "fake")
    semantic.build(store_settings, store)
    wrapped: list[object] = []

    def prepare(engine: SearchEngine) -> SearchEngine:
        wrapped.append(engine.encoder)
        return engine

    live = LiveSearch(store_settings, store, check_every=0, prepare=prepare)
    bare = live.current().encoder
    add(store, "Speech recognition with language models")
    semantic.build(store_settings, store)
    assert found(live, "speech recognition")[0] == "Speech recognition with language models"
    # Files (SQLite): a new generation is reopened, prepared again, with the same bare
    # encoder (no model reload). PostgreSQL: vectors are read live, nothing to reopen.
    assert len(wrapped) == (2 if store_settings.database_url is None else 1)
    assert all(e is bare for e in wrapped)


def test_one_process_embeds_a_model_at_a_time(
    store_settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    add(store, "Graph neural networks for molecules", "Diffusion models for images")
    semantic.activate(store, "fake")
    model_id = semantic.load_encoder(store_settings, "fake").model_id
    # Another process (here: a lease taken by hand) is embedding with this model.
    held = store.acquire_job(semantic.embedding_job(model_id))
    assert held is not None
    results: list[int] = []
    waiting = threading.Thread(
        target=lambda: results.append(semantic.build(store_settings, store)[2])
    )
    with caplog.at_level("WARNING", logger="paperfeed.index.semantic"):
        waiting.start()
        waiting.join(timeout=1.5)
        assert waiting.is_alive()  # it waits instead of embedding the same papers
        assert store.count_embeddings(model_id) == 0
        held.release()
        waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert results == [2]
    assert any("another process is embedding" in r.getMessage() for r in caplog.records)
    assert semantic.build(store_settings, store)[2] == 0  # nothing left to do, lease free
