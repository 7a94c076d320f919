"""paperfeed in the peer comparison: run by compare.py with the project's own virtualenv.

Indexing is what ``paperfeed eval`` does before it searches (the library calls of
:func:`paperfeed.evaluation.beir.evaluate`): a new store, the BEIR corpus ingested into it
(SQLite, FTS5 keyword index), every paper embedded with the default model. Then
``evaluate`` itself runs on that store (it reuses the corpus and the vectors), so the
quality figures are exactly what ``paperfeed eval`` reports with its default options, and
the latency of each query is read from its progress callback (called once a query is
ranked): the first query of each mode has no start mark and serves as the warm-up.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import time
from itertools import pairwise

import harness
from harness import ModeResult, RunResult

from paperfeed.evaluation.beir import evaluate, ingest_corpus, load_dataset
from paperfeed.index import semantic
from paperfeed.index.encoder import configure_threads, default_model_dir
from paperfeed.settings import Settings
from paperfeed.store import open_store


def main() -> None:
    args = harness.parse_args(("paperfeed",))
    log = harness.logger(args.run)
    if args.beir is None:
        raise SystemExit("paperfeed_run.py needs --beir (the BEIR folder)")
    # Imported before the clock starts, as the peers' libraries are.
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    model_dir = default_model_dir()
    if model_dir.resolve() != args.model_dir.resolve():
        log(f"paperfeed's default model is {model_dir} (compare.py checked the files match)")
    harness.warm_page_cache(model_dir)
    configure_threads(args.index_threads, queries=args.query_threads)
    # The embedded store explicitly, whatever a PostgreSQL URL in the environment says.
    settings = Settings(data_dir=args.work.resolve())
    dataset = load_dataset(args.beir)
    log("indexing: ingest into a new store, keyword index, embeddings")
    started = time.perf_counter()
    with open_store(settings) as store:
        docs_of = ingest_corpus(store, dataset.corpus)
        encoder, index, _ = semantic.build(settings, store)
    seconds = time.perf_counter() - started
    index_peak = harness.peak_rss_mib()
    documents = sum(len(v) for v in docs_of.values())
    log(f"indexed in {seconds:.1f}s ({documents / seconds:.1f} docs/s), {len(docs_of)} papers")
    del encoder, index

    marks: dict[str, list[float]] = {}

    def progress(mode: str, done: int, total: int) -> None:
        if mode != "embedding":
            marks.setdefault(mode, []).append(time.perf_counter())
            if done % 100 == 0:
                log(f"{mode}: {done}/{total} queries")

    report = evaluate(args.beir, settings, progress=progress)
    modes = {}
    for scores in report.scores:
        stamps = marks.get(scores.mode, [])
        latencies = [(b - a) * 1000 for a, b in pairwise(stamps)]
        modes[scores.mode] = ModeResult(
            latencies_ms=latencies,
            scores={
                "ndcg@10": scores.ndcg_at_10,
                "recall@100": scores.recall_at_100,
                "mrr@10": scores.mrr_at_10,
            },
        )
    result = RunResult(
        run="paperfeed",
        system="paperfeed",
        index=f"SQLite store + FTS5 + {report.model} vectors "
        f"({len(docs_of)} papers from {documents} documents)",
        documents=documents,
        index_seconds=seconds,
        modes=modes,
        versions=harness.versions(
            "paperfeed", "torch", "sentence-transformers", "usearch", "transformers", "numpy"
        ),
        notes=[
            "quality: paperfeed.evaluation.beir.evaluate with default SearchOptions "
            "(exactly `paperfeed eval`); documents merged into one paper share its rank",
        ],
        threads={
            **harness.thread_env(),
            "torch_index": args.index_threads,
            "torch_query": args.query_threads,
        },
    )
    result.index_peak_rss_mib = index_peak
    harness.write_result(args.out, result)


if __name__ == "__main__":
    main()
