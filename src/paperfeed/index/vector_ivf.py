"""The IVF kind of approximate index (the default): FAISS inverted lists of 4-bit codes of
the vectors' principal components.

k-means splits the projected vectors (:mod:`vector_graph`) into ``lists`` cells; a query
scans the codes of its ``probes`` nearest cells, contiguous in memory, and the best
``candidates_factor × k`` are rescored exactly. A code is 4 bits a dimension (each
dimension's range learnt from the data): 64 bytes a vector.

It replaced the HNSW graph as the default because, on the same million synthetic
MiniLM-like vectors and real queries (300, idle machine, p95 of the whole vector search
including the exact rescoring), it met both targets the graph could not:

- IVF, 8-bit codes, 16×k candidates: with 4,096 lists, 32 probed 0.948 at 2.2 ms, 48
  0.960 at 2.3 ms, 64 0.967 at 2.5 ms; as ``paperfeed bench`` built it (4,000 lists, 66
  probed) 0.967 at 1.9 ms; a 138 MB file, built in 79 s.
- IVF, 4-bit codes (4,000 lists, 66 probed): 0.953 with 16×k candidates, 0.967 with 24×k
  at 3.6 ms; a 74 MB file, which is what a serving process keeps resident.
- HNSW with connectivity 32: breadth 256 0.916 at 5.5 ms, breadth 512 0.954 at 7.2 ms;
  a 404 MB file, built in 684 s.

A graph walk jumps between random nodes of its file, while a cell is read in one run of
memory. Building is a k-means on a sample and one pass over the vectors; the index is
served from a memory-mapped file (``IO_FLAG_MMAP_IFC``). New rows join the cell of their
nearest centroid; the cells are drawn again once the corpus has grown fourfold (twice
the lists).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from paperfeed.index.vector_exact import Rows
from paperfeed.index.vector_graph import Graph, ProjectedIndex, Projection, build_threads
from paperfeed.index.vectors import REBUILD_HINT, IndexMeta, Keys, Matrix, VectorIndexError

# lists = LISTS_PER_ROOT × sqrt(rows) (FAISS's guidance is 4–16 × sqrt), and at most one
# list per TRAIN_MIN_PER_LIST rows so that k-means has enough points for each centroid.
LISTS_PER_ROOT = 4
TRAIN_MIN_PER_LIST = 39
TRAIN_PER_LIST = 64
KMEANS_ITERATIONS = 20
# A search reads at least 1 / PROBE_SHARE of the lists, and enough lists to scan about
# SCAN_ROWS codes: recall follows how many cells are read more than their share (measured
# above: 64 of 4,096 for 0.967), and a smaller corpus can afford a larger share for the
# same ~1 ms scan.
PROBE_SHARE = 64
SCAN_ROWS = 16_384
# Graph vectors are in [-1, 1]; FAISS's direct int8 codes (the first IVF indexes) take the
# integer range, and the 4-bit ranges are learnt on the same scale.
INT8_SCALE = 127.0
# 4-bit codes with 24×k candidates: the recall of 8-bit codes with 16×k (see above) in
# 64 MB less memory at a million vectors, for ~1 ms more rescoring.
QUANTIZATION = "4bit"
CANDIDATES_FACTOR = 24
_QTYPES = {
    "i8": faiss.ScalarQuantizer.QT_8bit_direct_signed,
    "4bit": faiss.ScalarQuantizer.QT_4bit,
}


def ivf_lists(rows: int) -> int:
    """How many cells an index of ``rows`` vectors is built with."""
    return max(1, min(round(LISTS_PER_ROOT * math.sqrt(rows)), rows // TRAIN_MIN_PER_LIST))


def ivf_probes(lists: int, rows: int) -> int:
    """How many of its cells a search of an index of ``rows`` vectors reads by default."""
    per_list = max(1.0, rows / max(1, lists))
    return min(lists, max(math.ceil(lists / PROBE_SHARE), math.ceil(SCAN_ROWS / per_list)))


class FaissIvfGraph(Graph):
    def __init__(self, index: Any, probes: int, quantizer: Any = None) -> None:
        self._index = index
        # A new index refers to its quantizer without owning it: it must live as long.
        self._quantizer = quantizer
        self.ndim = int(index.d)
        self.lists = int(index.nlist)
        self.breadth = probes

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, points: Matrix, count: int) -> list[Keys]:
        # Per-call parameters: the index itself is never changed, so threads can share it.
        _, found = self._index.search(
            np.ascontiguousarray(points * INT8_SCALE, dtype=np.float32),
            count,
            params=self._params,
        )
        # FAISS pads a short answer with -1.
        return [row[row != -1].astype(np.int64, copy=False) for row in found]

    def add(self, keys: Keys, points: Matrix) -> None:
        self._index.add_with_ids(
            np.ascontiguousarray(points * INT8_SCALE, dtype=np.float32),
            np.ascontiguousarray(keys, dtype=np.int64),
        )

    def remove(self, keys: Keys) -> None:
        self._index.remove_ids(np.ascontiguousarray(keys, dtype=np.int64))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @property
    def breadth(self) -> int:
        return int(self._params.nprobe)

    @breadth.setter
    def breadth(self, value: int) -> None:
        params = faiss.SearchParametersIVF()
        params.nprobe = max(1, min(int(value), self.lists))
        self._params = params


class IvfIndex(ProjectedIndex):
    """IVF candidates (FAISS, 4-bit codes of 128 principal components) rescored in float32."""

    kind = "ivf"
    library = ("faiss", "faiss-cpu")
    graph_suffix = "faiss"
    breadth_parameter = "probes"

    @classmethod
    def _graph_parameters(cls) -> dict[str, Any]:
        # Lists and probes follow the corpus size: recorded in the state by each build.
        return {
            "quantization": QUANTIZATION,
            "candidates_factor": CANDIDATES_FACTOR,
            "lists_per_root": LISTS_PER_ROOT,
            "probe_share": PROBE_SHARE,
            "scan_rows": SCAN_ROWS,
        }

    def _saved_breadth(self, meta: IndexMeta) -> int:
        return int(meta.state.get("graph_probes", 1))

    def _quantizer_type(self) -> Any:
        name = str(self._meta.parameters["quantization"])
        if name not in _QTYPES:
            raise VectorIndexError(
                f"vector index {self._dir} asks for {name!r} codes, which this version does "
                f"not make ({', '.join(_QTYPES)}): {REBUILD_HINT}"
            )
        return _QTYPES[name]

    @property
    def probes(self) -> int:
        return self.breadth

    @probes.setter
    def probes(self, value: int) -> None:
        self.breadth = value

    @classmethod
    def _open_graph(cls, path: Path, meta: IndexMeta, *, view: bool) -> Graph:
        flags = faiss.IO_FLAG_MMAP_IFC if view else 0
        try:
            index = faiss.read_index(str(path), flags)
        except (RuntimeError, OSError) as exc:
            raise VectorIndexError(f"IVF index {path} is damaged ({exc}): {REBUILD_HINT}") from None
        if not isinstance(index, faiss.IndexIVFScalarQuantizer):
            raise VectorIndexError(
                f"IVF index {path} holds a {type(index).__name__}: {REBUILD_HINT}"
            )
        return FaissIvfGraph(index, int(meta.state.get("graph_probes", 1)))

    def _new_graph(self, ndim: int, projection: Projection, rows: Rows, live: Keys) -> Graph:
        lists = ivf_lists(len(live))
        quantizer = faiss.IndexFlatIP(ndim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer,
            ndim,
            lists,
            self._quantizer_type(),
            faiss.METRIC_INNER_PRODUCT,
        )
        # Codes of the vectors themselves, not of their offsets from the centroid: the
        # ranges are the corpus's, whatever the cell.
        index.by_residual = False
        index.cp.niter = KMEANS_ITERATIONS
        index.cp.seed = 1234  # the same rows build the same cells
        index.cp.max_points_per_centroid = TRAIN_PER_LIST
        # ivf_lists keeps enough rows per list; this only silences FAISS's warning.
        index.cp.min_points_per_centroid = 1
        sample = projection.apply(self._sample(rows, live, lists * TRAIN_PER_LIST))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(build_threads())
        try:
            index.train(np.ascontiguousarray(sample * INT8_SCALE, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
        return FaissIvfGraph(index, ivf_probes(lists, len(live)), quantizer)

    def _graph_state(self, graph: Graph) -> dict[str, Any]:
        assert isinstance(graph, FaissIvfGraph)
        # Probes follow the rows per list, which grow with every sync until the next build.
        return {"graph_lists": graph.lists, "graph_probes": ivf_probes(graph.lists, len(graph))}

    def _outgrown(self, live_rows: int) -> bool:
        built = int(self._meta.state.get("graph_lists", 0))
        return built > 0 and ivf_lists(live_rows) >= 2 * built
