"""Approximate search: a usearch HNSW graph over small int8 vectors, rescored exactly.

usearch rather than FAISS (measured side by side by benchmarks/vector_index.py, numbers in
the README): as fast at equal recall after rescoring, and it has what an index of papers
needs and FAISS's HNSW lacks: our own int64 keys, deletes, and serving straight from a
memory-mapped file (``restore(view=True)``) with next to no private memory.

The graph does not hold the vectors themselves but their projection on the top
``graph_dim`` (128) principal directions of the corpus, scaled to use int8's whole range,
compared by inner product: 128 bytes a vector instead of 384 (a 277 MB graph at a million
vectors instead of ~530 MB), twice as fast to build and search, and, measured at 30,000
vectors, recall after rescoring 0.985 against 0.989 for the full vectors. Its ordering is
only approximate, so a query takes ``candidates_factor × k`` keys from it (fewer per
result for deep searches: :meth:`HnswIndex.graph_count`) and rescores them in float32
from the float16 matrix kept by :mod:`vector_exact`, read row by row without ever
becoming resident.

Rows added since the graph was written (the "delta") are searched exactly from a float32
copy in memory; keys deleted or replaced since then ("stale") are dropped from the graph's
answers by the key lookup. ``save`` folds both into the graph once they reach
``sync_rows`` (and rebuilds it when a quarter of it was deleted), so a daily ingest never
waits for a full rebuild.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from usearch.index import Index

from paperfeed.index.vector_exact import (
    SCAN_CHUNK_ROWS,
    Extra,
    MatrixIndex,
    Rows,
    State,
    commit_file,
    load_array,
    write_array,
)
from paperfeed.index.vectors import (
    REBUILD_HINT,
    IndexMeta,
    Keys,
    Matrix,
    VectorHit,
    VectorIndexError,
    as_unit_rows,
    check_k,
)

# Measured at 1,000,000 synthetic vectors drawn like real MiniLM embeddings (clustered:
# see paperfeed.bench.corpus), real queries, recall@10 after rescoring. Connectivity 16
# (50 queries, busy machine): 0.84 at breadth 192, 0.95 only at breadth 768 with 16×k
# rescored (12.9 ms p95); its graph finds ~0.83 of the 80 best by its own int8 metric
# even at breadth 1,536 (clusters are poorly linked). Connectivity 32, 16×k
# rescored, 300 queries, idle machine: breadth 256 0.916 (p95 6.3 ms), 384 0.937 (6.0),
# 512 0.954 (6.9), 1,024 0.974 (10.6). 256 is the default: the 5 ms and 0.95 targets
# cannot both be met by this graph; a caller can trade with ``expansion_search``.
# The graph file grows from 264 to 386 MB at a million vectors.
CONNECTIVITY = 32
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
CANDIDATES_FACTOR = 16
# A deep search (a ranking's candidate list: k in the hundreds) needs fewer candidates per
# result: its top 10 come from a far larger rescored set. Measured at 100,000 synthetic
# vectors, k = 300: 8×k took 40 ms for recall@10 0.999 / recall@300 0.994; 2×k 10.7 ms
# for 0.989 / 0.918. So the factor applies to the first FACTOR_K results; beyond that,
# DEEP_FACTOR × k candidates (k = 300: 600, as 2×k).
FACTOR_K = 32
DEEP_FACTOR = 2
SYNC_ROWS = 5_000
REBUILD_REMOVED_FRACTION = 0.25
# Up to this many allowed keys, a filtered search scores them all exactly instead of
# over-fetching from the graph.
ALLOWED_EXACT_MAX = 20_000
OVERFETCH_MAX = 4_096
# The graph holds int8 vectors of this many principal components (the matrix keeps all):
# a third of the memory of 384 dimensions, for the same recall after rescoring.
GRAPH_DIM = 128
PROJECTION_SAMPLE = 50_000


def _threads() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


@dataclass(frozen=True, slots=True)
class Projection:
    """How a vector becomes a graph vector: onto the top principal directions, then scaled
    so that int8 uses its whole range."""

    basis: Matrix | None  # (dim, graph_dim), or None to keep every dimension
    scale: float

    @classmethod
    def fit(cls, sample: Matrix, graph_dim: int) -> Projection:
        basis = None
        # A corpus smaller than graph_dim is small enough to keep every dimension.
        if sample.shape[1] > graph_dim <= sample.shape[0]:
            # Uncentered: dot products are kept up to what the dropped directions carried,
            # and exact rescoring restores the rest.
            _, _, vt = np.linalg.svd(sample.astype(np.float64), full_matrices=False)
            basis = np.ascontiguousarray(vt[:graph_dim].T, dtype=np.float32)
        projected = sample @ basis if basis is not None else sample
        top = float(np.quantile(np.abs(projected), 0.9999))
        return cls(basis, 1.0 / top if top > 0 else 1.0)

    def apply(self, vectors: Matrix) -> Matrix:
        out = vectors @ self.basis if self.basis is not None else vectors.copy()
        out *= self.scale
        clipped: Matrix = np.clip(out, -1.0, 1.0, out=out)
        return clipped


@dataclass(frozen=True, slots=True, eq=False)
class GraphState(State):
    graph: Index | None
    projection: Projection | None
    graph_rows: int  # rows below this were in the graph when it was written
    stale: Keys  # keys whose graph entry no longer holds (deleted or replaced), sorted
    delta: Matrix  # float32 copy of rows graph_rows.., searched exactly


class HnswIndex(MatrixIndex[GraphState]):
    """HNSW candidates (usearch, int8 of 128 principal components) rescored in float32."""

    kind = "hnsw"
    storage: ClassVar[str] = "float16"
    random_access: ClassVar[bool] = True

    def __init__(self, directory: Path, meta: IndexMeta, state: GraphState) -> None:
        super().__init__(directory, meta, state)
        self._expansion = int(meta.parameters["expansion_search"])
        self._factor = int(meta.parameters["candidates_factor"])
        # usearch's Python binding searches in per-thread contexts chosen by its own thread
        # numbers, not the caller's: two Python threads searching at once could share one.
        self._graph_lock = threading.Lock()

    # hooks

    @classmethod
    def _library(cls) -> dict[str, str]:
        return {"name": "usearch", "version": version("usearch"), "numpy": np.__version__}

    @classmethod
    def _parameters(cls, **options: Any) -> dict[str, Any]:
        unknown = set(options) - {"build_threshold"}
        if unknown:
            raise VectorIndexError(
                f"unknown HNSW option(s) {sorted(unknown)}; valid: build_threshold"
            )
        return {
            "quantization": "i8",
            "graph_dim": GRAPH_DIM,
            "graph_metric": "ip",
            "connectivity": CONNECTIVITY,
            "expansion_add": EXPANSION_ADD,
            "expansion_search": EXPANSION_SEARCH,
            "candidates_factor": CANDIDATES_FACTOR,
            "rescore": "float32 from the float16 matrix",
            "build_threshold": int(options.get("build_threshold", 0)),
            "sync_rows": SYNC_ROWS,
        }

    @classmethod
    def _new_state(cls, rows: Rows, meta: IndexMeta, directory: Path) -> GraphState:
        graph: Index | None = None
        projection: Projection | None = None
        graph_rows = 0
        stale = np.zeros(0, dtype=np.int64)
        if "graph" in meta.files:
            graph = _view_graph(directory, meta)
            graph_rows = int(meta.state["graph_rows"])
            basis = None
            if "projection" in meta.files:
                size = (meta.dim, graph.ndim)
                basis = load_array(directory, meta.files["projection"], size, "float32", False)
            projection = Projection(basis, float(meta.state["graph_scale"]))
            if "stale" in meta.files:
                shape = (int(meta.state["stale"]),)
                stale = load_array(directory, meta.files["stale"], shape, "int64", mmap=False)
        delta = np.concatenate(
            [block for _, block in rows.chunks(graph_rows)] or [np.zeros((0, rows.dim), np.float32)]
        ).astype(np.float32, copy=False)
        return GraphState(rows, graph, projection, graph_rows, stale, delta)

    def _derive(
        self, state: GraphState, rows: Rows, tombstoned: Keys, added: npt.NDArray[Any]
    ) -> GraphState:
        stale = state.stale
        gone = tombstoned[tombstoned < state.graph_rows]
        if state.graph is not None and len(gone):
            stale = np.union1d(stale, state.rows.keys[gone])
        delta = state.delta
        if len(added):
            delta = np.concatenate([delta, added.astype(np.float32)])
        return GraphState(rows, state.graph, state.projection, state.graph_rows, stale, delta)

    # search

    @property
    def expansion_search(self) -> int:
        return self._expansion

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        """The graph's search breadth (recall vs speed), for this process only."""
        self._expansion = max(1, int(value))
        graph = self._state.graph
        if graph is not None:
            # usearch declares this setter apart from its getter, which mypy misses.
            graph.expansion_search = self._expansion  # type: ignore[misc]

    @property
    def candidates_factor(self) -> int:
        return self._factor

    @candidates_factor.setter
    def candidates_factor(self, value: int) -> None:
        """How many graph candidates per wanted result are rescored, for this process only."""
        self._factor = max(1, int(value))

    def graph_count(self, k: int) -> int:
        """How many graph candidates a search for ``k`` results rescores."""
        return max(DEEP_FACTOR * k, self._factor * min(k, FACTOR_K))

    @property
    def has_graph(self) -> bool:
        return self._state.graph is not None

    def search(
        self, query: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | None = None
    ) -> list[VectorHit]:
        q, k = self._query(query), check_k(k)
        state = self._state
        if allowed is None:
            return self._search_one(state, q, k, self._graph_keys(state, q, self.graph_count(k)))
        rows = state.rows
        allowed_rows = self._allowed_rows(rows, allowed)
        if state.graph is None or len(allowed_rows) <= ALLOWED_EXACT_MAX:
            return self._exact_rows(rows, allowed_rows, q, k)
        # Over-fetch from the graph in proportion to how much the filter will drop.
        want = self.graph_count(k) * len(state.graph) / len(allowed_rows)
        fetched = self._graph_keys(state, q, min(OVERFETCH_MAX, math.ceil(want)))
        found = self._search_one(state, q, k, fetched, np.sort(rows.keys[allowed_rows]))
        if len(found) < min(k, len(allowed_rows)):
            return self._exact_rows(rows, allowed_rows, q, k)
        return found

    def search_batch(self, queries: npt.ArrayLike, k: int) -> list[list[VectorHit]]:
        qs, k = as_unit_rows(queries, self._meta.dim, what="queries"), check_k(k)
        state = self._state
        if state.graph is None or state.projection is None or not len(qs):
            return [self._search_one(state, q, k, None) for q in qs]
        points = state.projection.apply(qs)
        with self._graph_lock:
            found = state.graph.search(points, self.graph_count(k), threads=1)
        keys, counts = (
            np.atleast_2d(found.keys),
            np.atleast_1d(getattr(found, "counts", len(found))),
        )
        return [
            self._search_one(state, q, k, np.asarray(keys[i][: counts[i]], np.int64))
            for i, q in enumerate(qs)
        ]

    def save(self) -> None:
        super().save()
        # A new graph was opened from disk with the saved breadth; keep this process's.
        self.expansion_search = self._expansion

    def _graph_keys(self, state: GraphState, q: npt.NDArray[np.float32], count: int) -> Keys | None:
        if state.graph is None or state.projection is None:
            return None
        point = state.projection.apply(q[None, :])[0]
        with self._graph_lock:
            found = state.graph.search(point, count, threads=1)
        return np.asarray(found.keys, np.int64)

    def _search_one(
        self,
        state: GraphState,
        q: npt.NDArray[np.float32],
        k: int,
        graph_keys: Keys | None,
        allowed_keys: Keys | None = None,
    ) -> list[VectorHit]:
        rows = state.rows
        candidates: list[Keys] = []
        if graph_keys is not None and len(graph_keys):
            if allowed_keys is not None:
                pos = np.minimum(np.searchsorted(allowed_keys, graph_keys), len(allowed_keys) - 1)
                graph_keys = graph_keys[allowed_keys[pos] == graph_keys]
            # Deleted keys are not found; replaced ones resolve to their current row.
            candidates.append(rows.lookup(graph_keys)[1])
        if len(state.delta):
            start = state.graph_rows
            scores = state.delta @ q
            keep = ~rows.dead[start:]
            if allowed_keys is not None:
                delta_keys = rows.keys[start:]
                pos = np.minimum(np.searchsorted(allowed_keys, delta_keys), len(allowed_keys) - 1)
                keep &= allowed_keys[pos] == delta_keys
            scores[~keep] = -np.inf
            candidates.append(self._near_top(scores, np.arange(start, rows.total), k))
        if not candidates:
            return []
        return self._finish(rows, np.concatenate(candidates), q, k)

    # saving

    def _save_extra(
        self, state: GraphState, generation: int, final_rows: int, compacting: bool
    ) -> Extra:
        rows, params = state.rows, self._meta.parameters
        graph_state = dict(self._meta.state)
        live = np.flatnonzero(~rows.dead)
        rebuild = state.graph is None
        if rows.count == 0:
            return Extra()  # nothing left to index: the graph goes
        if state.graph is None:
            if rows.count == 0 or rows.count < int(params["build_threshold"]):
                return Extra()
        else:
            removed = int(graph_state["graph_removed"]) + len(state.stale)
            rebuild = removed > REBUILD_REMOVED_FRACTION * max(int(graph_state["graph_size"]), 1)
        if rebuild:
            projection = self._fit_projection(rows, live)
            graph = self._new_graph(projection)
            self._add_to_graph(graph, projection, rows, live)
            removed = 0
        else:
            assert state.projection is not None
            projection = state.projection
            delta_live = live[live >= state.graph_rows]
            if not compacting and len(delta_live) + len(state.stale) < int(params["sync_rows"]):
                # Small changes: the graph stays, the delta is searched exactly, and the
                # stale keys are written beside it.
                files = {n: f for n, f in self._meta.files.items() if n != "stale"}
                if len(state.stale):
                    files["stale"] = f"stale.{generation:06d}.npy"
                    write_array(self._dir / files["stale"], state.stale)
                graph_state["stale"] = len(state.stale)
                return Extra(files=files, state=graph_state)
            graph = self._load_graph_for_update(self._meta)
            if len(state.stale):
                graph.remove(state.stale)
            self._add_to_graph(graph, projection, rows, delta_live)
        files = {"graph": f"graph.{generation:06d}.usearch"}
        tmp = self._dir / f".tmp.{files['graph']}.{os.getpid()}"
        graph.save(str(tmp))
        commit_file(tmp, self._dir / files["graph"])
        if projection.basis is not None:
            files["projection"] = f"projection.{generation:06d}.npy"
            write_array(self._dir / files["projection"], projection.basis)
        return Extra(
            files=files,
            state={
                "graph_rows": final_rows,
                "graph_size": len(graph),
                "graph_removed": removed,
                "graph_scale": projection.scale,
            },
        )

    def _fit_projection(self, rows: Rows, live: Keys) -> Projection:
        # An evenly spread sample is plenty to find the principal directions.
        sample = live[:: max(1, len(live) // PROJECTION_SAMPLE)]
        return Projection.fit(rows.gather(sample), int(self._meta.parameters["graph_dim"]))

    def _new_graph(self, projection: Projection) -> Index:
        params = self._meta.parameters
        return Index(
            ndim=self._meta.dim if projection.basis is None else projection.basis.shape[1],
            metric=str(params["graph_metric"]),
            dtype=str(params["quantization"]),
            connectivity=int(params["connectivity"]),
            expansion_add=int(params["expansion_add"]),
            expansion_search=self._expansion,
        )

    @staticmethod
    def _add_to_graph(graph: Index, projection: Projection, rows: Rows, at: Keys) -> None:
        for a in range(0, len(at), SCAN_CHUNK_ROWS * 4):
            part = at[a : a + SCAN_CHUNK_ROWS * 4]
            points = projection.apply(rows.gather(part))
            graph.add(rows.keys[part], points, threads=_threads())

    def _load_graph_for_update(self, meta: IndexMeta) -> Index:
        path = self._dir / meta.files["graph"]
        try:
            graph = Index.restore(str(path), view=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise VectorIndexError(
                f"HNSW graph {path} cannot be read ({exc}): {REBUILD_HINT}"
            ) from None
        if graph is None:
            raise VectorIndexError(f"HNSW graph {path} cannot be read: {REBUILD_HINT}")
        return graph


def _view_graph(directory: Path, meta: IndexMeta) -> Index:
    """The saved graph, memory-mapped read-only."""
    path = directory / meta.files["graph"]
    if not path.exists():
        raise VectorIndexError(
            f"vector index {directory} is missing its file {path.name}: {REBUILD_HINT}"
        )
    try:
        graph = Index.restore(str(path), view=True)
    except (ValueError, RuntimeError, OSError) as exc:
        raise VectorIndexError(f"HNSW graph {path} is damaged ({exc}): {REBUILD_HINT}") from None
    # Projected, the graph's dimension is the projection's (checked when that is loaded).
    if (
        graph is None
        or ("projection" not in meta.files and graph.ndim != meta.dim)
        or len(graph) != int(meta.state["graph_size"])
    ):
        raise VectorIndexError(
            f"HNSW graph {path} does not match its metadata (dimension or size): {REBUILD_HINT}"
        )
    graph.expansion_search = int(meta.parameters["expansion_search"])  # type: ignore[misc]
    return graph
