"""A store holding the bundled sample, embedded with the fake encoder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from paperfeed.index import semantic
from paperfeed.ingest import ingest_file
from paperfeed.model import Paper, User
from paperfeed.recommend.feedback import local_user
from paperfeed.recommend.vectors import ActiveVectors, open_active_vectors
from paperfeed.sample import sample_path
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, Store, open_store


@dataclass
class Embedded:
    settings: Settings
    store: Store
    vectors: ActiveVectors
    user: User
    papers: list[Paper]

    def find(self, word: str) -> list[Paper]:
        """Sample papers whose title holds ``word`` (case-insensitive), by id."""
        return sorted(
            (p for p in self.papers if word.lower() in p.title.lower()), key=lambda p: p.id
        )


def embed_sample(settings: Settings, model: str = "fake") -> Store:
    store = open_store(settings)
    ingest_file(store, sample_path())
    semantic.activate(store, model)
    semantic.build(settings, store)
    return store


@pytest.fixture
def embedded(settings: Settings) -> Iterator[Embedded]:
    store = embed_sample(settings)
    try:
        vectors = open_active_vectors(settings, store)
        assert vectors is not None
        papers = store.query_papers(PaperQuery())
        yield Embedded(settings, store, vectors, local_user(store), papers)
    finally:
        store.close()
