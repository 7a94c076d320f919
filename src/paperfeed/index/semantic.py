"""The semantic index of a store: which model, where its vectors live, keeping it current.

Vectors of model M live in ``<data_dir>/vectors/<slug of M>/``. The store records, per
model, which text each paper was embedded from, so that a paper whose title and abstract
did not change is never embedded again. The *active* model (a store setting) answers
searches; building another model's index leaves the active one answering until the new
one is complete, then :func:`activate` switches in one write.

Crash safety: vectors are saved (atomically) before the store records them as embedded,
so a crash can only cause work to be redone, never a paper marked embedded without a
vector.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperfeed.errors import PaperfeedError
from paperfeed.index.encoder import Encoder, get_encoder
from paperfeed.index.encoder import title_and_abstract as document_text
from paperfeed.index.vectors import VectorIndex, open_vector_index
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store

DEFAULT_MODEL = "minilm"
ACTIVE_MODEL_KEY = "semantic.model"
# Save the vector files at least this often during a long build, so an interruption loses
# at most this much embedding work.
SAVE_EVERY_SECONDS = 60.0
JOB_CHUNK = 2048


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def model_slug(model_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-.")
    return f"{slug[:60]}-{text_hash(model_id)[:8]}"


def vectors_dir(settings: Settings, model_id: str) -> Path:
    return settings.data_dir / "vectors" / model_slug(model_id)


def models_dir(settings: Settings) -> Path:
    return settings.data_dir / "models"


@dataclass(frozen=True, slots=True)
class IndexStatus:
    model: str
    model_id: str | None
    papers: int
    embedded: int
    pending: int
    keyword_pending: int
    vectors_path: str | None


def active_model(store: Store) -> str:
    return store.get_setting(ACTIVE_MODEL_KEY) or DEFAULT_MODEL


def load_encoder(settings: Settings, model: str) -> Encoder:
    return get_encoder(model, cache_dir=models_dir(settings))


def open_index(settings: Settings, encoder: Encoder, store: Store | None = None) -> VectorIndex:
    """The encoder's vector index: the store's own when it keeps vectors (PostgreSQL),
    else the files under ``vectors_dir``."""
    if store is not None:
        in_store = store.vector_index(encoder.model_id, encoder.dim)
        if in_store is not None:
            return in_store
    directory = vectors_dir(settings, encoder.model_id)
    return open_vector_index(directory, model_id=encoder.model_id, dim=encoder.dim)


def update_embeddings(
    store: Store,
    encoder: Encoder,
    index: VectorIndex,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
) -> int:
    """Embed every paper that is new or changed for this encoder; returns how many."""
    model_id = encoder.model_id
    total = sum(1 for _ in _iter_jobs(store, model_id))  # cheap: keys only
    done = 0
    embedded = 0
    after = 0
    unsaved: list[tuple[int, str, str]] = []
    last_save = time.monotonic()
    while True:
        jobs = store.embedding_jobs(model_id, limit=JOB_CHUNK, after_pk=after)
        if not jobs:
            break
        after = jobs[-1].pk
        texts = [document_text(j.title, j.abstract) for j in jobs]
        hashes = [text_hash(t) for t in texts]
        known = store.embedded_text_hashes(model_id, [j.pk for j in jobs])
        same_text = [
            (j.pk, h, j.content_hash)
            for j, h in zip(jobs, hashes, strict=True)
            if known.get(j.pk) == h
        ]
        if same_text:
            # Only non-text fields changed (e.g. upvotes): no new vector needed.
            store.record_embeddings(model_id, same_text)
        todo = [
            (j, t, h) for j, t, h in zip(jobs, texts, hashes, strict=True) if known.get(j.pk) != h
        ]
        if todo:
            base = done + len(same_text)

            def step(n: int, _total: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + n, total)

            vectors = encoder.encode_documents(
                [t for _, t, _ in todo], batch_size=batch_size, progress=step
            )
            index.add(np.asarray([j.pk for j, _, _ in todo], dtype=np.int64), vectors)
            unsaved.extend((j.pk, h, j.content_hash) for j, _, h in todo)
            embedded += len(todo)
        done += len(jobs)
        if progress is not None:
            progress(done, total)
        if unsaved and time.monotonic() - last_save > SAVE_EVERY_SECONDS:
            index.save()
            store.record_embeddings(model_id, unsaved)
            unsaved = []
            last_save = time.monotonic()
    if unsaved:
        index.save()
        store.record_embeddings(model_id, unsaved)
    return embedded


def _iter_jobs(store: Store, model_id: str) -> list[int]:
    pks: list[int] = []
    after = 0
    while True:
        jobs = store.embedding_jobs(model_id, limit=50_000, after_pk=after)
        if not jobs:
            return pks
        pks.extend(j.pk for j in jobs)
        after = jobs[-1].pk


def activate(store: Store, model: str) -> None:
    store.set_setting(ACTIVE_MODEL_KEY, model)


def status(settings: Settings, store: Store, model: str | None = None) -> IndexStatus:
    """What is indexed, without loading any model."""
    model = model or active_model(store)
    model_id = store.get_setting(f"semantic.model_id:{model}")
    papers = store.stats().papers
    embedded = store.count_embeddings(model_id) if model_id else 0
    path = vectors_dir(settings, model_id) if model_id else None
    return IndexStatus(
        model=model,
        model_id=model_id,
        papers=papers,
        embedded=embedded,
        pending=papers - embedded,
        keyword_pending=store.keyword_index_pending(),
        vectors_path=str(path) if path else None,
    )


def build(
    settings: Settings,
    store: Store,
    *,
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    make_active: bool = True,
) -> tuple[Encoder, VectorIndex, int]:
    """Bring one model's index up to date (the active model by default)."""
    model = model or active_model(store)
    encoder = load_encoder(settings, model)
    store.set_setting(f"semantic.model_id:{model}", encoder.model_id)
    index = open_index(settings, encoder, store)
    n = update_embeddings(store, encoder, index, progress=progress)
    if make_active and model != active_model(store):
        activate(store, model)
    return encoder, index, n


def open_engine(settings: Settings, store: Store, *, semantic: bool = True) -> SearchEngine:
    """A search engine over the store, with the active model's vectors when they exist."""
    if not semantic:
        return SearchEngine(store)
    model = active_model(store)
    model_id = store.get_setting(f"semantic.model_id:{model}")
    if model_id is None or store.count_embeddings(model_id) == 0:
        return SearchEngine(store)
    encoder = load_encoder(settings, model)
    if encoder.model_id != model_id:
        raise PaperfeedError(
            f"the index was built with {model_id!r} but model {model!r} now loads as "
            f"{encoder.model_id!r}; rebuild it with 'paperfeed index --rebuild'"
        )
    return SearchEngine(store, encoder=encoder, vectors=open_index(settings, encoder, store))
