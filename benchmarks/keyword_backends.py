"""Keyword backends at scale: the store's own keyword index, plain tantivy and bm25s.

This is the study that moved the SQLite store's keyword index from FTS5 to tantivy
(FTS5, measured at 1M papers: 2,131 ms p50; see docs/search.md). ``store`` is now that
tantivy index, searched exactly as a search runs it.

    python benchmarks/keyword_backends.py --store-dir /tmp/pf-bench/work/n-1000000
        [--beir ../shared/data/beir/scifact] [--queries 300] [--backends store,tantivy,bm25s]
        [--index-dir DIR] [--quality-only | --speed-only]

Speed: over the synthetic corpus that ``paperfeed bench`` built in ``--store-dir`` (its
``manifest.json`` gives the size and seed, and the papers are generated again from them, so
every backend indexes exactly the papers of that store). Each backend builds its index in
a child process (build seconds, size on disk, peak memory), then a fresh child opens it
and runs the BEIR queries (top 100, one thread, after 20 warm-up queries): p50 / p95 / p99
latency and the resident memory after the queries.

- ``store``: the store's own ``keyword_search`` (store/sqlite/keyword_index.py: tantivy,
  one field holding the title 4 times, the abstract and the authors) on the parsed query,
  exactly what a search runs; its build time is the one ``paperfeed bench`` recorded for
  the store's keyword index.
- ``tantivy``: one field, the title written 4 times then the abstract, tantivy's
  ``en_stem`` tokenizer, a query of the same words as the store's (OR);
- ``bm25s``: the same text (PyStemmer English stemmer, English stopwords).

Why one field with the title repeated: FTS5's ``bm25()`` with column weights added up the
*weighted term frequencies* of the columns before saturating them (BM25F-like), so the
faithful copy is a field where a title word counts 4 times. Summing two per-field BM25
scores with the title boosted 4x instead lets title matches swamp everything (measured on
SciFact: nDCG@10 0.577 with tantivy, 0.575 with bm25s; 0.668 for tantivy with boost 1).

Every backend uses BM25 with k1 = 1.2, b = 0.75.

Quality: nDCG@10 of each backend alone on the real BEIR corpus and its test judgments,
with the same title weighting (``store`` through paperfeed's own keyword search, as
``paperfeed eval`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "beir" / "scifact"
BACKENDS = ("store", "tantivy", "bm25s")
TITLE_WEIGHT = 4.0
TITLE_REPEAT = 4  # = TITLE_WEIGHT, as a count
DEPTH = 100
K1, B = 1.2, 0.75
WARMUP = 20
_NON_WORD = re.compile(r"[^\w]+")


def rss_mb() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields


def dir_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def query_words(text: str) -> list[str]:
    """The words paperfeed's query parser keeps (stopwords out), made safe for any syntax."""
    from paperfeed.index.keyword_query import parse_query

    words = []
    for w in parse_query(text).words:
        words.extend(x for x in _NON_WORD.split(w) if x)
    return words


# --- the documents ---------------------------------------------------------------------------


def synthetic_docs(store_dir: Path, beir: Path) -> Iterator[tuple[int, str, str]]:
    """(key, title, abstract) of the store built by ``paperfeed bench`` in ``store_dir``."""
    from paperfeed.bench.corpus import TextModel, generate_papers, read_beir_corpus

    manifest = json.loads((store_dir / "manifest.json").read_text())
    model = TextModel.from_texts(read_beir_corpus(beir), beir.name)
    for i, paper in enumerate(generate_papers(model, manifest["papers"], seed=manifest["seed"])):
        yield i + 1, paper.title, paper.abstract


def beir_docs(beir: Path) -> list[tuple[int, str, str]]:
    from paperfeed.bench.corpus import read_beir_corpus

    return [(i, t, a) for i, (t, a) in enumerate(read_beir_corpus(beir))]


def beir_ids(beir: Path) -> list[str]:
    with (beir / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [str(json.loads(line)["_id"]) for line in fh if line.strip()]


# --- backends --------------------------------------------------------------------------------


def weighted_text(title: str, abstract: str) -> str:
    return " ".join([title] * TITLE_REPEAT + [abstract])


def build_tantivy(docs: Iterator[tuple[int, str, str]], target: Path) -> None:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("key", stored=True, indexed=False, fast=True)
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem")
    target.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(builder.build(), path=str(target))
    writer = index.writer(heap_size=256_000_000, num_threads=2)
    for key, title, abstract in docs:
        writer.add_document(tantivy.Document(key=key, text=weighted_text(title, abstract)))
    writer.commit()
    writer.wait_merging_threads()


def open_tantivy(target: Path) -> Callable[[str], list[tuple[int, float]]]:
    import tantivy

    index = tantivy.Index.open(str(target))
    index.reload()
    searcher = index.searcher()

    def search(text: str) -> list[tuple[int, float]]:
        words = query_words(text)
        if not words:
            return []
        query = index.parse_query(" ".join(words), ["text"])
        # count=False: counting every match would disable tantivy's top-k pruning.
        found = searcher.search(query, DEPTH, count=False).hits
        return [(int(searcher.doc(addr)["key"][0]), float(score)) for score, addr in found]

    return search


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def build_bm25s(docs: Iterator[tuple[int, str, str]], target: Path) -> None:
    import bm25s

    keys, texts = [], []
    for key, title, abstract in docs:
        keys.append(key)
        texts.append(weighted_text(title, abstract))
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
    del texts
    model = bm25s.BM25(k1=K1, b=B)
    model.index(tokens, show_progress=False)
    model.save(str(target / "bm25s"), show_progress=False)
    np.save(target / "keys.npy", np.asarray(keys, dtype=np.int64))


def open_bm25s(target: Path) -> Callable[[str], list[tuple[int, float]]]:
    import bm25s

    stemmer = _stemmer()
    model = bm25s.BM25.load(str(target / "bm25s"), mmap=True, show_progress=False)
    keys = np.load(target / "keys.npy", mmap_mode="r")

    def search(text: str) -> list[tuple[int, float]]:
        words = [w.lower() for w in query_words(text)]
        stems = [w for w in dict.fromkeys(stemmer.stemWords(words)) if w in model.vocab_dict]
        if not stems:
            return []
        scores = np.asarray(model.get_scores(stems), dtype=np.float32)
        top = np.argpartition(-scores, min(DEPTH, len(scores) - 1))[:DEPTH]
        top = top[scores[top] > 0]
        top = top[np.lexsort((top, -scores[top]))]
        return [(int(keys[i]), float(scores[i])) for i in top]

    return search


def open_store_keyword(store_dir: Path) -> Callable[[str], list[tuple[int, float]]]:
    from paperfeed.index.keyword_query import parse_query
    from paperfeed.settings import Settings
    from paperfeed.store import open_store

    store = open_store(Settings.resolve(store_dir / "data"), create=False)

    def search(text: str) -> list[tuple[int, float]]:
        return store.keyword_search(parse_query(text), limit=DEPTH)

    return search


# --- child processes -------------------------------------------------------------------------


def child_build(
    backend: str, source: str, store_dir: str, beir: str, target: str
) -> dict[str, Any]:
    # Generated before the clock starts: only indexing is timed.
    docs = (
        list(synthetic_docs(Path(store_dir), Path(beir)))
        if source == "synthetic"
        else beir_docs(Path(beir))
    )
    out = Path(target)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    {"tantivy": build_tantivy, "bm25s": build_bm25s}[backend](iter(docs), out)
    seconds = time.perf_counter() - started
    return {"build_s": seconds, "disk_mb": dir_mb(out), "build_peak_mb": rss_mb()["VmHWM"]}


def opener(backend: str, store_dir: str, target: str) -> Callable[[str], list[tuple[int, float]]]:
    if backend == "store":
        return open_store_keyword(Path(store_dir))
    return {"tantivy": open_tantivy, "bm25s": open_bm25s}[backend](Path(target))


def child_serve(backend: str, store_dir: str, target: str, queries: list[str]) -> dict[str, Any]:
    before = rss_mb()["VmRSS"]
    search = opener(backend, store_dir, target)
    loaded = rss_mb()["VmRSS"]
    for q in queries[-WARMUP:]:
        search(q)
    times, cpu = [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        search(q)
        times.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    ms = np.asarray(times) * 1000
    after = rss_mb()
    return {
        "queries": len(queries),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "cpu_p95_ms": float(np.percentile(np.asarray(cpu) * 1000, 95)),
        "rss_mb": after["VmRSS"],
        "anon_mb": after["RssAnon"],
        "file_mb": after["RssFile"],
        "base_rss_mb": before,
        "loaded_rss_mb": loaded,
    }


def child_quality(backend: str, beir: str, target: str) -> dict[str, Any]:
    from paperfeed.evaluation.beir import load_dataset
    from paperfeed.evaluation.metrics import ndcg_at, recall_at

    dataset = load_dataset(Path(beir))
    ids = beir_ids(Path(beir))
    search = opener(backend, "", target)
    ndcgs, recalls = [], []
    for qid, text in sorted(dataset.queries.items()):
        ranking = [ids[key] for key, _ in search(text)]
        ndcgs.append(ndcg_at(ranking, dataset.qrels[qid], 10))
        recalls.append(recall_at(ranking, dataset.qrels[qid], 100))
    return {"ndcg@10": float(np.mean(ndcgs)), "recall@100": float(np.mean(recalls))}


def store_quality(beir: Path) -> dict[str, Any]:
    """The store's keyword index as paperfeed searches with it: ``paperfeed eval``'s
    keyword mode."""
    from paperfeed.evaluation.beir import evaluate
    from paperfeed.search import SearchMode
    from paperfeed.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        report = evaluate(beir, Settings.resolve(tmp), modes=[SearchMode.KEYWORD])
    score = report.scores[0]
    return {"ndcg@10": score.ndcg_at_10, "recall@100": score.recall_at_100}


def run_child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def read_queries(beir: Path, count: int) -> list[str]:
    from paperfeed.bench.corpus import read_beir_queries

    queries = read_beir_queries(beir)
    return [queries[i % len(queries)] for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store-dir", type=Path, help="a size directory of paperfeed bench")
    parser.add_argument("--beir", type=Path, default=SCIFACT)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--index-dir", type=Path, help="where tantivy / bm25s indexes go")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse indexes built by an earlier run in --index-dir"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        action, *rest = args.child
        if action == "build":
            result = child_build(*rest)
        elif action == "serve":
            backend, store_dir, target, qfile = rest
            result = child_serve(backend, store_dir, target, json.loads(Path(qfile).read_text()))
        else:
            result = child_quality(*rest)
        print(json.dumps(result))
        return 0

    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    versions = {"sqlite": __import__("sqlite3").sqlite_version}
    for name in ("tantivy", "bm25s", "PyStemmer"):
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    print(f"versions: {versions}; BM25 k1={K1} b={B}; title weight {TITLE_WEIGHT}", flush=True)
    index_root = args.index_dir or Path(tempfile.mkdtemp(prefix="pf-keyword-"))
    index_root.mkdir(parents=True, exist_ok=True)

    if not args.speed_only:
        print(f"quality on {args.beir.name} (real corpus and judgments):", flush=True)
        for backend in backends:
            if backend == "store":
                quality = store_quality(args.beir)
            else:
                target = index_root / f"quality-{backend}"
                run_child("build", backend, "beir", "", str(args.beir), str(target))
                quality = run_child("quality", backend, str(args.beir), str(target))
            print(
                f"  {backend:<8} nDCG@10 {quality['ndcg@10']:.4f}  "
                f"Recall@100 {quality['recall@100']:.4f}",
                flush=True,
            )

    if args.quality_only:
        return 0
    if args.store_dir is None:
        parser.error("--store-dir is needed for the speed measurement")
    manifest = json.loads((args.store_dir / "manifest.json").read_text())
    n = manifest["papers"]
    qfile = index_root / "queries.json"
    qfile.write_text(json.dumps(read_queries(args.beir, args.queries)))
    print(f"speed on {n:,} synthetic papers, {args.queries} {args.beir.name} queries, top {DEPTH}:")
    header = (
        f"{'backend':<8} {'build s':>8} {'disk MB':>8} {'build peak MB':>13} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'cpu p95':>8} {'RSS MB':>7} {'anon':>6} {'file':>6}"
    )
    rows = []
    for backend in backends:
        target = index_root / f"speed-{backend}"
        if backend == "store":
            built = {
                "build_s": manifest["store"]["keyword_seconds"],
                "disk_mb": dir_mb(args.store_dir / "data" / "paperfeed.db-keyword"),
                "build_peak_mb": float("nan"),  # measured by paperfeed bench, not here
            }
        elif args.reuse and (target / "build.json").exists():
            built = json.loads((target / "build.json").read_text())
        else:
            built = run_child(
                "build", backend, "synthetic", str(args.store_dir), str(args.beir), str(target)
            )
            (target / "build.json").write_text(json.dumps(built))
        served = run_child("serve", backend, str(args.store_dir), str(target), str(qfile))
        row = (
            f"{backend:<8} {built['build_s']:>8.1f} {built['disk_mb']:>8.0f} "
            f"{built['build_peak_mb']:>13.0f} {served['p50_ms']:>8.2f} {served['p95_ms']:>8.2f} "
            f"{served['p99_ms']:>8.2f} {served['cpu_p95_ms']:>8.2f} {served['rss_mb']:>7.0f} "
            f"{served['anon_mb']:>6.0f} {served['file_mb']:>6.0f}"
        )
        rows.append(row)
        print(row, flush=True)
    print()
    print(header)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
