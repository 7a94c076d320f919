"""The app's engine: built once, lazily; a failure falls back to keywords with a note;
query embeddings are cached without changing them."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paperfeed.errors import PaperfeedError
from paperfeed.index.encoder import get_encoder
from paperfeed.search import SearchEngine
from paperfeed.store import Store
from paperfeed.web.context import CachedQueryEncoder, EngineProvider


class Counting:
    def __init__(self) -> None:
        self.inner = get_encoder("fake")
        self.model_id = self.inner.model_id
        self.calls: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        return self.inner.encode_queries(texts)


def test_query_cache_returns_the_same_vectors() -> None:
    inner = Counting()
    cached = CachedQueryEncoder(inner, size=2)
    first = cached.encode_queries(["diffusion models", "graph networks"])
    np.testing.assert_array_equal(
        first, inner.inner.encode_queries(["diffusion models", "graph networks"])
    )
    again = cached.encode_queries(["graph networks", "diffusion models", "speech"])
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])
    assert inner.calls == [["diffusion models", "graph networks"], ["speech"]]
    # Size 2: the least recently used entry ("graph networks") was dropped.
    cached.encode_queries(["graph networks"])
    assert inner.calls[-1] == ["graph networks"]


def test_engine_is_built_once_under_concurrent_first_use(store: Store) -> None:
    built: list[int] = []

    def factory() -> SearchEngine:
        built.append(1)
        return SearchEngine(store)

    provider = EngineProvider(store, factory)
    assert not provider.ready
    engines: list[SearchEngine] = []
    threads = [threading.Thread(target=lambda: engines.append(provider.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1]
    assert len({id(e) for e in engines}) == 1


def test_a_failing_engine_falls_back_to_keywords(store: Store) -> None:
    def factory() -> SearchEngine:
        raise PaperfeedError("the index was built with another model")

    provider = EngineProvider(store, factory)
    engine = provider.get()
    assert not engine.semantic_available
    assert provider.note == "Search by meaning is off: the index was built with another model"
