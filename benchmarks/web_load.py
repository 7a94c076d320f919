"""Load test of the web app: a feed page and a search page under concurrent clients.

    python benchmarks/web_load.py [--papers 100000] [--duration 30] [--connections 20]

Needs wrk (``apt-get install wrk``). For each store -- the bundled sample (embedded with
all-MiniLM-L6-v2) and a generated store of ``--papers`` papers listed over a year -- it
starts ``paperfeed serve`` on loopback, warms it up, then runs wrk for ``--duration``
seconds with ``--connections`` concurrent clients against:

- feed: the feed pages of the latest days (``/papers/date/...``, trending), 50 papers each;
- search: the search page (hybrid: the real query embedding + BM25 + vector search),
  once over a rotation of 8 queries (their embeddings are cached by the app after the
  first time, as popular queries and next pages are), once over queries never seen
  before (every request embeds its query).

It prints requests/s, errors (socket errors and non-2xx answers), the client-side latency
percentiles (which include queueing behind the other clients) and the server-side time
per request (the app's ``Server-Timing`` header: from request to response start).

The generated store takes its titles and abstracts from BEIR SciFact (real abstracts,
each reused about twenty times, when ../shared/data is there). It is not embedded with
the model (that would take hours on two cores):
its papers get random unit vectors in the model's vector index, so search latency is
measured with the real query encoder, the real vector index at full size and the real
keyword index, while the ranking itself is meaningless.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

WORDS = tuple(
    (
        "model learning neural data training language graph image network deep transformer "
        "attention diffusion retrieval embedding optimization robust efficient sparse "
        "representation benchmark inference generative reinforcement policy quantum "
        "field theory lattice spectral kernel bayesian causal"
    ).split()
)
CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "hep-th", "math.OC", "quant-ph"]
QUERIES = [
    "text-to-image personalization",
    "diffusion models",
    "sparse attention transformer",
    "gene expression in cancer cells",
    "graph neural network",
    "vitamin D deficiency risk",
    "bayesian causal inference",
    "efficient language model training",
]
LUA = """
local paths = {%(paths)s}
local i = 0
times = {}
queued = {}
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
response = function(status, headers, body)
  local t = headers["server-timing"] or headers["Server-Timing"]
  if t then
    local ms = tonumber(string.match(t, "app;dur=([%%d%%.]+)"))
    if ms then times[#times + 1] = ms end
    local q = tonumber(string.match(t, "queue;dur=([%%d%%.]+)"))
    if q then queued[#queued + 1] = q end
  end
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local server, queue = {}, {}
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("times")) do server[#server + 1] = v end
    for _, v in ipairs(t:get("queued")) do queue[#queue + 1] = v end
  end
  io.write("RESULT ", string.format(
    '{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50": %%.3f, "p95": %%.3f, "p99": %%.3f, "server": [',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
  for j, v in ipairs(server) do
    if j > 1 then io.write(",") end
    io.write(string.format("%%.3f", v))
  end
  io.write('], "queue": [')
  for j, v in ipairs(queue) do
    if j > 1 then io.write(",") end
    io.write(string.format("%%.3f", v))
  end
  io.write("]}\\n")
end
"""


SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"


def real_texts() -> tuple[list[str], list[str]]:
    """Titles and abstracts of real papers (BEIR SciFact, 5,183): words with a natural
    frequency, so keyword search costs what it costs on a real corpus (a vocabulary of a
    few dozen words would put every paper in every posting list)."""
    titles, abstracts = [], []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc.get("title") and doc.get("text"):
                titles.append(doc["title"])
                abstracts.append(doc["text"])
    return titles, abstracts


def generate(path: Path, papers: int, days: int, seed: int = 11) -> None:
    """A listing of ``papers`` papers over ``days`` feed days (generic JSON lines)."""
    rng = random.Random(seed)
    if (SCIFACT / "corpus.jsonl").exists():
        titles, abstracts = real_texts()
    else:
        titles = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))).capitalize()
            for _ in range(5000)
        ]
        abstracts = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 220))) for _ in range(2000)
        ]
    last_day = dt.date(2026, 3, 31)
    per_day = max(1, papers // days)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(papers):
            day = last_day - dt.timedelta(days=min(days - 1, i // per_day))
            record = {
                "arxiv_id": f"{day:%y%m}.{i % 100000:05d}",
                "title": f"{rng.choice(titles)} {i}",
                "abstract": rng.choice(abstracts),
                "authors": [f"Author{rng.randint(1, 50000)}" for _ in range(rng.randint(1, 8))],
                "categories": rng.sample(CATEGORIES, rng.randint(1, 3)),
                "published": (day - dt.timedelta(days=rng.randint(0, 3))).isoformat(),
                "upvotes": int(rng.paretovariate(1.2)) - 1,
                "feed_date": day.isoformat(),
                "rank": i % per_day + 1,
                "listing": "generated",
            }
            fh.write(json.dumps(record) + "\n")


def build_generated(
    data_dir: Path, papers: int, days: int, database_url: str | None = None
) -> None:
    from paperfeed.index import semantic
    from paperfeed.index.encoder import title_and_abstract
    from paperfeed.ingest import ingest_file
    from paperfeed.settings import Settings
    from paperfeed.store import open_store

    settings = Settings.resolve(data_dir, database_url)
    source = data_dir.parent / "generated.jsonl"
    started = time.perf_counter()
    generate(source, papers, days)
    with open_store(settings) as store:
        ingest_file(store, source)
        encoder = semantic.load_encoder(settings, semantic.DEFAULT_MODEL)
        store.set_setting(f"semantic.model_id:{semantic.DEFAULT_MODEL}", encoder.model_id)
        index = semantic.open_index(settings, encoder, store)
        rng = np.random.default_rng(3)
        after = 0
        while True:
            jobs = store.embedding_jobs(encoder.model_id, limit=20_000, after_pk=after)
            if not jobs:
                break
            after = jobs[-1].pk
            vectors = rng.standard_normal((len(jobs), encoder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            index.add(np.asarray([j.pk for j in jobs], dtype=np.int64), vectors)
            index.save()
            store.record_embeddings(
                encoder.model_id,
                [
                    (
                        j.pk,
                        semantic.text_hash(title_and_abstract(j.title, j.abstract)),
                        j.content_hash,
                    )
                    for j in jobs
                ],
            )
        semantic.activate(store, semantic.DEFAULT_MODEL)
        print(
            f"  generated store: {store.stats().papers} papers over {days} days "
            f"({time.perf_counter() - started:.0f} s to build)",
            flush=True,
        )
    source.unlink()


def _env(database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if database_url:
        env["PAPERFEED_DATABASE_URL"] = database_url
    return env


def build_sample(data_dir: Path, database_url: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "paperfeed", "demo", "--data-dir", str(data_dir), "--no-serve"],
        check=True,
        capture_output=True,
        env=_env(database_url),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 300) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode("utf-8"))


def latest_days(base: str, n: int) -> list[str]:
    days = json.loads(get(base + "/api/v1/feed-days"))["days"]
    return list(days[-n:])


def run_wrk(base: str, paths: list[str], duration: int, connections: int) -> dict[str, float]:
    quoted = ", ".join(json.dumps(p) for p in paths)
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % {"paths": quoted})
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base + paths[0],
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
    finally:
        script.unlink()
    match = re.search(r"^RESULT (.*)$", out, re.M)
    if match is None:
        raise SystemExit(f"wrk gave no result:\n{out}")
    raw = json.loads(match[1])
    server = np.asarray(raw["server"] or [0.0])
    queue = np.asarray(raw["queue"] or [0.0])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "errors": errors,
        "p50": raw["p50"],
        "p95": raw["p95"],
        "p99": raw["p99"],
        "server_p50": float(np.percentile(server, 50)),
        "server_p95": float(np.percentile(server, 95)),
        "queue_p95": float(np.percentile(queue, 95)),
    }


def measure(
    name: str, data_dir: Path, args: argparse.Namespace
) -> list[tuple[str, dict[str, float]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = data_dir.parent / f"serve-{name}.log"
    with log.open("wb") as fh:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paperfeed",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--no-access-log",
                "--workers",
                str(args.workers),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_env(args.database_url),
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                get(base + "/", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        feed_paths = [f"/papers/date/{d}" for d in latest_days(base, 5)]
        search_paths = ["/search?" + urllib.parse.urlencode({"q": q}) for q in QUERIES]
        rng = random.Random(5)
        fresh = [" ".join(rng.sample(WORDS, 3)) + f" {i}" for i in range(5000)]
        fresh_paths = ["/search?" + urllib.parse.urlencode({"q": q}) for q in fresh]
        for path in feed_paths + search_paths:  # warm-up: the model loads on first search
            get(base + path)
        results = []
        pages = (
            ("feed", feed_paths),
            ("search (8 queries, repeated)", search_paths),
            ("search (new queries)", fresh_paths),
        )
        for label, paths in pages:
            results.append((label, run_wrk(base, paths, args.duration, args.connections)))
        return results
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per page")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: temp)")
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server: each store is a new database on it"
    )
    parser.add_argument(
        "--embedded-postgres",
        action="store_true",
        help="start a PostgreSQL server for the run (paperfeed.bench.embedded_postgres)",
    )
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = parser.parse_args()
    if args.embedded_postgres:
        from paperfeed.bench.embedded_postgres import embedded_server

        with embedded_server() as server:
            args.database_url = server.admin_url
            return _run(args)
    return _run(args)


def _new_database(admin_url: str | None, name: str) -> str | None:
    """A new database named ``name`` on the server of ``admin_url`` (None: SQLite)."""
    if admin_url is None:
        return None
    from paperfeed.bench.embedded_postgres import create_database

    return create_database(admin_url, name, replace=True)


def _run(args: argparse.Namespace) -> int:
    admin_url = args.database_url
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="paperfeed-web-load-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        if not args.skip_sample:
            print("sample store (all-MiniLM-L6-v2 embeddings)...", flush=True)
            sample = work / "sample"
            args.database_url = _new_database(admin_url, "paperfeed_load_sample")
            if not sample.exists() or admin_url:
                build_sample(sample, args.database_url)
            rows += [("sample", *r) for r in measure("sample", sample, args)]
        if not args.skip_generated:
            print(f"generated store ({args.papers:,} papers)...", flush=True)
            generated = work / f"generated-{args.papers}"
            args.database_url = _new_database(admin_url, f"paperfeed_load_{args.papers}")
            if not generated.exists() or admin_url:
                build_generated(generated, args.papers, args.days, args.database_url)
            rows += [(f"{args.papers:,} papers", *r) for r in measure("generated", generated, args)]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    backend = f"PostgreSQL, {args.workers} worker(s)" if admin_url else "SQLite"
    print(
        f"\n{backend}; {args.connections} concurrent clients, {args.duration} s per page, "
        "wrk on loopback\n"
    )
    print(
        "| store | page | requests/s | errors | latency p50 / p95 / p99 (ms) "
        "| server-side p50 / p95 (ms) | queued p95 (ms) |"
    )
    print("|---|---|---|---|---|---|---|")
    for store, page, r in rows:
        print(
            f"| {store} | {page} | {r['rps']:.1f} | {r['errors']:.0f} of {r['requests']:.0f} "
            f"| {r['p50']:.1f} / {r['p95']:.1f} / {r['p99']:.1f} "
            f"| {r['server_p50']:.1f} / {r['server_p95']:.1f} | {r['queue_p95']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
