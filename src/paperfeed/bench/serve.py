"""The serving side of ``paperfeed bench``, run in a process of its own.

The process that built the corpus holds gigabytes of arrays; a server does not. So the
store, the memory-mapped vector index and the query encoder are opened here, in a fresh
process started by :func:`run_serving`, whose resident memory is then what a server of this
corpus needs. Queries run one after another on one thread (BLAS, OpenMP and the encoder set
to one thread before anything loads), each mode over the same real query texts.

The child reads a :class:`ServeSpec` as JSON on stdin and writes lines prefixed with
``MARK`` on stdout: progress events, then the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paperfeed.bench.report import LatencyStats, MemoryStats, ModeResult, recall_at
from paperfeed.errors import PaperfeedError

MARK = "@@paperfeed-bench "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Modes: the query embedding alone, the vector index alone (at k=10, and at the depth a
# search asks it for: SearchOptions().candidates), then the three search modes end
# to end (query parsing, embedding, both sides, fusion, loading the papers, snippets).
MODES = ("embed", "vector", "vector-depth", "keyword", "semantic", "hybrid")
RSS_EVERY = 10

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ServeSpec:
    data_dir: str
    vectors_dir: str
    vectors_model_id: str
    dim: int
    model: str
    models_dir: str
    queries: list[str]
    query_vectors: str  # .npy of the queries embedded by the model (for the vector modes)
    truth: str  # .npy of the exact top keys of each query, at least search_depth() of them
    modes: list[str]
    max_queries: int
    duration: float  # seconds per mode at most
    warmup: int
    # A PostgreSQL store (the vectors in its pgvector index); None: SQLite + vectors_dir.
    database_url: str | None = None


@dataclass(frozen=True, slots=True)
class ServeResult:
    modes: list[ModeResult]
    memory: MemoryStats


def search_depth() -> int:
    """How many candidates a search asks the vector index for (its default options)."""
    from paperfeed.search import SearchOptions

    return max(10, SearchOptions().candidates)


def _memory() -> tuple[float, float, float]:
    """(RSS, anonymous, file-backed) of this process in MiB."""
    fields: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "RssAnon", "RssFile"):
                    fields[name] = int(value.split()[0]) / 1024
    except OSError:
        import psutil

        rss = psutil.Process().memory_info().rss / 2**20
        return rss, rss, 0.0
    return fields["VmRSS"], fields.get("RssAnon", 0.0), fields.get("RssFile", 0.0)


def _server_memory(processes: list[Any]) -> float | None:
    if not processes:
        return None
    from paperfeed.bench.postgres import server_memory

    return server_memory(processes)


def serve(spec: ServeSpec, progress: Progress | None = None) -> ServeResult:
    """Open the corpus like a server does and time every mode (call in a fresh process)."""
    import numpy as np

    from paperfeed.index.encoder import configure_threads, get_encoder
    from paperfeed.index.vectors import VectorIndex, open_vector_index
    from paperfeed.search import SearchEngine, SearchMode, SearchOptions
    from paperfeed.settings import Settings
    from paperfeed.store import open_store

    configure_threads(1, queries=1)
    encoder = get_encoder(spec.model, cache_dir=Path(spec.models_dir))
    # Explicit settings: PAPERFEED_DATABASE_URL in the environment must not redirect a run.
    settings = Settings(data_dir=Path(spec.data_dir).resolve(), database_url=spec.database_url)
    store = open_store(settings, create=False)
    server: list[Any] = []
    try:
        if spec.database_url is None:
            index: VectorIndex = open_vector_index(
                Path(spec.vectors_dir), model_id=spec.vectors_model_id, dim=spec.dim
            )
        else:
            from paperfeed.bench.postgres import server_processes

            in_store = store.vector_index(spec.vectors_model_id, spec.dim)
            if in_store is None:
                raise PaperfeedError("the PostgreSQL store has no vector index")
            index = in_store
            server = server_processes(store, spec.database_url)
        engine = SearchEngine(store, encoder=encoder, vectors=index)
        qvecs = np.load(spec.query_vectors)
        truth = np.load(spec.truth)
        texts = spec.queries
        if len(qvecs) != len(texts) or len(truth) != len(texts):
            raise PaperfeedError("query vectors, truth and query texts disagree in number")
        search_modes = {m.value: SearchMode(m) for m in SearchMode}
        depth = search_depth()

        def runner(mode: str) -> Callable[[int], Sequence[int] | None]:
            if mode == "embed":

                def embed(i: int) -> None:
                    encoder.encode_queries([texts[i]])

                return embed
            if mode in ("vector", "vector-depth"):
                k = 10 if mode == "vector" else depth

                def vector(i: int) -> list[int]:
                    return [h.key for h in index.search(qvecs[i], k)]

                return vector
            if mode in search_modes:
                options = SearchOptions(mode=search_modes[mode], limit=10)

                def search(i: int) -> None:
                    engine.search(texts[i], options)

                return search
            raise PaperfeedError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")

        runners = {mode: runner(mode) for mode in spec.modes}
        loaded = _memory()[0]
        server_loaded = _server_memory(server)
        n = len(texts)
        for run in runners.values():
            for j in range(min(spec.warmup, n)):
                run(n - 1 - j)
        warm = _memory()[0]
        peak = _memory()
        # The server's memory is sampled between modes only: reading every process's
        # page map takes milliseconds that would land in the timed queries.
        server_samples = [_server_memory(server)]
        results: list[ModeResult] = []
        for mode, run in runners.items():
            wall: list[float] = []
            cpu: list[float] = []
            found: list[Sequence[int]] = []
            asked: list[int] = []
            started = time.perf_counter()
            for done in range(spec.max_queries):
                i = done % n
                w, c = time.perf_counter(), time.thread_time()
                keys = run(i)
                wall.append(time.perf_counter() - w)
                cpu.append(time.thread_time() - c)
                if keys is not None:
                    found.append(keys)
                    asked.append(i)
                if done % RSS_EVERY == 0:
                    sample = _memory()
                    peak = max(peak, sample)
                    if progress is not None:
                        progress(mode, done + 1, spec.max_queries)
                if time.perf_counter() - started > spec.duration:
                    break
            seconds = time.perf_counter() - started
            peak = max(peak, _memory())
            server_samples.append(_server_memory(server))
            r10 = rk = k = None
            if found:
                true = [truth[i].tolist() for i in asked]
                r10 = recall_at(found, true, 10)
                if mode == "vector-depth":
                    k = depth
                    rk = recall_at(found, true, depth)
            stats = LatencyStats.of(wall, cpu, seconds)
            results.append(ModeResult(mode, stats, r10, rk, k))
        sampled = [m for m in server_samples if m is not None]
        memory = MemoryStats(
            loaded,
            warm,
            peak[0],
            peak[1],
            peak[2],
            server_loaded_mb=server_loaded,
            server_peak_mb=max(sampled) if sampled else None,
        )
        return ServeResult(results, memory)
    finally:
        store.close()


def run_serving(spec: ServeSpec, progress: Progress | None = None) -> ServeResult:
    """:func:`serve` in a fresh Python process, one thread for every library."""
    env = dict(os.environ)
    for var in THREAD_VARIABLES:
        env[var] = "1"
    # stderr goes to a file: a pipe left unread while stdout is read could fill and block.
    with (
        tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errors,
        subprocess.Popen(
            [sys.executable, "-m", "paperfeed.bench.serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        ) as proc,
    ):
        if proc.stdin is None or proc.stdout is None:
            raise PaperfeedError("the serving process could not be started")
        proc.stdin.write(json.dumps(asdict(spec)))
        proc.stdin.close()
        result: dict[str, Any] | None = None
        for line in proc.stdout:
            if not line.startswith(MARK):
                continue
            event = json.loads(line[len(MARK) :])
            if event["event"] == "progress" and progress is not None:
                progress(event["stage"], event["done"], event["total"])
            elif event["event"] == "result":
                result = event
        if proc.wait() != 0 or result is None:
            errors.seek(0)
            tail = "\n".join(errors.read().strip().splitlines()[-15:])
            raise PaperfeedError(f"the serving process failed (exit {proc.returncode}):\n{tail}")
    return ServeResult(
        [ModeResult.from_json(m) for m in result["modes"]],
        MemoryStats.from_json(result["memory"]),
    )


def _emit(event: dict[str, object]) -> None:
    sys.stdout.write(MARK + json.dumps(event) + "\n")
    sys.stdout.flush()


def _main() -> int:
    spec = ServeSpec(**json.loads(sys.stdin.read()))
    try:
        result = serve(
            spec,
            lambda stage, done, total: _emit(
                {"event": "progress", "stage": stage, "done": done, "total": total}
            ),
        )
    except PaperfeedError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    _emit(
        {
            "event": "result",
            "modes": [m.to_json() for m in result.modes],
            "memory": result.memory.to_json(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main())
