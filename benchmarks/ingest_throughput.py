"""Parse + store throughput of the arXiv snapshot ingest, and whether memory stays flat.

    python benchmarks/ingest_throughput.py [--lines 200000] [--workdir DIR]

Generates a snapshot-format JSON-lines file (not timed), ingests it into a fresh store
(timed, before any embedding), then builds the keyword index (timed separately), and
prints records/s, peak RSS, and the RSS at each quarter of the file: a flat memory
profile means the snapshot is streamed.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

from paperfeed.ingest import ingest_file
from paperfeed.settings import Settings
from paperfeed.store import open_store

WORDS = tuple(
    (
        "model learning neural data training language graph image network deep transformer "
        "attention diffusion retrieval embedding optimization robust efficient sparse "
        "representation benchmark inference generative reinforcement policy quantum "
        "field theory lattice spectral kernel bayesian causal"
    ).split()
)
CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "hep-th", "math.OC", "quant-ph"]


def generate(path: Path, lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    # A pool of texts drawn once keeps generation fast; records still differ in id,
    # authors, categories and the pairing of title and abstract.
    titles = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize()
        for _ in range(5000)
    ]
    abstracts = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 220))) for _ in range(2000)
    ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            year, month = 15 + (i // 1_200_000) % 10, 1 + (i // 100_000) % 12
            n_authors = rng.randint(1, 8)
            last = [f"Author{rng.randint(1, 50000)}" for _ in range(n_authors)]
            first = [rng.choice("ABCDEFGHJKLMNPRSTW") + "." for _ in range(n_authors)]
            record = {
                "id": f"{year:02d}{month:02d}.{i % 100000:05d}",
                "submitter": f"{first[0]} {last[0]}",
                "authors": ", ".join(f"{f} {s}" for f, s in zip(first, last, strict=True)),
                "title": f"{rng.choice(titles)} {i}",
                "comments": "12 pages, 3 figures",
                "journal-ref": None,
                "doi": None,
                "report-no": None,
                "categories": " ".join(rng.sample(CATEGORIES, rng.randint(1, 3))),
                "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
                "abstract": "  " + rng.choice(abstracts) + "\n",
                "versions": [
                    {"version": "v1", "created": "Mon, 2 Apr 2018 19:18:42 GMT"},
                    {"version": "v2", "created": "Tue, 3 Apr 2018 10:00:00 GMT"},
                ],
                "update_date": "2018-04-03",
                "authors_parsed": [[s, f, ""] for f, s in zip(first, last, strict=True)],
            }
            fh.write(json.dumps(record) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, help="Keep files here instead of a temp dir.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        src = work / "snapshot.jsonl"
        t0 = time.perf_counter()
        generate(src, args.lines)
        size = src.stat().st_size
        print(
            f"generated {args.lines:,} lines ({size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        proc = psutil.Process()
        quarters: list[tuple[int, float]] = []
        next_mark = [size // 4]

        def progress(done: int) -> None:
            if done >= next_mark[0]:
                quarters.append((done, proc.memory_info().rss / 2**20))
                next_mark[0] += size // 4

        settings = Settings.resolve(work / "store")
        with open_store(settings) as store:
            rss_before = proc.memory_info().rss / 2**20
            t0 = time.perf_counter()
            report = ingest_file(store, src, progress=progress, refresh_index=False)
            stored = time.perf_counter() - t0
            t1 = time.perf_counter()
            indexed = store.refresh_keyword_index()
            index_time = time.perf_counter() - t1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        total = stored + index_time
        print(
            f"stored {report.read:,} records ({report.added:,} added, "
            f"{report.quarantined} quarantined) in {stored:.1f} s"
        )
        print(f"parse + store: {report.read / stored:,.0f} records/s")
        print(
            f"keyword index (tantivy) of {indexed:,} papers: {indexed / index_time:,.0f} papers/s"
        )
        print(f"whole ingest command (both): {report.read / total:,.0f} records/s")
        print(f"RSS before ingest: {rss_before:.0f} MiB; peak RSS: {peak:.0f} MiB")
        print(
            "RSS while storing: "
            + ", ".join(f"{100 * d / size:.0f}%: {m:.0f} MiB" for d, m in quarters)
        )
        db = settings.db_path
        print(f"store size: {db.stat().st_size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
