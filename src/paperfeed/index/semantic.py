"""The semantic index of a store: which model, where its vectors live, keeping it current.

A paper has one vector per view (:data:`paperfeed.index.encoder.VIEWS`: its title, its
abstract), each view in a vector index of its own. The abstract view is the model's index
proper, under the model's id: vectors of model M live in ``<data_dir>/vectors/<slug of
M>/``, and everything that wants one vector per paper (recommender, topics, map) opens it
with :func:`open_index`. The title view lives under the id ``M#title``. The store records,
per model, which text each paper was embedded from (both views' texts, one hash), so that
a paper whose title and abstract did not change is never embedded again. The *active*
model (a store setting) answers searches; building another model's index leaves the
active one answering until the new one is complete, then :func:`activate` switches in one
write.

Crash safety: vectors are saved (atomically) before the store records them as embedded,
so a crash can only cause work to be redone, never a paper marked embedded without a
vector.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperfeed.errors import PaperfeedError
from paperfeed.index.encoder import (
    ABSTRACT_VIEW,
    VIEWS,
    Encoder,
    document_views,
    get_encoder,
    views_text,
)
from paperfeed.index.vectors import VectorIndex, open_vector_index
from paperfeed.search import PaperViews, SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.store.base import JobLease

log = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm"
ACTIVE_MODEL_KEY = "semantic.model"
# Save the vector files at least this often during a long build, so an interruption loses
# at most this much embedding work.
SAVE_EVERY_SECONDS = 60.0
JOB_CHUNK = 2048
LEASE_POLL_SECONDS = 0.5
# Which views a model's vectors were made of. Stores embedded before views existed have
# no such setting but one title + abstract vector per paper: those are embedded again.
VIEWS_KEY = "semantic.views:{model_id}"
VIEWS_FORMAT = ",".join(VIEWS)


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


def view_model_id(model_id: str, view: str) -> str:
    """The id a view's vectors are kept under: the model's own for the main view."""
    return model_id if view == ABSTRACT_VIEW else f"{model_id}#{view}"


def _open_view(
    settings: Settings, model_id: str, dim: int, store: Store | None, view: str
) -> VectorIndex:
    index_id = view_model_id(model_id, view)
    if store is not None:
        in_store = store.vector_index(index_id, dim)
        if in_store is not None:
            return in_store
    return open_vector_index(vectors_dir(settings, index_id), model_id=index_id, dim=dim)


def open_index(settings: Settings, encoder: Encoder, store: Store | None = None) -> VectorIndex:
    """The encoder's vector index (the abstract view): the store's own when it keeps
    vectors (PostgreSQL), else the files under ``vectors_dir``."""
    return _open_view(settings, encoder.model_id, encoder.dim, store, ABSTRACT_VIEW)


def open_views(
    settings: Settings, encoder: Encoder, store: Store | None = None
) -> dict[str, VectorIndex]:
    """Every view's vector index of the encoder, by view name."""
    return {v: _open_view(settings, encoder.model_id, encoder.dim, store, v) for v in VIEWS}


def paper_views(indexes: dict[str, VectorIndex]) -> PaperViews:
    """What the search engine takes: the views with the abstract as the main one."""
    return PaperViews(dict(indexes), main=ABSTRACT_VIEW)


def _reset_if_old_format(store: Store, model_id: str, indexes: dict[str, VectorIndex]) -> None:
    """Forget vectors made by an older rule of what a paper's vectors are (one vector of
    title + abstract), so they are replaced instead of mixed with new ones."""
    key = VIEWS_KEY.format(model_id=model_id)
    if store.get_setting(key) == VIEWS_FORMAT:
        return
    if store.count_embeddings(model_id) > 0:
        store.drop_embeddings(model_id)
    for index in indexes.values():
        if len(index):
            index.remove(index.keys())
            index.save()
    store.set_setting(key, VIEWS_FORMAT)


def update_embeddings(
    store: Store,
    encoder: Encoder,
    indexes: dict[str, VectorIndex],
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
) -> int:
    """Embed every paper that is new or changed for this encoder, every view in one pass;
    returns how many papers."""
    model_id = encoder.model_id
    _reset_if_old_format(store, model_id, indexes)
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
        hashes = [text_hash(views_text(j.title, j.abstract)) for j in jobs]
        known = store.embedded_text_hashes(model_id, [j.pk for j in jobs])
        same_text = [
            (j.pk, h, j.content_hash)
            for j, h in zip(jobs, hashes, strict=True)
            if known.get(j.pk) == h
        ]
        if same_text:
            # Only non-text fields changed (e.g. upvotes): no new vector needed.
            store.record_embeddings(model_id, same_text)
        todo = [(j, h) for j, h in zip(jobs, hashes, strict=True) if known.get(j.pk) != h]
        if todo:
            base = done + len(same_text)
            views = [document_views(j.title, j.abstract) for j, _ in todo]
            # All views in one batched pass (batches group similar lengths); progress
            # counts papers, so a view's share of the work is scaled to one paper each.
            texts = [v[name] for name in VIEWS for v in views]

            def step(n: int, _total: int, base: int = base, per: int = len(VIEWS)) -> None:
                if progress is not None:
                    progress(base + n // per, total)

            vectors = encoder.encode_documents(texts, batch_size=batch_size, progress=step)
            keys = np.asarray([j.pk for j, _ in todo], dtype=np.int64)
            for i, name in enumerate(VIEWS):
                indexes[name].add(keys, vectors[i * len(todo) : (i + 1) * len(todo)])
            unsaved.extend((j.pk, h, j.content_hash) for j, h in todo)
            embedded += len(todo)
        done += len(jobs)
        if progress is not None:
            progress(done, total)
        if unsaved and time.monotonic() - last_save > SAVE_EVERY_SECONDS:
            _save(indexes)
            store.record_embeddings(model_id, unsaved)
            unsaved = []
            last_save = time.monotonic()
    if unsaved:
        _save(indexes)
        store.record_embeddings(model_id, unsaved)
    return embedded


def _save(indexes: dict[str, VectorIndex]) -> None:
    # The main view last: its generation is what a live searcher watches (see live.py),
    # so when it moves the other views are already saved.
    for name in sorted(indexes, key=lambda n: n == ABSTRACT_VIEW):
        indexes[name].save()


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
    """Bring one model's index up to date (the active model by default); returns the
    encoder, its main (abstract) view index and how many papers were embedded."""
    model = model or active_model(store)
    encoder = load_encoder(settings, model)
    store.set_setting(f"semantic.model_id:{model}", encoder.model_id)
    # One process embeds a model at a time (two ingests, or an ingest beside `paperfeed
    # index`, on one store): the other waits, then opens the vectors as they are and finds
    # only what is still to do, instead of embedding the same papers twice.
    lease = _wait_for_lease(store, embedding_job(encoder.model_id), model)
    try:
        indexes = open_views(settings, encoder, store)
        n = update_embeddings(store, encoder, indexes, progress=progress)
        if not n:  # else saving the new vectors tended the indexes already
            for index in indexes.values():
                index.tend()
    finally:
        lease.release()
    if make_active and model != active_model(store):
        activate(store, model)
    return encoder, indexes[ABSTRACT_VIEW], n


def embedding_job(model_id: str) -> str:
    """The store job name under which one process at a time embeds with ``model_id``."""
    return f"embeddings-{text_hash(model_id)[:16]}"


def _wait_for_lease(store: Store, job: str, model: str) -> JobLease:
    lease = store.acquire_job(job)
    if lease is not None:
        return lease
    # Logged at WARNING so that it shows without any logging set up: the command pauses.
    log.warning("another process is embedding papers with %s; waiting for it to finish", model)
    while lease is None:
        time.sleep(LEASE_POLL_SECONDS)
        lease = store.acquire_job(job)
    return lease


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
    return SearchEngine(
        store, encoder=encoder, views=paper_views(open_views(settings, encoder, store))
    )
