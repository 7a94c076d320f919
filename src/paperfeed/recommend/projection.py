"""The 2-D map of the corpus: a projection of the paper embeddings, cached in the store.

Methods (all start from a PCA to 50 dimensions, which keeps most of the structure of
384-d sentence embeddings and makes the neighbour search of the next step cheap):

- ``umap`` (default): UMAP (umap-learn), cosine metric, 15 neighbours. Chosen by
  measurement at 100,000 vectors on the 2-core machine (``benchmarks/map_projection.py``;
  the numbers are in docs/recommend.md).
- ``tsne``: openTSNE's FFT-accelerated t-SNE.
- ``pca``: the first two principal components; instant, but clusters overlap.

The layout is stored with the embedding model and the vector index generation it was
computed from; :func:`current_layout` returns it only while those still match, so a map is
recomputed after new papers are embedded or the model changes, never per request.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from paperfeed.errors import PaperfeedError
from paperfeed.recommend.vectors import ActiveVectors
from paperfeed.store import Store
from paperfeed.store.recommend import MapLayout

METHODS = ("umap", "tsne", "pca")
DEFAULT_METHOD = "umap"
PCA_DIMS = 50
NEIGHBOURS = 15
MAP_EXTRA = "pip install umap-learn==0.5.12 openTSNE==1.0.4 matplotlib==3.11.2"

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class MapBuild:
    layout: MapLayout
    seconds: float


def _module(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            # umap-learn warns on import that ParametricUMAP needs TensorFlow: not used here.
            warnings.simplefilter("ignore", ImportWarning)
            return importlib.import_module(name)
    except ImportError as exc:
        raise PaperfeedError(f"the map needs {name.split('.')[0]}: {MAP_EXTRA}") from exc


def pca(vectors: Matrix, dims: int, seed: int = 0) -> Matrix:
    """Principal components (randomized SVD), at most ``dims`` of them."""
    decomposition = _module("sklearn.decomposition")
    n = min(dims, vectors.shape[1], max(1, len(vectors) - 1))
    model = decomposition.PCA(n_components=n, svd_solver="randomized", random_state=seed)
    out: Matrix = np.asarray(model.fit_transform(vectors), dtype=np.float32)
    return out


def project(vectors: Matrix, method: str = DEFAULT_METHOD, *, seed: int = 0) -> Matrix:
    """2-D coordinates for unit vectors, one row per vector, scaled to [-1, 1]."""
    if method not in METHODS:
        raise PaperfeedError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n < 4:
        xy = np.zeros((n, 2), dtype=np.float32)
        xy[:, 0] = np.linspace(-1, 1, n) if n > 1 else 0.0
        return xy
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or (os.cpu_count() or 1)
    if method == "pca" or n < 2 * NEIGHBOURS:
        xy = pca(vectors, 2, seed)
    else:
        reduced = pca(vectors, PCA_DIMS, seed)
        if method == "umap":
            umap = _module("umap")
            reducer = umap.UMAP(
                n_neighbors=NEIGHBOURS,
                min_dist=0.1,
                metric="cosine",
                random_state=seed,
                n_jobs=1,  # a fixed random_state makes umap-learn single-threaded anyway
                low_memory=True,
            )
            xy = np.asarray(reducer.fit_transform(reduced), dtype=np.float32)
        else:
            tsne = _module("openTSNE")
            embedding = tsne.TSNE(
                n_components=2,
                perplexity=30,
                metric="cosine",
                n_jobs=threads,
                random_state=seed,
                verbose=False,
            ).fit(reduced)
            xy = np.asarray(embedding, dtype=np.float32)
    xy = xy - xy.mean(axis=0)
    scale = float(np.abs(xy).max()) or 1.0
    out: Matrix = (xy / scale).astype(np.float32)
    return out


def build_map(
    store: Store, vectors: ActiveVectors, *, method: str = DEFAULT_METHOD, seed: int = 0
) -> MapBuild:
    """Project every embedded paper and store the layout."""
    started = time.perf_counter()
    keys = vectors.index.keys()
    xy = project(vectors.index.get(keys), method, seed=seed)
    seconds = time.perf_counter() - started
    layout = MapLayout(
        keys=keys,
        xy=xy,
        metadata={
            "method": method,
            "model_id": vectors.model_id,
            "generation": vectors.generation,
            "papers": len(keys),
            "seed": seed,
            "pca_dims": PCA_DIMS,
            "neighbours": NEIGHBOURS,
            "seconds": round(seconds, 2),
            "computed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    store.save_map_layout(layout)
    return MapBuild(layout, seconds)


def is_current(layout: MapLayout, vectors: ActiveVectors) -> bool:
    meta = layout.metadata
    return meta.get("model_id") == vectors.model_id and meta.get("generation") == (
        vectors.generation
    )


def current_layout(store: Store, vectors: ActiveVectors) -> MapLayout | None:
    """The stored layout when it was computed from these vectors, else None."""
    layout = store.map_layout()
    if layout is None or not is_current(layout, vectors):
        return None
    return layout
