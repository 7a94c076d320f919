"""Approximate search: a coarse index over small codes of the vectors proposes candidates,
and the float16 matrix of :mod:`vector_exact` rescores them exactly.

Two coarse indexes fill the role (the "graph" below), each behind :class:`Graph`:
an IVF index (FAISS: :mod:`vector_ivf`, the default) and an HNSW graph (usearch:
:mod:`vector_hnsw`). Both hold, not the vectors themselves, but their projection on
the top ``graph_dim`` (128) principal directions of the corpus, scaled to [-1, 1] and
coded in 8 bits (HNSW) or 4 (IVF) a dimension, compared by inner product: at most 128
bytes a vector instead of 384 float16 pairs, and, measured at 30,000 vectors, recall
after rescoring 0.985 against 0.989 for the full vectors (8-bit codes). Their
ordering is only approximate, so a query takes ``candidates_factor × k`` keys from the
graph (fewer per result for deep searches: :meth:`ProjectedIndex.graph_count`) and
rescores them in float32 from the float16 matrix, read row by row without ever becoming
resident.

Rows added since the graph was written (the "delta") are searched exactly from a float32
copy in memory; keys deleted or replaced since then ("stale") are dropped from the graph's
answers by the key lookup. ``save`` folds both into the graph once they reach
``sync_rows`` (and rebuilds it when a quarter of it was deleted, or when the kind says
the corpus outgrew it), so a daily ingest never waits for a full rebuild.
"""

from __future__ import annotations

import abc
import importlib
import math
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

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
# The graph holds codes of this many principal components (the matrix keeps all): a
# third of the memory of 384 dimensions, for the same recall after rescoring.
GRAPH_DIM = 128
PROJECTION_SAMPLE = 50_000


def build_threads() -> int:
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
        """Graph vectors in [-1, 1] (each coarse index maps them onto int8 its own way)."""
        out = vectors @ self.basis if self.basis is not None else vectors.copy()
        out *= self.scale
        clipped: Matrix = np.clip(out, -1.0, 1.0, out=out)
        return clipped


class Graph(abc.ABC):
    """A coarse index of projected vectors by int64 key: what :class:`ProjectedIndex`
    needs of usearch's HNSW or FAISS's IVF."""

    ndim: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def search(self, points: Matrix, count: int) -> list[Keys]:
        """For each point, the keys of up to ``count`` candidates, best first."""

    @abc.abstractmethod
    def add(self, keys: Keys, points: Matrix) -> None: ...

    @abc.abstractmethod
    def remove(self, keys: Keys) -> None: ...

    @abc.abstractmethod
    def save(self, path: Path) -> None: ...

    @property
    @abc.abstractmethod
    def breadth(self) -> int:
        """How much of the index a search explores (HNSW: its expansion; IVF: lists)."""

    @breadth.setter
    @abc.abstractmethod
    def breadth(self, value: int) -> None: ...


@dataclass(frozen=True, slots=True, eq=False)
class GraphState(State):
    graph: Graph | None
    projection: Projection | None
    graph_rows: int  # rows below this were in the graph when it was written
    stale: Keys  # keys whose graph entry no longer holds (deleted or replaced), sorted
    delta: Matrix  # float32 copy of rows graph_rows.., searched exactly


class ProjectedIndex(MatrixIndex[GraphState]):
    """Candidates from a coarse index of int8 principal components, rescored in float32."""

    storage: ClassVar[str] = "float16"
    random_access: ClassVar[bool] = True
    # The coarse index's library, as recorded (name) and as installed (distribution).
    library: ClassVar[tuple[str, str]]
    # The file name of a saved graph: graph.<generation>.<graph_suffix>
    graph_suffix: ClassVar[str]
    # The parameter (and state) that holds the search breadth.
    breadth_parameter: ClassVar[str]

    def __init__(self, directory: Path, meta: IndexMeta, state: GraphState) -> None:
        super().__init__(directory, meta, state)
        # A breadth this process asked for; None: the one saved with the graph.
        self._breadth: int | None = None
        self._factor = int(meta.parameters["candidates_factor"])

    @classmethod
    def _library(cls) -> dict[str, str]:
        name, distribution = cls.library
        try:
            found = version(distribution)
        except PackageNotFoundError:  # installed another way (conda, a GPU build)
            found = str(getattr(importlib.import_module(name), "__version__", "unknown"))
        return {"name": name, "version": found, "numpy": np.__version__}

    # hooks of each coarse index

    @classmethod
    @abc.abstractmethod
    def _graph_parameters(cls) -> dict[str, Any]:
        """This kind's own build and search parameters, recorded in the metadata: at least
        its ``quantization`` and ``candidates_factor``."""

    @classmethod
    @abc.abstractmethod
    def _open_graph(cls, path: Path, meta: IndexMeta, *, view: bool) -> Graph:
        """The saved graph: memory-mapped read-only (``view``), or loaded to be changed."""

    @abc.abstractmethod
    def _new_graph(self, ndim: int, projection: Projection, rows: Rows, live: Keys) -> Graph:
        """An empty graph for projected vectors (trained on the ``live`` rows, where it
        learns from the data)."""

    @abc.abstractmethod
    def _graph_state(self, graph: Graph) -> dict[str, Any]:
        """What this kind records about a graph it has just written."""

    def _outgrown(self, live_rows: int) -> bool:
        """Whether the corpus grew so much that the graph should be built again."""
        return False

    def _saved_breadth(self, meta: IndexMeta) -> int:
        return int(meta.parameters[self.breadth_parameter])

    # common parameters

    @classmethod
    def _parameters(cls, **options: Any) -> dict[str, Any]:
        unknown = set(options) - {"build_threshold"}
        if unknown:
            raise VectorIndexError(
                f"unknown {cls.kind} option(s) {sorted(unknown)}; valid: build_threshold"
            )
        return {
            "graph_dim": GRAPH_DIM,
            "graph_metric": "ip",
            **cls._graph_parameters(),
            "rescore": "float32 from the float16 matrix",
            "build_threshold": int(options.get("build_threshold", 0)),
            "sync_rows": SYNC_ROWS,
        }

    @classmethod
    def _new_state(cls, rows: Rows, meta: IndexMeta, directory: Path) -> GraphState:
        graph: Graph | None = None
        projection: Projection | None = None
        graph_rows = 0
        stale = np.zeros(0, dtype=np.int64)
        if "graph" in meta.files:
            graph = cls._view_graph(directory, meta)
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

    @classmethod
    def _view_graph(cls, directory: Path, meta: IndexMeta) -> Graph:
        path = directory / meta.files["graph"]
        if not path.exists():
            raise VectorIndexError(
                f"vector index {directory} is missing its file {path.name}: {REBUILD_HINT}"
            )
        graph = cls._open_graph(path, meta, view=True)
        # Projected, the graph's dimension is the projection's (checked when that is loaded).
        if ("projection" not in meta.files and graph.ndim != meta.dim) or len(graph) != int(
            meta.state["graph_size"]
        ):
            raise VectorIndexError(
                f"{cls.kind} graph {path} does not match its metadata (dimension or size): "
                f"{REBUILD_HINT}"
            )
        return graph

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
    def breadth(self) -> int:
        """The graph's search breadth in effect (recall against speed)."""
        graph = self._state.graph
        if graph is not None:
            return graph.breadth
        return self._breadth if self._breadth is not None else self._saved_breadth(self._meta)

    @breadth.setter
    def breadth(self, value: int) -> None:
        """Set the search breadth for this process only (the saved one stays)."""
        self._breadth = max(1, int(value))
        graph = self._state.graph
        if graph is not None:
            graph.breadth = self._breadth

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
            found = self._search_one(state, q, k, self._graph_keys(state, q, self.graph_count(k)))
            if len(found) < min(k, state.rows.count) and state.graph is not None:
                # The lists read held fewer candidates than asked for (probes set very low,
                # or k in the thousands): every live row, exactly, rather than a short list.
                return self._exact_rows(state.rows, np.flatnonzero(~state.rows.dead), q, k)
            return found
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
        found = state.graph.search(state.projection.apply(qs), self.graph_count(k))
        return [self._search_one(state, q, k, keys) for q, keys in zip(qs, found, strict=True)]

    def save(self) -> None:
        super().save()
        # A new graph was opened from disk with the saved breadth; keep this process's.
        if self._breadth is not None:
            self.breadth = self._breadth

    def _graph_keys(self, state: GraphState, q: npt.NDArray[np.float32], count: int) -> Keys | None:
        if state.graph is None or state.projection is None:
            return None
        return state.graph.search(state.projection.apply(q[None, :]), count)[0]

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
            rebuild = removed > REBUILD_REMOVED_FRACTION * max(
                int(graph_state["graph_size"]), 1
            ) or self._outgrown(len(live))
        if rebuild:
            projection = self._fit_projection(rows, live)
            ndim = self._meta.dim if projection.basis is None else projection.basis.shape[1]
            graph = self._new_graph(ndim, projection, rows, live)
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
            graph = self._open_graph(self._dir / self._meta.files["graph"], self._meta, view=False)
            if len(state.stale):
                graph.remove(state.stale)
            self._add_to_graph(graph, projection, rows, delta_live)
        files = {"graph": f"graph.{generation:06d}.{self.graph_suffix}"}
        tmp = self._dir / f".tmp.{files['graph']}.{os.getpid()}"
        graph.save(tmp)
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
                **self._graph_state(graph),
            },
        )

    @staticmethod
    def _sample(rows: Rows, live: Keys, size: int = PROJECTION_SAMPLE) -> Matrix:
        # An evenly spread sample is plenty to find the principal directions.
        return rows.gather(live[:: max(1, len(live) // size)])

    def _fit_projection(self, rows: Rows, live: Keys) -> Projection:
        return Projection.fit(self._sample(rows, live), int(self._meta.parameters["graph_dim"]))

    @staticmethod
    def _add_to_graph(graph: Graph, projection: Projection, rows: Rows, at: Keys) -> None:
        for a in range(0, len(at), SCAN_CHUNK_ROWS * 4):
            part = at[a : a + SCAN_CHUNK_ROWS * 4]
            graph.add(rows.keys[part], projection.apply(rows.gather(part)))
