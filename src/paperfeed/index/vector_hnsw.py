"""The HNSW kind of approximate index: a usearch graph of int8 principal components.

The machinery it shares with the IVF kind (projection, rescoring, delta, stale keys,
saves) is :mod:`vector_graph`. usearch rather than FAISS for HNSW (measured side by side
by benchmarks/vector_index.py): as fast at equal recall after rescoring, with our own
int64 keys, deletes, and serving straight from a memory-mapped file
(``restore(view=True)``). New indexes are IVF since it met the million-vector targets
that this graph could not (:mod:`vector_ivf`); an index built as HNSW keeps working.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

from paperfeed.index.vector_exact import Rows
from paperfeed.index.vector_graph import (
    CANDIDATES_FACTOR,
    Graph,
    ProjectedIndex,
    Projection,
    build_threads,
)
from paperfeed.index.vectors import REBUILD_HINT, IndexMeta, Keys, Matrix, VectorIndexError

# Measured at 1,000,000 synthetic vectors drawn like real MiniLM embeddings (clustered:
# see paperfeed.bench.corpus), real queries, recall@10 after rescoring. Connectivity 16
# (50 queries, busy machine): 0.84 at breadth 192, 0.95 only at breadth 768 with 16×k
# rescored (12.9 ms p95); its graph finds ~0.83 of the 80 best by its own int8 metric
# even at breadth 1,536 (clusters are poorly linked). Connectivity 32, 16×k
# rescored, 300 queries, idle machine: breadth 256 0.916 (p95 6.3 ms), 384 0.937 (6.0),
# 512 0.954 (6.9), 1,024 0.974 (10.6). The graph file grows from 264 to 386 MB at a
# million vectors.
CONNECTIVITY = 32
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
PARALLEL_ADD_ROWS = 50_000


class UsearchGraph(Graph):
    def __init__(self, index: Index) -> None:
        self._index = index
        self.ndim = int(index.ndim)
        # usearch's Python binding searches in per-thread contexts chosen by its own thread
        # numbers, not the caller's: two Python threads searching at once could share one.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def search(self, points: Matrix, count: int) -> list[Keys]:
        with self._lock:
            found = self._index.search(points, count, threads=1)
        keys = np.atleast_2d(found.keys)
        counts = np.atleast_1d(getattr(found, "counts", len(found)))
        return [np.asarray(keys[i][: counts[i]], np.int64) for i in range(len(points))]

    def add(self, keys: Keys, points: Matrix) -> None:
        # Inserted by several threads at once, identical vectors sometimes ended up out of
        # reach of every search (1 build in 60 of tests/test_vectors.py's ties test, none
        # in 120 with one thread). Small batches (tests, syncs) take one thread; a bulk
        # build keeps all of them, and with it that risk for duplicate vectors.
        threads = build_threads() if len(keys) >= PARALLEL_ADD_ROWS else 1
        self._index.add(keys, points, threads=threads)

    def remove(self, keys: Keys) -> None:
        self._index.remove(keys)

    def save(self, path: Path) -> None:
        self._index.save(str(path))

    @property
    def breadth(self) -> int:
        return int(self._index.expansion_search)

    @breadth.setter
    def breadth(self, value: int) -> None:
        # usearch declares this setter apart from its getter, which mypy misses.
        self._index.expansion_search = value  # type: ignore[misc]


class HnswIndex(ProjectedIndex):
    """HNSW candidates (usearch, int8 of 128 principal components) rescored in float32."""

    kind = "hnsw"
    library = ("usearch", "usearch")
    graph_suffix = "usearch"
    breadth_parameter = "expansion_search"

    @classmethod
    def _graph_parameters(cls) -> dict[str, Any]:
        return {
            "quantization": "i8",
            "candidates_factor": CANDIDATES_FACTOR,
            "connectivity": CONNECTIVITY,
            "expansion_add": EXPANSION_ADD,
            "expansion_search": EXPANSION_SEARCH,
        }

    @property
    def expansion_search(self) -> int:
        return self.breadth

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self.breadth = value

    @classmethod
    def _open_graph(cls, path: Path, meta: IndexMeta, *, view: bool) -> Graph:
        try:
            index = Index.restore(str(path), view=view)
        except (ValueError, RuntimeError, OSError) as exc:
            raise VectorIndexError(
                f"HNSW graph {path} is damaged ({exc}): {REBUILD_HINT}"
            ) from None
        if index is None:
            raise VectorIndexError(f"HNSW graph {path} cannot be read: {REBUILD_HINT}")
        graph = UsearchGraph(index)
        graph.breadth = int(meta.parameters["expansion_search"])
        return graph

    def _new_graph(self, ndim: int, projection: Projection, rows: Rows, live: Keys) -> Graph:
        params = self._meta.parameters
        return UsearchGraph(
            Index(
                ndim=ndim,
                metric=str(params["graph_metric"]),
                dtype=str(params["quantization"]),
                connectivity=int(params["connectivity"]),
                expansion_add=int(params["expansion_add"]),
                expansion_search=self.breadth,
            )
        )

    def _graph_state(self, graph: Graph) -> dict[str, Any]:
        return {}
