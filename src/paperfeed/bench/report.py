"""What ``paperfeed bench`` measured: typed results, their JSON form, the targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The product's numbers to reach (docs/bench.md), checked on sizes of at least TARGET_SIZE.
TARGET_SIZE = 1_000_000
HYBRID_P95_MS = 30.0
VECTOR_P95_MS = 5.0
RECALL_AT_10 = 0.95
SERVING_RSS_MB = 500.0


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latencies of one mode over its queries, run one after another on one thread."""

    queries: int
    seconds: float  # wall time of the whole loop
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    cpu_p95_ms: float  # CPU time of the serving thread: less disturbed by other processes

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def of(cls, wall_s: Sequence[float], cpu_s: Sequence[float], seconds: float) -> LatencyStats:
        if not wall_s:
            raise ValueError("no latencies to summarize")
        ms = np.asarray(wall_s, dtype=np.float64) * 1000
        cpu = np.asarray(cpu_s, dtype=np.float64) * 1000
        p50, p95, p99 = (float(x) for x in np.percentile(ms, [50, 95, 99]))
        return cls(
            queries=len(ms),
            seconds=seconds,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            mean_ms=float(ms.mean()),
            max_ms=float(ms.max()),
            cpu_p95_ms=float(np.percentile(cpu, 95)),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "queries": self.queries,
            "seconds": round(self.seconds, 3),
            "qps": round(self.qps, 2),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "cpu_p95_ms": round(self.cpu_p95_ms, 3),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LatencyStats:
        return cls(
            queries=int(doc["queries"]),
            seconds=float(doc["seconds"]),
            p50_ms=float(doc["p50_ms"]),
            p95_ms=float(doc["p95_ms"]),
            p99_ms=float(doc["p99_ms"]),
            mean_ms=float(doc["mean_ms"]),
            max_ms=float(doc["max_ms"]),
            cpu_p95_ms=float(doc["cpu_p95_ms"]),
        )


@dataclass(frozen=True, slots=True)
class ModeResult:
    """One measured mode. Recall only for the vector index modes: recall@10, and for
    ``vector-depth`` also recall@k at its depth ``k``."""

    mode: str
    latency: LatencyStats
    recall_at_10: float | None = None
    recall_at_k: float | None = None
    k: int | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"mode": self.mode, **self.latency.to_json()}
        if self.recall_at_10 is not None:
            doc["recall@10"] = round(self.recall_at_10, 4)
        if self.k is not None:
            doc["k"] = self.k
        if self.recall_at_k is not None:
            doc["recall@k"] = round(self.recall_at_k, 4)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ModeResult:
        r10, rk, k = doc.get("recall@10"), doc.get("recall@k"), doc.get("k")
        return cls(
            str(doc["mode"]),
            LatencyStats.from_json(doc),
            None if r10 is None else float(r10),
            None if rk is None else float(rk),
            None if k is None else int(k),
        )


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """Resident memory of the serving process, in MiB (anonymous + file-backed pages)."""

    loaded_mb: float  # store, vector index and model opened, nothing searched yet
    warm_mb: float  # after the warm-up queries
    peak_mb: float  # the largest sample taken while the timed queries ran
    anon_mb: float  # at the peak sample: heap (model weights, arrays) ...
    file_mb: float  # ... and pages of mapped files (graph, libraries)
    # PostgreSQL: the server's own processes (PSS summed), separate from the figures
    # above; None on SQLite or when the server is not on this machine.
    server_loaded_mb: float | None = None
    server_peak_mb: float | None = None

    def to_json(self) -> dict[str, float]:
        doc = {
            "loaded_mb": round(self.loaded_mb, 1),
            "warm_mb": round(self.warm_mb, 1),
            "peak_mb": round(self.peak_mb, 1),
            "anon_mb": round(self.anon_mb, 1),
            "file_mb": round(self.file_mb, 1),
        }
        if self.server_peak_mb is not None and self.server_loaded_mb is not None:
            doc["server_loaded_mb"] = round(self.server_loaded_mb, 1)
            doc["server_peak_mb"] = round(self.server_peak_mb, 1)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> MemoryStats:
        optional = ("server_loaded_mb", "server_peak_mb")
        return cls(
            **{k: float(doc[k]) for k in cls.__slots__ if k not in optional},
            **{k: float(doc[k]) for k in optional if doc.get(k) is not None},
        )


@dataclass(frozen=True, slots=True)
class BuildStats:
    """How the corpus of one size was built (possibly by an earlier run: ``reused``)."""

    papers: int
    store_seconds: float  # writing the papers to the store
    keyword_seconds: float  # the keyword index (tantivy), in bulk after the store
    vector_seconds: float  # vector index: adding the vectors and saving (graph build)
    vector_kind: str  # what the index is: exact, hnsw, pgvector ivfflat, ...
    store_mb: float
    vectors_mb: float
    reused: bool

    def to_json(self) -> dict[str, object]:
        return {
            "papers": self.papers,
            "store_seconds": round(self.store_seconds, 2),
            "keyword_index_seconds": round(self.keyword_seconds, 2),
            "vector_index_seconds": round(self.vector_seconds, 2),
            "vector_index_kind": self.vector_kind,
            "store_mb": round(self.store_mb, 1),
            "vector_index_mb": round(self.vectors_mb, 1),
            "reused": self.reused,
        }


@dataclass(frozen=True, slots=True)
class SizeResult:
    size: int
    build: BuildStats
    modes: list[ModeResult]
    memory: MemoryStats

    def mode(self, name: str) -> ModeResult | None:
        return next((m for m in self.modes if m.mode == name), None)

    def to_json(self) -> dict[str, object]:
        return {
            "papers": self.size,
            "build": self.build.to_json(),
            "modes": {m.mode: m.to_json() for m in self.modes},
            "memory": self.memory.to_json(),
            "targets": [t.to_json() for t in targets(self)],
        }


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Document embedding throughput on real abstracts (not synthetic text)."""

    model: str
    model_id: str
    documents: int
    docs_per_s: float
    threads: int
    baseline_docs_per_s: float | None  # sentence-transformers' own batch encode, same texts
    baseline_threads: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "model_id": self.model_id,
            "documents": self.documents,
            "docs_per_s": round(self.docs_per_s, 2),
            "threads": self.threads,
            "baseline_docs_per_s": None
            if self.baseline_docs_per_s is None
            else round(self.baseline_docs_per_s, 2),
            "baseline_threads": self.baseline_threads,
        }


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    limit: str
    value: float
    met: bool

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "limit": self.limit,
            "value": round(self.value, 4),
            "met": self.met,
        }


def targets(result: SizeResult) -> list[Target]:
    """The product targets that apply to this size (only sizes of a million and more)."""
    if result.size < TARGET_SIZE:
        return []
    found: list[Target] = []
    hybrid = result.mode("hybrid")
    if hybrid is not None:
        p95 = hybrid.latency.p95_ms
        found.append(Target("hybrid p95 ms", f"<= {HYBRID_P95_MS:g}", p95, p95 <= HYBRID_P95_MS))
    vector = result.mode("vector")
    if vector is not None:
        p95 = vector.latency.p95_ms
        found.append(Target("vector p95 ms", f"<= {VECTOR_P95_MS:g}", p95, p95 <= VECTOR_P95_MS))
        if vector.recall_at_10 is not None:
            r = vector.recall_at_10
            found.append(Target("recall@10", f">= {RECALL_AT_10:g}", r, r >= RECALL_AT_10))
    peak = result.memory.peak_mb
    found.append(Target("serving RSS MB", f"<= {SERVING_RSS_MB:g}", peak, peak <= SERVING_RSS_MB))
    return found


@dataclass(frozen=True, slots=True)
class BenchReport:
    model: str
    model_id: str
    index_kind: str
    query_source: str
    queries_available: int
    vectors: str  # how the corpus vectors were made: says "synthetic" when they are
    text: str  # how the corpus text was made
    threads: dict[str, int]
    embedding: EmbedResult | None
    sizes: list[SizeResult] = field(default_factory=list)
    work_dir: str = ""
    backend: str = "sqlite"  # or "postgresql"
    server: dict[str, str] | None = None  # PostgreSQL: versions, memory settings, where

    def to_json(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "server": None if self.server is None else dict(self.server),
            "model": self.model,
            "model_id": self.model_id,
            "index_kind": self.index_kind,
            "queries": {"source": self.query_source, "available": self.queries_available},
            "corpus": {"vectors": self.vectors, "text": self.text},
            "threads": dict(self.threads),
            "embedding": None if self.embedding is None else self.embedding.to_json(),
            "sizes": [s.to_json() for s in self.sizes],
            "work_dir": self.work_dir,
        }


def recall_at(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int) -> float:
    """Mean share of each query's true top ``k`` that the search returned in its top ``k``."""
    if len(found) != len(truth):
        raise ValueError("one result list per query is needed")
    if not found:
        return math.nan
    shares = [
        len(set(list(f)[:k]) & set(list(t)[:k])) / max(1, min(k, len(t)))
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(shares))
