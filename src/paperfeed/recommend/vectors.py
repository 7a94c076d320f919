"""The active model's paper vectors, opened without loading the model itself.

The recommender only needs stored vectors (a liked paper's, a candidate's): opening them
must not cost the seconds and the memory of loading the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from paperfeed.index import semantic
from paperfeed.index.encoder import Encoder
from paperfeed.index.vectors import VectorIndex, open_vector_index, read_meta
from paperfeed.settings import Settings
from paperfeed.store import Store


@dataclass(frozen=True, slots=True)
class ActiveVectors:
    """The vectors of the store's active model."""

    model: str  # the model name as configured ("minilm", "fake", a path)
    model_id: str  # the exact weights the vectors come from
    index: VectorIndex

    @property
    def generation(self) -> int:
        return self.index.meta.generation


def open_active_vectors(
    settings: Settings, store: Store, *, encoder: Encoder | None = None
) -> ActiveVectors | None:
    """The active model's vectors, or None while nothing is embedded."""
    model = semantic.active_model(store)
    model_id = store.get_setting(f"semantic.model_id:{model}")
    if model_id is None or store.count_embeddings(model_id) == 0:
        return None
    directory = semantic.vectors_dir(settings, model_id)
    meta = read_meta(directory)
    if meta is not None:
        dim = meta.dim
    else:  # vectors kept by the store itself (PostgreSQL): the model knows its dimension
        encoder = encoder or semantic.load_encoder(settings, model)
        dim = encoder.dim
    index = store.vector_index(model_id, dim) or open_vector_index(
        directory, model_id=model_id, dim=dim
    )
    return ActiveVectors(model=model, model_id=model_id, index=index)
