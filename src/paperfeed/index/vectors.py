"""The vector index: paper keys mapped to unit vectors, searched by cosine similarity.

One index lives in one directory (``<data_dir>/vectors/<model-slug>/``) and holds vectors
of one model only. Three kinds sit behind :class:`VectorIndex`:

- ``exact`` (:mod:`paperfeed.index.vector_exact`): the vectors in memory-mapped matrix
  files, brute-force dot products. Exact, and fast enough below ~10,000 vectors.
- ``ivf`` (:mod:`paperfeed.index.vector_ivf`, the default): the same matrix stored as
  float16, plus FAISS inverted lists of 4-bit codes of principal components; a query
  takes 24×k candidates from its nearest lists and rescores them exactly from the matrix
  (:mod:`paperfeed.index.vector_graph`). Below its build threshold it has no lists and
  searches exactly, so ``kind="auto"`` is simply an ``ivf`` index with a threshold.
- ``hnsw`` (:mod:`paperfeed.index.vector_hnsw`): the same, with a usearch HNSW graph in
  place of the lists (the default before ``ivf``; such indexes keep working).

On disk: ``index.json`` (the metadata, written last: it is the commit point) names the
files of the current generation; every other file is written under a new name, then
renamed, so a crash at any moment leaves the previous generation whole and readable.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt

from paperfeed.errors import PaperfeedError

META_FILE = "index.json"
FORMAT = "paperfeed-vector-index"
FORMAT_VERSION = 1
METRIC = "cosine"
# Measured on this project's 2-core machine: one exact query over 384-d float32 vectors
# takes ~1.5 ms (CPU) at 5,000 vectors, ~2.5 ms at 10,000 and ~4 ms at 20,000, where the
# HNSW graph answers in ~0.5 ms; past 10,000 an approximate index is worth building.
AUTO_EXACT_LIMIT = 10_000

Kind = Literal["exact", "ivf", "hnsw", "ivfflat"]
KINDS: tuple[Kind, ...] = ("exact", "ivf", "hnsw")
# How far from length 1 a stored unit row may be (as_unit_rows(normalise=False)).
STORED_UNIT_TOLERANCE = 1e-2
REBUILD_HINT = "delete the directory and run `paperfeed index` to rebuild it from the store"

if TYPE_CHECKING:
    from paperfeed.index.vector_graph import ProjectedIndex

Keys = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]


class VectorIndexError(PaperfeedError):
    """A vector index that cannot be opened or written as asked."""

    status = 500


@dataclass(frozen=True, slots=True)
class VectorHit:
    """One search result: a paper key and its cosine similarity to the query."""

    key: int
    score: float


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """One matrix file: ``rows`` consecutive rows of the index, in ``dtype``."""

    file: str
    rows: int
    dtype: str


@dataclass(frozen=True, slots=True)
class IndexMeta:
    """The content of ``index.json``: what the files are and how they were built."""

    kind: Kind
    model_id: str
    dim: int
    library: Mapping[str, str]
    storage: str
    parameters: Mapping[str, Any]
    count: int = 0
    rows: int = 0
    generation: int = 0
    segments: tuple[SegmentFile, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "library": dict(self.library),
            "model_id": self.model_id,
            "dim": self.dim,
            "metric": METRIC,
            "storage": self.storage,
            "parameters": dict(self.parameters),
            "count": self.count,
            "rows": self.rows,
            "generation": self.generation,
            "segments": [{"file": s.file, "rows": s.rows, "dtype": s.dtype} for s in self.segments],
            "files": dict(self.files),
            "state": dict(self.state),
            "created": self.created,
            "updated": self.updated,
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> IndexMeta:
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            if doc.get("format_version") != FORMAT_VERSION:
                raise VectorIndexError(
                    f"vector index {where} has format version {doc.get('format_version')!r}; "
                    f"this paperfeed reads version {FORMAT_VERSION}: {REBUILD_HINT}"
                )
            kind = doc["kind"]
            if kind not in KINDS or doc["metric"] != METRIC:
                raise ValueError(f"unknown kind {kind!r} or metric {doc['metric']!r}")
            segments = tuple(
                SegmentFile(file=str(s["file"]), rows=int(s["rows"]), dtype=str(s["dtype"]))
                for s in doc["segments"]
            )
            meta = cls(
                kind=kind,
                model_id=str(doc["model_id"]),
                dim=int(doc["dim"]),
                library={str(k): str(v) for k, v in doc["library"].items()},
                storage=str(doc["storage"]),
                parameters=dict(doc["parameters"]),
                count=int(doc["count"]),
                rows=int(doc["rows"]),
                generation=int(doc["generation"]),
                segments=segments,
                files={str(k): str(v) for k, v in doc["files"].items()},
                state=dict(doc["state"]),
                created=str(doc["created"]),
                updated=str(doc["updated"]),
            )
        except VectorIndexError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VectorIndexError(
                f"vector index metadata {where / META_FILE} is unreadable ({exc}): {REBUILD_HINT}"
            ) from None
        if sum(s.rows for s in segments) != meta.rows or not 0 <= meta.count <= meta.rows:
            raise VectorIndexError(
                f"vector index metadata {where / META_FILE} is inconsistent (rows and segments "
                f"disagree): {REBUILD_HINT}"
            )
        return meta

    def stamped(self, generation: int, **changes: Any) -> IndexMeta:
        """This metadata for a new generation, with ``updated`` (and ``created``) set."""
        now = now_iso()
        return replace(
            self, generation=generation, created=self.created or now, updated=now, **changes
        )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_meta(directory: Path) -> IndexMeta | None:
    """The committed metadata of the index in ``directory``, or None when there is none."""
    path = directory / META_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorIndexError(
            f"vector index metadata {path} cannot be read ({exc}): {REBUILD_HINT}"
        ) from None
    return IndexMeta.from_json(text, directory)


def check_compatible(meta: IndexMeta, directory: Path, *, model_id: str, dim: int) -> None:
    """Refuse an index built with another model: its vectors mean nothing to this one."""
    if meta.model_id != model_id or meta.dim != dim:
        raise VectorIndexError(
            f"vector index {directory} holds vectors of model {meta.model_id!r} "
            f"(dimension {meta.dim}), not {model_id!r} (dimension {dim}); "
            "re-embed with the new model into its own directory instead of mixing them"
        )


def model_slug(model_id: str) -> str:
    """A directory name for a model id or path (``sentence-transformers/all-MiniLM-L6-v2``)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id.strip()).strip("-.")
    return slug or "model"


# --- input checks shared by the implementations ----------------------------------------------


def as_keys(keys: npt.ArrayLike, what: str = "keys") -> Keys:
    arr = np.asarray(keys)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise VectorIndexError(
            f"{what} must be a 1-D array of integers, got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int64, copy=False)


def as_unit_rows(
    vectors: npt.ArrayLike, dim: int, what: str = "vectors", *, normalise: bool = True
) -> Matrix:
    """``vectors`` as a float32 (n, dim) matrix of unit rows; zero or non-finite rows refused.

    ``normalise=False`` takes rows that an index stored as unit vectors as they are (to
    its precision: float16 rounding moves a row's length by about 1e-4) and refuses any
    farther from length 1: normalising them again would round them a second time."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise VectorIndexError(f"{what} must be numbers ({exc})") from None
    if arr.ndim == 1 and what == "query":
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise VectorIndexError(f"{what} must have shape (n, {dim}), got {arr.shape}")
    norms = np.linalg.norm(arr, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise VectorIndexError(f"{what} contain a zero, NaN or infinite vector")
    if not normalise:
        if not np.all(np.abs(norms - 1.0) <= STORED_UNIT_TOLERANCE):
            raise VectorIndexError(f"{what} must be unit vectors, as an index stores them")
        return arr
    # Encoders normalize already; dividing again costs little and makes cosine = dot exact.
    out: Matrix = (arr / norms[:, None]).astype(np.float32, copy=False)
    return out


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise VectorIndexError(f"k must be a positive integer, got {k!r}")
    return int(k)


def dot_rows(rows: Matrix, query: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise dot products computed the same way for every row.

    BLAS may round a row differently depending on where it sits in the matrix; scores that
    decide a final order are recomputed here so equal vectors always get equal scores and
    ties fall to the key order.
    """
    out: npt.NDArray[np.float32] = np.multiply(rows, query, dtype=np.float32).sum(
        axis=1, dtype=np.float32
    )
    return out


def rank(
    scores: npt.NDArray[np.float32], keys: Keys, k: int
) -> tuple[npt.NDArray[np.float32], Keys]:
    """The ``k`` best (score desc, key asc), ties at the cut included in key order."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        cut = scores[part].min()
        pick = np.flatnonzero(scores >= cut)
        scores, keys = scores[pick], keys[pick]
    order = np.lexsort((keys, -scores))[:k]
    return scores[order], keys[order]


def hits(scores: npt.NDArray[np.float32], keys: Keys) -> list[VectorHit]:
    return [VectorHit(int(key), float(s)) for s, key in zip(scores, keys, strict=True)]


# --- the interface ---------------------------------------------------------------------------


class VectorIndex(abc.ABC):
    """Paper keys (int64) → unit vectors of one model; cosine search.

    Changes (``add``, ``remove``) are visible to searches at once and reach the disk on
    ``save``. Searches may run from many threads while one thread writes; two processes
    must not write the same index at once (``save`` refuses when the files changed under it).
    """

    kind: ClassVar[Kind]

    @classmethod
    @abc.abstractmethod
    def create(cls, directory: Path, *, model_id: str, dim: int) -> Self:
        """A new empty index for ``directory`` (nothing is written until ``save``)."""

    @classmethod
    @abc.abstractmethod
    def open(cls, directory: Path, *, model_id: str, dim: int) -> Self:
        """The saved index in ``directory``; refuses another model or a damaged index."""

    @property
    @abc.abstractmethod
    def directory(self) -> Path: ...

    @property
    @abc.abstractmethod
    def meta(self) -> IndexMeta:
        """The metadata as last saved (or as created)."""

    @abc.abstractmethod
    def add(self, keys: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Store ``vectors[i]`` under ``keys[i]``, replacing what a key had before."""

    @abc.abstractmethod
    def remove(self, keys: npt.ArrayLike) -> int:
        """Forget these keys (unknown ones are ignored); returns how many were present."""

    @abc.abstractmethod
    def search(
        self, query: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | None = None
    ) -> list[VectorHit]:
        """The ``k`` nearest keys by cosine, best first, ties by key; only ``allowed`` ones
        when given."""

    @abc.abstractmethod
    def search_batch(self, queries: npt.ArrayLike, k: int) -> list[list[VectorHit]]:
        """``search`` for each row of ``queries``."""

    @abc.abstractmethod
    def get(self, keys: npt.ArrayLike) -> Matrix:
        """The stored vectors (float32, one row per key); unknown keys raise NotFoundError."""

    @abc.abstractmethod
    def contains(self, keys: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """For each key, whether the index has a vector for it."""

    @abc.abstractmethod
    def keys(self) -> Keys:
        """Every key in the index, ascending."""

    @abc.abstractmethod
    def save(self) -> None:
        """Write the changes to disk atomically."""

    def tend(self) -> None:
        """Build or rebuild what the index's size calls for, changes or not (after an
        embedding run that found nothing to embed). File indexes do that in ``save``."""
        return None

    @abc.abstractmethod
    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool:
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            return False
        return bool(self.contains(np.array([key], dtype=np.int64))[0])


def open_vector_index(
    directory: str | os.PathLike[str],
    *,
    model_id: str,
    dim: int,
    kind: Literal["auto", "exact", "ivf", "hnsw"] = "auto",
) -> VectorIndex:
    """The vector index in ``directory``, created empty when there is none yet.

    ``auto`` opens whatever kind is there; a new one searches exactly until it holds
    ``AUTO_EXACT_LIMIT`` vectors and builds its IVF index on the first save past that.
    ``exact`` / ``ivf`` / ``hnsw`` insist on that kind and refuse a directory of another.
    """
    # Imported here: the implementations import this module, and FAISS or usearch is
    # needed only for an approximate index.
    from paperfeed.index.vector_exact import ExactIndex

    if kind not in ("auto", *KINDS):
        raise VectorIndexError(
            f"unknown vector index kind {kind!r}; choose auto, exact, ivf or hnsw"
        )
    path = Path(directory)
    meta = read_meta(path)
    found: Kind | None = meta.kind if meta is not None else None
    if found is not None and kind != "auto" and found != kind:
        raise VectorIndexError(
            f"vector index {path} is of kind {found!r}, not {kind!r}; open it with "
            f"kind='auto' or {REBUILD_HINT}"
        )
    wanted: Kind = found or ("ivf" if kind == "auto" else kind)
    if wanted == "exact":
        if meta is None:
            return ExactIndex.create(path, model_id=model_id, dim=dim)
        return ExactIndex.open(path, model_id=model_id, dim=dim)
    index_class = _approximate_class(wanted)
    if meta is None:
        threshold = AUTO_EXACT_LIMIT if kind == "auto" else 0
        return index_class.create(path, model_id=model_id, dim=dim, build_threshold=threshold)
    return index_class.open(path, model_id=model_id, dim=dim)


def _approximate_class(kind: Kind) -> type[ProjectedIndex]:
    package = {"ivf": "faiss-cpu", "hnsw": "usearch"}[kind]
    try:
        if kind == "ivf":
            from paperfeed.index.vector_ivf import IvfIndex

            return IvfIndex
        from paperfeed.index.vector_hnsw import HnswIndex

        return HnswIndex
    except ImportError as exc:
        raise VectorIndexError(
            f"the {kind} vector index needs the {package} package ({exc}): "
            "pip install 'paperfeed[semantic]', or open the index with kind='exact'"
        ) from None
