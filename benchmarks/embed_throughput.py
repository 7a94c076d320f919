"""Embedding throughput (abstracts/s) and single-query latency of each encoder runtime.

    python benchmarks/embed_throughput.py [--n 1000] [--batch-size 64] [--rounds 3]
        [--queries 100] [--cache-dir DIR] [--runtimes baseline,minilm,minilm-fast]

Runtimes, all on the same N SciFact abstracts (title + ". " + text):

- ``baseline``: sentence-transformers' own ``model.encode(texts, batch_size=...)`` on the
  same model directory, torch fp32, torch's default thread count;
- ``minilm``: our SentenceTransformerEncoder.encode_documents (torch fp32);
- ``minilm-fast``: our OnnxEncoder (ONNX Runtime, int8 MatMul weights), exported into
  ``--cache-dir`` first if needed (not timed).

Each round runs every runtime once, interleaved, so that load from other processes falls
on all of them alike; the figures printed are medians over rounds. Besides wall-clock
docs/s, CPU seconds per document are printed: on a busy machine they show the work done
when wall time mostly shows waiting. Query latency: one SciFact query per call, p50/p95.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paperfeed.index.encoder import (
    Encoder,
    SentenceTransformerEncoder,
    default_model_dir,
    get_encoder,
    load_sentence_transformer,
    thread_settings,
)

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of this process in all its threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def query_latencies(encode_one: Callable[[str], object], queries: Sequence[str]) -> list[float]:
    for q in queries[:5]:
        encode_one(q)
    out = []
    for q in queries:
        start = time.perf_counter()
        encode_one(q)
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Baseline:
    """sentence-transformers used the way its documentation shows, nothing tuned."""

    name = "baseline (SentenceTransformer.encode)"

    def __init__(self, batch_size: int) -> None:
        import torch

        self._torch = torch
        self.threads = torch.get_num_threads()  # torch's default, before we change it
        self.model = load_sentence_transformer(default_model_dir())
        self.batch_size = batch_size

    def documents(self, texts: list[str]) -> object:
        self._torch.set_num_threads(self.threads)
        return self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=False)

    def query(self, text: str) -> object:
        self._torch.set_num_threads(self.threads)
        return self.model.encode([text], show_progress_bar=False)


class Ours:
    def __init__(self, name: str, encoder: Encoder, batch_size: int) -> None:
        self.name = f"{name} ({type(encoder).__name__})"
        self.encoder = encoder
        self.batch_size = batch_size

    def documents(self, texts: list[str]) -> object:
        return self.encoder.encode_documents(texts, batch_size=self.batch_size)

    def query(self, text: str) -> object:
        return self.encoder.encode_queries([text])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="abstracts to embed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--cache-dir", type=Path, default=None, help="for the ONNX export")
    parser.add_argument("--runtimes", default="baseline,minilm,minilm-fast")
    parser.add_argument("--data", type=Path, default=SCIFACT, help="a BEIR directory")
    args = parser.parse_args()

    corpus, queries_file = args.data / "corpus.jsonl", args.data / "queries.jsonl"
    if not corpus.is_file():
        print(f"no corpus at {corpus}: pass --data", file=sys.stderr)
        return 2
    docs = [f"{r['title']}. {r['text']}" for r in read_jsonl(corpus, args.n)]
    queries = [r["text"] for r in read_jsonl(queries_file, args.queries)]
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="paperfeed-models-"))

    runners: list[Baseline | Ours] = []
    for name in args.runtimes.split(","):
        if name == "baseline":
            runners.append(Baseline(args.batch_size))
        elif name == "minilm":
            runners.append(Ours(name, SentenceTransformerEncoder(), args.batch_size))
        else:
            runners.append(Ours(name, get_encoder(name, cache_dir=cache), args.batch_size))

    doc_threads, query_threads = thread_settings()
    print(
        f"{len(docs)} SciFact abstracts, batch size {args.batch_size}, {args.rounds} rounds; "
        f"our threads: documents {doc_threads}, queries {query_threads}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, dict[str, list[float]]] = {
        r.name: {"rate": [], "cpu": [], "p50": [], "p95": []} for r in runners
    }
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for r in runners:
            r.documents(docs[:8])
            out, wall, cpu = timed(lambda r=r: r.documents(docs))  # type: ignore[misc]
            vectors.setdefault(r.name, np.asarray(out, dtype=np.float32))
            lat = query_latencies(r.query, queries)
            got = results[r.name]
            got["rate"].append(len(docs) / wall)
            got["cpu"].append(cpu / len(docs) * 1000)
            got["p50"].append(percentile(lat, 50))
            got["p95"].append(percentile(lat, 95))

    reference = vectors[runners[0].name]
    print(
        f"{'runtime':40} {'docs/s':>7} {'CPU ms/doc':>10} {'query p50':>10} {'query p95':>10}"
        f"  cosine to {runners[0].name.split()[0]}"
    )
    for name, got in results.items():
        cosine = (vectors[name] * reference).sum(axis=1)
        print(
            f"{name:40} {statistics.median(got['rate']):7.1f} "
            f"{statistics.median(got['cpu']):10.1f} "
            f"{statistics.median(got['p50']):8.1f}ms {statistics.median(got['p95']):8.1f}ms"
            f"  mean {cosine.mean():.4f}, min {cosine.min():.4f}"
        )
    print(f"load average at end {os.getloadavg()[0]:.1f} (2 cores; others' jobs slow every row)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
