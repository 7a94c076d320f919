"""Exact search over memory-mapped matrix files, and the storage every vector index uses.

The vectors live in a few ``.npy`` segment files (row i of the index is row i of their
concatenation), memory-mapped read-only, with the key of every row in ``keys.N.npy`` and
deleted rows marked in ``dead.N.npy``. A save appends one segment for the new rows and
merges it with the newer segments no larger than it (a binary counter: O(log n) segments,
each row rewritten O(log n) times), and rewrites the whole matrix without its dead rows
once they pass a quarter of it. Nothing written is ever modified: every save writes new
files, then commits them by replacing ``index.json``.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import fcntl
import mmap
import os
import re
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import numpy.typing as npt

from paperfeed.errors import NotFoundError
from paperfeed.index.vectors import (
    META_FILE,
    REBUILD_HINT,
    IndexMeta,
    Keys,
    Matrix,
    SegmentFile,
    VectorHit,
    VectorIndex,
    VectorIndexError,
    as_keys,
    as_unit_rows,
    check_compatible,
    check_k,
    dot_rows,
    hits,
    rank,
    read_meta,
)

Scores = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

COMPACT_DEAD_FRACTION = 0.25
SCAN_CHUNK_ROWS = 32_768
PREAD_MAX_ROWS = 512
# Candidates within this much of the k-th BLAS score are rescored row by row, so that a
# rounding difference between BLAS code paths can never decide which of two ties is kept.
TIE_MARGIN = 1e-5
_OWN_FILE = re.compile(
    r"^(?:(?:vectors|keys|dead|stale|graph|projection)\.\d{6}\.(?:npy|usearch|faiss)|\.tmp\..*)$"
)
LOCK_FILE = ".lock"


class RowReader:
    """Random row reads from a mapped matrix file that leave no trace in resident memory.

    A page of a mapped file, once touched, counts in this process's resident memory until
    the kernel wants it back, and the kernel maps in its neighbours too (fault-around, up
    to 64 KB per touch). Rescoring reads a few random rows per query, so reading them
    through the mapping would, within minutes of serving, make the whole matrix (768 MB at
    a million vectors) look resident. A few rows are therefore read with ``pread`` (from
    the shared page cache, mapping nothing), and after a large read through the mapping its
    pages are released again.
    """

    def __init__(self, path: Path, array: npt.NDArray[Any], mapping: mmap.mmap, offset: int):
        self._array = array
        self._mapping = mapping
        self._offset = offset
        self._row_bytes = array.shape[1] * array.dtype.itemsize
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def read(self, local: Keys) -> Matrix:
        """Rows ``local`` (ascending) as float32."""
        if len(local) > PREAD_MAX_ROWS:
            block = np.asarray(self._array[local], dtype=np.float32)
            self._mapping.madvise(mmap.MADV_DONTNEED)
            return block
        size, start = self._row_bytes, self._offset
        data = b"".join([os.pread(self._fd, size, start + size * int(r)) for r in local])
        raw = np.frombuffer(data, dtype=self._array.dtype).reshape(len(local), -1)
        return raw.astype(np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class Rows:
    """An immutable snapshot of the matrix: changes build a new one, searches keep theirs."""

    dim: int
    segments: tuple[npt.NDArray[Any], ...]
    readers: tuple[RowReader | None, ...]  # for the mapped segments read at random
    starts: Keys  # first row of each segment, then the total
    keys: Keys  # the key of every row, dead ones included
    dead: Mask
    sorted_keys: Keys  # live keys ascending ...
    sorted_rows: Keys  # ... and their rows
    saved_segments: int  # segments past this one are in memory, not yet saved

    @classmethod
    def empty(cls, dim: int) -> Rows:
        none = np.zeros(0, dtype=np.int64)
        return cls(dim, (), (), np.zeros(1, np.int64), none, np.zeros(0, bool), none, none, 0)

    @property
    def total(self) -> int:
        return len(self.keys)

    @property
    def count(self) -> int:
        return len(self.sorted_keys)

    def lookup(self, keys: Keys) -> tuple[Mask, Keys]:
        """For each key: whether it is live, and the rows of the live ones (in key order)."""
        pos = np.searchsorted(self.sorted_keys, keys)
        inside = pos < len(self.sorted_keys)
        found = np.zeros(len(keys), dtype=bool)
        found[inside] = self.sorted_keys[pos[inside]] == keys[inside]
        return found, self.sorted_rows[pos[found]]

    def gather(self, rows: Keys) -> Matrix:
        """The vectors of ``rows`` as float32 (reading only those rows of the files)."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        seg = np.searchsorted(self.starts, rows, side="right") - 1
        for s in np.unique(seg):
            pick = seg == s
            local = rows[pick] - self.starts[s]
            order = np.argsort(local)  # ascending offsets: friendlier to the page cache
            reader = self.readers[s]
            block = np.empty((len(local), self.dim), dtype=np.float32)
            if reader is not None:
                block[order] = reader.read(local[order])
            else:
                block[order] = self.segments[s][local[order]]
            out[pick] = block
        return out

    def chunks(self, start: int = 0) -> Iterator[tuple[int, Matrix]]:
        """(first row, float32 block) over rows ``start..total``, a bounded block at a time."""
        for s, segment in enumerate(self.segments):
            first = int(self.starts[s])
            for a in range(max(0, start - first), len(segment), SCAN_CHUNK_ROWS):
                block = np.asarray(segment[a : a + SCAN_CHUNK_ROWS], dtype=np.float32)
                yield first + a, block

    def with_changes(
        self, add_keys: Keys, add_vectors: npt.NDArray[Any], remove_keys: Keys
    ) -> tuple[Rows, Keys]:
        """A new snapshot with these keys removed and these added (replacing); also the
        rows that became dead."""
        if len(add_keys):
            # The last occurrence of a key repeated in one call wins, as with a dict.
            _, first_in_reversed = np.unique(add_keys[::-1], return_index=True)
            keep = np.sort(len(add_keys) - 1 - first_in_reversed)
            add_keys, add_vectors = add_keys[keep], add_vectors[keep]
        kill = np.concatenate([remove_keys, add_keys])
        pos = np.searchsorted(self.sorted_keys, kill)
        inside = pos < len(self.sorted_keys)
        hit = np.zeros(len(kill), dtype=bool)
        hit[inside] = self.sorted_keys[pos[inside]] == kill[inside]
        kill_pos = np.unique(pos[hit])
        tombstoned = self.sorted_rows[kill_pos]
        dead = self.dead.copy()
        dead[tombstoned] = True
        sorted_keys = np.delete(self.sorted_keys, kill_pos)
        sorted_rows = np.delete(self.sorted_rows, kill_pos)
        keys, segments, starts = self.keys, self.segments, self.starts
        if len(add_keys):
            new_rows = np.arange(self.total, self.total + len(add_keys), dtype=np.int64)
            order = np.argsort(add_keys)
            at = np.searchsorted(sorted_keys, add_keys[order])
            sorted_keys = np.insert(sorted_keys, at, add_keys[order])
            sorted_rows = np.insert(sorted_rows, at, new_rows[order])
            keys = np.concatenate([keys, add_keys])
            dead = np.concatenate([dead, np.zeros(len(add_keys), dtype=bool)])
            if len(segments) > self.saved_segments:  # one pending segment, grown in place
                segments = (*segments[:-1], np.concatenate([segments[-1], add_vectors]))
            else:
                segments = (*segments, add_vectors)
            starts = np.concatenate([[0], np.cumsum([len(s) for s in segments])]).astype(np.int64)
        readers = self.readers[: self.saved_segments]
        rows = replace(
            self,
            segments=segments,
            readers=(*readers, *([None] * (len(segments) - len(readers)))),
            starts=starts,
            keys=keys,
            dead=dead,
            sorted_keys=sorted_keys,
            sorted_rows=sorted_rows,
        )
        return rows, tombstoned


@dataclass(frozen=True, slots=True, eq=False)
class State:
    """What one search needs, swapped as a whole on every change."""

    rows: Rows


S = TypeVar("S", bound=State)


@dataclass(frozen=True, slots=True)
class Extra:
    """What a subclass wrote on save: its files and its state, recorded in the metadata."""

    files: Mapping[str, str] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)


# --- files -----------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp(path: Path) -> Path:
    return path.with_name(f".tmp.{path.name}.{os.getpid()}")


def commit_file(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and rename it to ``final``."""
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def write_array(path: Path, array: npt.NDArray[Any]) -> None:
    tmp = _temp(path)
    with tmp.open("wb") as fh:
        np.save(fh, array, allow_pickle=False)
    commit_file(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = _temp(path)
    tmp.write_text(text, encoding="utf-8")
    commit_file(tmp, path)


def write_segment(
    path: Path, blocks: Iterator[npt.NDArray[Any]], rows: int, dim: int, dtype: str
) -> None:
    """A ``.npy`` matrix filled block by block, so a large rewrite never sits in memory."""
    tmp = _temp(path)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=(rows, dim))
    at = 0
    for block in blocks:
        out[at : at + len(block)] = block
        at += len(block)
    if at != rows:
        raise AssertionError(f"segment {path.name}: wrote {at} rows, expected {rows}")
    out.flush()
    del out
    commit_file(tmp, path)


def load_array(
    directory: Path, name: str, shape: tuple[int, ...], dtype: str, mmap: bool
) -> npt.NDArray[Any]:
    path = directory / name
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise VectorIndexError(
            f"vector index {directory} is missing its file {name}: {REBUILD_HINT}"
        ) from None
    except (ValueError, OSError, EOFError) as exc:
        raise VectorIndexError(
            f"vector index file {path} is damaged ({exc}): {REBUILD_HINT}"
        ) from None
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise VectorIndexError(
            f"vector index file {path} holds {array.dtype} {array.shape}, expected "
            f"{dtype} {shape}: {REBUILD_HINT}"
        )
    return array


def map_matrix(
    directory: Path, name: str, shape: tuple[int, int], dtype: str, random_access: bool
) -> tuple[npt.NDArray[Any], RowReader | None]:
    """A ``.npy`` matrix mapped read-only; with ``random_access``, no read-ahead, and a
    :class:`RowReader` for reading rows without making them resident."""
    path = directory / name
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = fh.tell()
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise VectorIndexError(
            f"vector index {directory} is missing its file {name}: {REBUILD_HINT}"
        ) from None
    except (ValueError, OSError) as exc:
        raise VectorIndexError(
            f"vector index file {path} is damaged ({exc}): {REBUILD_HINT}"
        ) from None
    found_shape, fortran, found_dtype = header
    need = offset + shape[0] * shape[1] * np.dtype(dtype).itemsize
    if found_shape != shape or found_dtype != np.dtype(dtype) or fortran or len(mapping) < need:
        raise VectorIndexError(
            f"vector index file {path} holds {found_dtype} {found_shape} ({len(mapping)} bytes), "
            f"expected {dtype} {shape}: {REBUILD_HINT}"
        )
    array: npt.NDArray[Any] = np.ndarray(shape, np.dtype(dtype), buffer=mapping, offset=offset)
    if not random_access:
        return array, None
    mapping.madvise(mmap.MADV_RANDOM)
    return array, RowReader(path, array, mapping, offset)


def load_rows(directory: Path, meta: IndexMeta, random_access: bool) -> Rows:
    mapped = [
        map_matrix(directory, s.file, (s.rows, meta.dim), s.dtype, random_access)
        for s in meta.segments
    ]
    segments = tuple(array for array, _ in mapped)
    readers = tuple(r for _, r in mapped)
    if not meta.rows:
        return Rows.empty(meta.dim)
    keys = load_array(directory, meta.files["keys"], (meta.rows,), "int64", mmap=False)
    if "dead" in meta.files:
        dead = load_array(directory, meta.files["dead"], (meta.rows,), "bool", mmap=False)
    else:
        dead = np.zeros(meta.rows, dtype=bool)
    live = np.flatnonzero(~dead)
    order = np.argsort(keys[live], kind="stable")
    sorted_keys, sorted_rows = keys[live][order], live[order].astype(np.int64)
    if len(sorted_keys) != meta.count or np.any(sorted_keys[1:] == sorted_keys[:-1]):
        raise VectorIndexError(
            f"vector index {directory} is inconsistent (its key list does not match its "
            f"metadata): {REBUILD_HINT}"
        )
    starts = np.concatenate([[0], np.cumsum([s.rows for s in meta.segments])]).astype(np.int64)
    return Rows(
        meta.dim, segments, readers, starts, keys, dead, sorted_keys, sorted_rows, len(segments)
    )


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """One writing process per index directory at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise VectorIndexError(
                f"vector index {directory} is being written by another process; "
                "try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


def remove_unreferenced(directory: Path, meta: IndexMeta) -> None:
    """Delete older generations and crash leftovers; readers that still map them keep
    their data (an unlinked file lives until its last mapping goes)."""
    keep = {s.file for s in meta.segments} | set(meta.files.values())
    for path in directory.iterdir():
        if _OWN_FILE.match(path.name) and path.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


# --- the shared machinery --------------------------------------------------------------------


class MatrixIndex(VectorIndex, Generic[S]):
    """Keys, rows, changes and atomic saves; subclasses decide how to search."""

    storage: ClassVar[str]
    # Whether rows are mostly read a few at a time (rescoring) rather than scanned.
    random_access: ClassVar[bool] = False

    def __init__(self, directory: Path, meta: IndexMeta, state: S) -> None:
        self._dir = directory
        self._meta = meta
        self._state = state
        self._write_lock = threading.Lock()

    # subclass hooks

    @classmethod
    def _library(cls) -> dict[str, str]:
        return {"name": "numpy", "version": np.__version__}

    @classmethod
    def _parameters(cls, **options: Any) -> dict[str, Any]:
        return {}

    @classmethod
    @abc.abstractmethod
    def _new_state(cls, rows: Rows, meta: IndexMeta, directory: Path) -> S:
        """The in-memory state of this kind over freshly opened or created rows."""

    @abc.abstractmethod
    def _derive(self, state: S, rows: Rows, tombstoned: Keys, added: npt.NDArray[Any]) -> S:
        """The state after rows were added (``added``) or removed (``tombstoned``)."""

    def _save_extra(self, state: S, generation: int, final_rows: int, compacting: bool) -> Extra:
        """Write whatever else this kind keeps, before the matrix files are written."""
        return Extra()

    # construction

    @classmethod
    def create(cls, directory: Path, *, model_id: str, dim: int, **options: Any) -> Self:
        if not model_id or isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise VectorIndexError(
                f"a vector index needs a model id and a dimension, got {model_id!r}, {dim!r}"
            )
        meta = IndexMeta(
            kind=cls.kind,
            model_id=model_id,
            dim=dim,
            library=cls._library(),
            storage=cls.storage,
            parameters=cls._parameters(**options),
        )
        path = Path(directory)
        return cls(path, meta, cls._new_state(Rows.empty(dim), meta, path))

    @classmethod
    def open(cls, directory: Path, *, model_id: str, dim: int) -> Self:
        path = Path(directory)
        # A writer may delete the previous generation between our reading index.json and
        # opening its files: read again when that happened.
        for attempt in range(3):
            meta = read_meta(path)
            if meta is None:
                raise VectorIndexError(
                    f"no vector index in {path} (no {META_FILE}); "
                    "run `paperfeed index` to build one"
                )
            if meta.kind != cls.kind:
                raise VectorIndexError(
                    f"vector index {path} is of kind {meta.kind!r}, not {cls.kind!r}"
                )
            check_compatible(meta, path, model_id=model_id, dim=dim)
            try:
                state = cls._new_state(load_rows(path, meta, cls.random_access), meta, path)
            except VectorIndexError:
                now = read_meta(path)
                if attempt == 2 or now is None or now.generation == meta.generation:
                    raise
                continue
            return cls(path, meta, state)
        raise AssertionError("unreachable")

    # reading

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def meta(self) -> IndexMeta:
        return self._meta

    def __len__(self) -> int:
        return self._state.rows.count

    def keys(self) -> Keys:
        return self._state.rows.sorted_keys.copy()

    def contains(self, keys: npt.ArrayLike) -> Mask:
        found, _ = self._state.rows.lookup(as_keys(keys))
        return found

    def get(self, keys: npt.ArrayLike) -> Matrix:
        wanted = as_keys(keys)
        rows = self._state.rows
        found, at = rows.lookup(wanted)
        if not found.all():
            missing = wanted[~found][:5].tolist()
            raise NotFoundError(f"no vector stored for key(s) {missing} in {self._dir}")
        return rows.gather(at)

    def _query(self, query: npt.ArrayLike) -> npt.NDArray[np.float32]:
        q = as_unit_rows(query, self._meta.dim, what="query")
        if q.shape[0] != 1:
            raise VectorIndexError(f"query must be one vector of {self._meta.dim} values")
        first: npt.NDArray[np.float32] = q[0]
        return first

    @staticmethod
    def _finish(
        rows: Rows, candidates: Keys, query: npt.NDArray[np.float32], k: int
    ) -> list[VectorHit]:
        """Score the candidate rows exactly (float32, row by row) and keep the best k."""
        candidates = np.unique(candidates)
        if len(candidates) == 0:
            return []
        scores = dot_rows(rows.gather(candidates), query)
        return hits(*rank(scores, rows.keys[candidates], k))

    @staticmethod
    def _near_top(scores: Scores, rows: Keys, k: int) -> Keys:
        """The rows whose (BLAS) score is in the top k, with a margin for rounding."""
        finite = np.isfinite(scores)
        if not finite.all():
            scores, rows = scores[finite], rows[finite]
        if len(scores) <= k:
            return rows
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        near: Keys = rows[scores >= cut - TIE_MARGIN]
        return near

    def _exact_rows(
        self, rows: Rows, candidates: Keys, query: npt.NDArray[np.float32], k: int
    ) -> list[VectorHit]:
        """Exact search restricted to ``candidates`` (live rows)."""
        near: list[Keys] = []
        for a in range(0, len(candidates), SCAN_CHUNK_ROWS):
            part = np.sort(candidates[a : a + SCAN_CHUNK_ROWS])
            near.append(self._near_top(rows.gather(part) @ query, part, k))
        if not near:
            return []
        return self._finish(rows, np.concatenate(near), query, k)

    def _allowed_rows(self, rows: Rows, allowed: npt.ArrayLike) -> Keys:
        _, at = rows.lookup(np.unique(as_keys(allowed, what="allowed")))
        return at

    # writing

    def add(self, keys: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        add_keys = as_keys(keys)
        add_vectors = as_unit_rows(vectors, self._meta.dim)
        if len(add_keys) != len(add_vectors):
            raise VectorIndexError(f"add got {len(add_keys)} keys but {len(add_vectors)} vectors")
        if not len(add_keys):
            return
        stored = add_vectors.astype(self.storage, copy=False)
        with self._write_lock:
            state = self._state
            rows, tombstoned = state.rows.with_changes(add_keys, stored, np.zeros(0, np.int64))
            self._state = self._derive(state, rows, tombstoned, stored)

    def remove(self, keys: npt.ArrayLike) -> int:
        gone = as_keys(keys)
        with self._write_lock:
            state = self._state
            empty = np.zeros((0, self._meta.dim), dtype=self.storage)
            rows, tombstoned = state.rows.with_changes(np.zeros(0, np.int64), empty, gone)
            self._state = self._derive(state, rows, tombstoned, empty)
        return len(tombstoned)

    def save(self) -> None:
        with self._write_lock, writer_lock(self._dir):
            on_disk = read_meta(self._dir)
            if (on_disk.generation if on_disk else 0) != self._meta.generation:
                raise VectorIndexError(
                    f"vector index {self._dir} was changed by another writer since it was "
                    "opened; open it again and repeat the changes"
                )
            state = self._state
            rows = state.rows
            generation = self._meta.generation + 1
            dead = rows.total - rows.count
            compacting = dead > 0 and dead >= COMPACT_DEAD_FRACTION * rows.total
            final_rows = rows.count if compacting else rows.total
            extra = self._save_extra(state, generation, final_rows, compacting)
            segments = self._write_segments(rows, generation, compacting)
            files = dict(extra.files)
            if final_rows:
                keys = rows.keys[~rows.dead] if compacting else rows.keys
                files["keys"] = f"keys.{generation:06d}.npy"
                write_array(self._dir / files["keys"], keys)
                if not compacting and dead:
                    files["dead"] = f"dead.{generation:06d}.npy"
                    write_array(self._dir / files["dead"], rows.dead)
            _fsync_dir(self._dir)
            meta = self._meta.stamped(
                generation,
                count=rows.count,
                rows=final_rows,
                segments=segments,
                files=files,
                library=self._library(),
                state=extra.state,
            )
            write_text(self._dir / META_FILE, meta.to_json())
            _fsync_dir(self._dir)
            self._meta = meta
            remove_unreferenced(self._dir, meta)
            self._state = self._new_state(
                load_rows(self._dir, meta, self.random_access), meta, self._dir
            )

    def _write_segments(
        self, rows: Rows, generation: int, compacting: bool
    ) -> tuple[SegmentFile, ...]:
        name = f"vectors.{generation:06d}.npy"
        dim, dtype = self._meta.dim, self.storage
        if compacting:
            live = np.flatnonzero(~rows.dead)
            if not len(live):
                return ()
            blocks = (
                rows.gather(live[a : a + SCAN_CHUNK_ROWS])
                for a in range(0, len(live), SCAN_CHUNK_ROWS)
            )
            write_segment(self._dir / name, blocks, len(live), dim, dtype)
            return (SegmentFile(name, len(live), dtype),)
        saved = list(self._meta.segments)
        if rows.saved_segments == len(rows.segments):
            return tuple(saved)
        # Merge the new rows with every newer segment not larger than them (binary counter).
        new_rows = len(rows.segments[-1])
        first = len(saved)
        while first > 0 and saved[first - 1].rows <= new_rows:
            first -= 1
            new_rows += saved[first].rows
        merged = rows.segments[first:]
        write_segment(
            self._dir / name,
            (
                np.asarray(m[a : a + SCAN_CHUNK_ROWS])
                for m in merged
                for a in range(0, len(m), SCAN_CHUNK_ROWS)
            ),
            new_rows,
            dim,
            dtype,
        )
        return (*saved[:first], SegmentFile(name, new_rows, dtype))


# --- exact search ----------------------------------------------------------------------------


class ExactIndex(MatrixIndex[State]):
    """Brute-force cosine search over float32 rows: exact, for small corpora."""

    kind = "exact"
    storage: ClassVar[str] = "float32"

    @classmethod
    def _new_state(cls, rows: Rows, meta: IndexMeta, directory: Path) -> State:
        return State(rows)

    def _derive(self, state: State, rows: Rows, tombstoned: Keys, added: npt.NDArray[Any]) -> State:
        return State(rows)

    def search(
        self, query: npt.ArrayLike, k: int, *, allowed: npt.ArrayLike | None = None
    ) -> list[VectorHit]:
        q, k = self._query(query), check_k(k)
        rows = self._state.rows
        if allowed is not None:
            candidates = self._allowed_rows(rows, allowed)
            # A small allowed set is cheaper to gather than the whole matrix is to scan.
            if len(candidates) * 8 < rows.total:
                return self._exact_rows(rows, candidates, q, k)
            keep = np.zeros(rows.total, dtype=bool)
            keep[candidates] = True
        else:
            keep = ~rows.dead
        near: list[Keys] = []
        for start, block in rows.chunks():
            scores = block @ q
            in_block = keep[start : start + len(block)]
            scores[~in_block] = -np.inf
            near.append(self._near_top(scores, np.arange(start, start + len(block)), k))
        if not near:
            return []
        return self._finish(rows, np.concatenate(near), q, k)

    def search_batch(self, queries: npt.ArrayLike, k: int) -> list[list[VectorHit]]:
        qs, k = as_unit_rows(queries, self._meta.dim, what="queries"), check_k(k)
        rows = self._state.rows
        near: list[list[Keys]] = [[] for _ in range(len(qs))]
        for start, block in rows.chunks():
            scores = block @ qs.T
            scores[rows.dead[start : start + len(block)]] = -np.inf
            index = np.arange(start, start + len(block))
            for i in range(len(qs)):
                near[i].append(self._near_top(scores[:, i], index, k))
        return [
            self._finish(rows, np.concatenate(n) if n else np.zeros(0, np.int64), q, k)
            for n, q in zip(near, qs, strict=True)
        ]
