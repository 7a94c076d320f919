"""The synthetic corpus of ``paperfeed bench``: papers with realistic text, and vectors.

Text. A real BEIR corpus (SciFact in the measurements) is cut into sentences; a synthetic
abstract is real sentences drawn at random until it reaches a length drawn from the real
abstracts' lengths, and a title is words drawn from the real titles (so word frequencies,
and with them the BM25 posting lists a query walks, follow the real ones), with a title
length drawn from the real titles. Every paper gets its own arXiv id (so none are merged),
authors, categories and a publication date.

Vectors. Embedding a million abstracts on two cores takes days, so the corpus vectors are
drawn from a distribution fitted to real embeddings (the model's own vectors of the real
abstracts): a mixture of local Gaussians, one per cluster of about twenty real abstracts
(k-means), each spread along its cluster's own top principal directions with their real
variances plus isotropic noise carrying the rest of the cluster's variance, then
L2-normalized. Real embeddings are locally low-dimensional: neighbours stand out from the
crowd. A mixture of a few broad full-covariance Gaussians (this module's first sampler)
matches their spectrum and spread but not that, and its neighbourhoods are flat. Fitted on
half of SciFact's abstracts and compared with the other half at equal sizes (500 to 2,592),
the mean similarity of the 1st, 10th and 100th neighbours, of real queries and of the
abstracts themselves, is within 0.019 of the real ones on average (the broad mixture:
0.051); see docs/bench.md. The queries are real texts embedded by the real model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paperfeed.errors import FormatError, NotFoundError, PaperfeedError
from paperfeed.model import Paper, new_paper

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
_WORD = re.compile(r"\S+")
CATEGORIES = (
    "cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "q-bio.GN", "q-bio.NC", "q-bio.QM",
    "physics.med-ph", "cs.IR", "cs.NE", "math.OC",
)  # fmt: skip
SOURCE = "bench"
# Papers per arXiv month: new-style ids have five digits.
_PER_MONTH = 100_000
# The vector sampler: one mixture component per this many real abstracts, each with this
# many principal directions of its own (chosen on held-out SciFact embeddings: see the
# module docstring). Its version is recorded with the vectors it drew.
ABSTRACTS_PER_COMPONENT = 20
LOCAL_DIMS = 16
SAMPLER_VERSION = 2

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class TextModel:
    """What synthetic papers are made of, read from a real corpus."""

    sentences: tuple[str, ...]
    abstract_chars: npt.NDArray[np.int64]  # the real abstracts' lengths
    title_words: tuple[str, ...]  # every word of every real title (repeats = frequency)
    title_lengths: npt.NDArray[np.int64]  # the real titles' lengths in words
    source: str

    @classmethod
    def from_texts(cls, docs: list[tuple[str, str]], source: str) -> TextModel:
        sentences: list[str] = []
        chars: list[int] = []
        words: list[str] = []
        lengths: list[int] = []
        for title, text in docs:
            text = " ".join(text.split())
            if text:
                sentences.extend(s for s in _SENTENCE_END.split(text) if len(s) > 1)
                chars.append(len(text))
            title_words = _WORD.findall(title.rstrip("."))
            if title_words:
                words.extend(title_words)
                lengths.append(len(title_words))
        if not sentences or not words:
            raise FormatError(f"{source}: no titles and abstracts to build a corpus from")
        return cls(
            tuple(sentences),
            np.asarray(chars, dtype=np.int64),
            tuple(words),
            np.asarray(lengths, dtype=np.int64),
            source,
        )


def read_beir_corpus(directory: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """(title, text) of the documents of a BEIR folder's corpus.jsonl."""
    path = directory / "corpus.jsonl"
    if not path.is_file():
        raise NotFoundError(f"{path}: missing (a BEIR folder has corpus.jsonl and queries.jsonl)")
    docs: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                docs.append((str(obj.get("title") or ""), str(obj["text"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise FormatError(f"{path}: line {number}: not a BEIR document") from None
            if limit is not None and len(docs) >= limit:
                break
    return docs


def read_beir_queries(directory: Path) -> list[str]:
    """The query texts of a BEIR folder's queries.jsonl, in file order."""
    path = directory / "queries.jsonl"
    if not path.is_file():
        raise NotFoundError(f"{path}: missing (a BEIR folder has corpus.jsonl and queries.jsonl)")
    queries: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                text = str(json.loads(line)["text"]).strip()
            except (ValueError, KeyError, TypeError):
                raise FormatError(f"{path}: line {number}: not a BEIR query") from None
            if text:
                queries.append(text)
    if not queries:
        raise FormatError(f"{path}: no queries")
    return queries


_FINGERPRINT_BYTES = 1 << 20


def corpus_fingerprint(directory: Path) -> str:
    """Identifies the source corpus in cache manifests: its size and the contents of its
    first and last MiB. Not its path or modification time: the same data copied or
    unpacked again elsewhere must not throw away corpora that took an hour to build."""
    path = (directory / "corpus.jsonl").resolve()
    if not path.is_file():
        raise NotFoundError(f"{path}: missing (a BEIR folder has corpus.jsonl and queries.jsonl)")
    size = path.stat().st_size
    digest = hashlib.sha1(str(size).encode("ascii"))
    with path.open("rb") as fh:
        digest.update(fh.read(_FINGERPRINT_BYTES))
        fh.seek(max(0, size - _FINGERPRINT_BYTES))
        digest.update(fh.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


def arxiv_id_of(index: int) -> str:
    """A distinct new-style arXiv id for paper ``index`` (months from 2015-01 on)."""
    month, number = divmod(index, _PER_MONTH)
    year, month = divmod(month, 12)
    return f"{15 + year:02d}{month + 1:02d}.{number:05d}"


def generate_papers(
    model: TextModel, n: int, *, seed: int = 0, chunk: int = 1000
) -> Iterator[Paper]:
    """``n`` synthetic papers; the same ``model``, ``n`` and ``seed`` give the same papers."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    sentences = model.sentences
    words = model.title_words
    for start in range(0, n, chunk):
        # One generator per chunk: a chunk's papers depend on its number, not on the others.
        rng = np.random.default_rng([seed, start])
        m = min(chunk, n - start)
        targets = rng.choice(model.abstract_chars, m)
        title_lengths = rng.choice(model.title_lengths, m)
        picks = rng.integers(0, len(sentences), (m, 64))
        title_picks = rng.integers(0, len(words), (m, int(title_lengths.max())))
        author_ids = rng.integers(1, 200_000, (m, 8))
        author_counts = rng.integers(1, 9, m)
        cats = rng.integers(0, len(CATEGORIES), (m, 3))
        cat_counts = rng.integers(1, 4, m)
        days = rng.integers(0, 3650, m)
        for i in range(m):
            parts: list[str] = []
            size = 0
            for p in picks[i]:
                if size >= targets[i]:
                    break
                parts.append(sentences[p])
                size += len(sentences[p]) + 1
            title = " ".join(words[w] for w in title_picks[i, : title_lengths[i]])
            yield new_paper(
                title=title[:1].upper() + title[1:],
                abstract=" ".join(parts),
                authors=[
                    f"{'ABCDEFGHJKLMNPRSTW'[a % 18]}. Author{a}"
                    for a in author_ids[i, : author_counts[i]]
                ],
                categories=[CATEGORIES[c] for c in cats[i, : cat_counts[i]]],
                arxiv_id=arxiv_id_of(start + i),
                published=dt.date(2015, 1, 1) + dt.timedelta(days=int(days[i])),
                source=SOURCE,
            )


class VectorSampler:
    """Draws unit vectors distributed like real embeddings (see the module docstring)."""

    def __init__(self, real: Vectors, *, seed: int = 0) -> None:
        if real.ndim != 2 or len(real) < 2:
            raise PaperfeedError("at least two real embeddings are needed to fit the sampler")
        try:
            cluster: Any = importlib.import_module("sklearn.cluster")
        except ImportError as exc:
            raise PaperfeedError(
                "the synthetic vectors need scikit-learn: pip install 'paperfeed[semantic]'"
            ) from exc
        real = np.asarray(real, dtype=np.float32)
        self.dim = int(real.shape[1])
        self.fitted_on = len(real)
        self.components = max(1, len(real) // ABSTRACTS_PER_COMPONENT)
        labels = (
            cluster.KMeans(n_clusters=self.components, n_init=1, random_state=seed)
            .fit(real)
            .labels_
        )
        self._means: list[Vectors] = []
        self._dirs: list[Vectors] = []  # rows: the cluster's principal directions
        self._stds: list[Vectors] = []  # the spread along each of them
        noise: list[float] = []  # isotropic spread of what the directions leave
        sizes: list[int] = []
        for c in range(self.components):
            members = real[labels == c]
            if not len(members):
                continue
            mean = members.mean(axis=0)
            centred = members - mean
            _, singular, vt = np.linalg.svd(centred, full_matrices=False)
            variances = singular**2 / max(len(members) - 1, 1)
            local = min(LOCAL_DIMS, len(members) - 1)
            self._means.append(mean)
            self._dirs.append(np.ascontiguousarray(vt[:local], dtype=np.float32))
            self._stds.append(np.sqrt(variances[:local]).astype(np.float32))
            rest = float(variances[local:].sum()) / max(self.dim - local, 1)
            noise.append(math.sqrt(rest) if len(members) > 1 else math.nan)
            sizes.append(len(members))
        spread = np.asarray(noise, dtype=np.float32)
        # A lone abstract has no spread of its own: it gets the typical one.
        known = spread[~np.isnan(spread)]
        self._noise = np.where(np.isnan(spread), np.median(known) if len(known) else 0.0, spread)
        self._weights = np.asarray(sizes, dtype=np.float64) / sum(sizes)

    def sample(self, n: int, *, seed: int) -> Vectors:
        """``n`` unit vectors; the same seed gives the same vectors."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            which = rng.choice(len(self._weights), size=m, p=self._weights)
            chunk = np.empty((m, self.dim), dtype=np.float32)
            for c in np.unique(which):
                rows = np.flatnonzero(which == c)
                stds = self._stds[c]
                local = rng.standard_normal((len(rows), len(stds)), dtype=np.float32) * stds
                iso = rng.standard_normal((len(rows), self.dim), dtype=np.float32)
                chunk[rows] = self._means[c] + local @ self._dirs[c] + self._noise[c] * iso
            chunk /= np.maximum(np.linalg.norm(chunk, axis=1, keepdims=True), 1e-12)
            out[start : start + m] = chunk
        return out


def exact_top(
    corpus: Vectors, keys: npt.NDArray[np.int64], queries: Vectors, k: int
) -> npt.NDArray[np.int64]:
    """The keys of each query's ``k`` nearest corpus rows by dot product (brute force)."""
    k = min(k, len(corpus))
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(corpus), 100_000):
        block = np.asarray(corpus[start : start + 100_000], dtype=np.float32)
        s = queries @ block.T
        kk = min(k, s.shape[1])
        i = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, i, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    out: npt.NDArray[np.int64] = keys[best_i]
    return out
