"""What every system's runner shares: its inputs, its clocks, its memory, its output.

Standard library only: it is imported both by ``peer_run.py`` (the peers' virtualenv) and by
``paperfeed_run.py`` (the project's virtualenv).

A runner builds one index from ``docs.jsonl`` and answers every query of ``queries.jsonl``
one at a time, warm, recording each query's latency and its top-100 document ids; it writes
one JSON file that ``compare.py`` scores with paperfeed's metric code.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

DEPTH = 100
WARMUP_QUERIES = 5

# One query's answer: (document id, score), higher scores first.
Ranking = list[tuple[str, float]]


@dataclass
class ModeResult:
    latencies_ms: list[float] = field(default_factory=list)
    # qid -> top-DEPTH document ids, best first (empty when the runner reports scores itself)
    rankings: dict[str, list[str]] = field(default_factory=dict)
    # Filled only by runners whose library computes the metrics itself (paperfeed eval).
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    run: str
    system: str
    index: str
    documents: int
    index_seconds: float
    modes: dict[str, ModeResult]
    versions: dict[str, str]
    notes: list[str]
    index_peak_rss_mib: float = 0.0  # the high-water mark when indexing was done
    peak_rss_mib: float = 0.0
    end_rss_mib: float = 0.0
    threads: dict[str, int] = field(default_factory=dict)


def parse_args(runs: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one system of the peer comparison.")
    parser.add_argument("--run", required=True, choices=list(runs))
    parser.add_argument("--inputs", type=Path, required=True, help="docs.jsonl, queries.jsonl")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="an empty scratch directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON")
    parser.add_argument("--index-threads", type=int, required=True)
    parser.add_argument("--query-threads", type=int, required=True)
    parser.add_argument("--beir", type=Path, help="the BEIR folder (paperfeed reads it itself)")
    return parser.parse_args()


def read_docs(inputs: Path) -> list[tuple[str, str]]:
    """(BEIR _id, the text paperfeed embeds for it), in corpus order."""
    with (inputs / "docs.jsonl").open(encoding="utf-8") as fh:
        return [(row["_id"], row["text"]) for row in map(json.loads, fh)]


def read_queries(inputs: Path) -> list[tuple[str, str]]:
    """(query id, text), sorted by id like paperfeed eval."""
    with (inputs / "queries.jsonl").open(encoding="utf-8") as fh:
        return [(row["_id"], row["text"]) for row in map(json.loads, fh)]


def warm_page_cache(model_dir: Path) -> None:
    """Read the model files once, so no system pays for the disk and model loading is timed
    from memory for every one of them."""
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            path.read_bytes()


def best_first(pairs: Iterable[tuple[str, float]]) -> list[str]:
    """Ids by descending score, ties broken by id (the same rule for every system)."""
    ordered = sorted(pairs, key=lambda p: (-p[1], p[0]))
    return [doc for doc, _ in ordered[:DEPTH]]


def time_queries(
    search: Callable[[str], Ranking], queries: Sequence[tuple[str, str]], log: Callable[[str], None]
) -> ModeResult:
    """Every query once after a warm-up, one at a time, each timed from text to ranked ids."""
    for _, text in queries[:WARMUP_QUERIES]:
        search(text)
    result = ModeResult()
    for i, (qid, text) in enumerate(queries, start=1):
        started = time.perf_counter()
        pairs = search(text)
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.rankings[qid] = best_first(pairs)
        if i % 100 == 0:
            log(f"{i}/{len(queries)} queries")
    return result


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def versions(*packages: str) -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def thread_env() -> dict[str, int]:
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {n: int(os.environ[n]) for n in names if os.environ.get(n, "").isdigit()}


def write_result(out: Path, result: RunResult) -> None:
    result.peak_rss_mib = peak_rss_mib()
    result.end_rss_mib = current_rss_mib()
    out.write_text(json.dumps(asdict(result)), encoding="utf-8")


def logger(run: str) -> Callable[[str], None]:
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{run} {time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr)

    return log
