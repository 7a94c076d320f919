"""The bench command: search latency, recall, memory and embedding throughput at scale."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from paperfeed.bench import MODES, BenchConfig, BenchReport, parse_size, run_bench
from paperfeed.bench.report import targets
from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    json_option,
    out,
    print_json,
    progress_bar,
    semantic_installed,
)
from paperfeed.errors import PaperfeedError


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--sizes",
    default="10k,100k,1m",
    show_default=True,
    help="Corpus sizes in papers, comma-separated (5000, 10k, 1m).",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES),
    help="Mode to time (repeatable; default: all). embed and vector time the query "
    "embedding and the vector index alone; keyword, semantic, hybrid are whole searches.",
)
@click.option(
    "--queries",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Timed queries per mode (the query file is cycled if it has fewer).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Stop a mode after this many seconds even if its queries are not all done.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Untimed queries per mode before the timed ones.",
)
@click.option(
    "--model",
    default="minilm",
    show_default=True,
    help="Query encoder: minilm (queries on its fp32 ONNX export), minilm-fast (ONNX int8), "
    "fake, or a model path.",
)
@click.option(
    "--index",
    "index_kind",
    type=click.Choice(["auto", "exact", "ivf", "hnsw"]),
    default="auto",
    show_default=True,
    help=(
        "Vector index kind, as 'paperfeed index' would build it (auto: IVF past 10,000; "
        "on PostgreSQL pgvector IVFFlat); ivf: the IVF index at any size; hnsw: an HNSW "
        "graph (usearch; on PostgreSQL pgvector HNSW)."
    ),
)
@click.option(
    "--embed-docs",
    type=click.IntRange(min=0),
    default=256,
    show_default=True,
    help="Real abstracts embedded to measure throughput (0: skip).",
)
@click.option(
    "--no-baseline",
    is_flag=True,
    help="Skip sentence-transformers' own encode, the throughput baseline.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the synthetic corpus."
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the corpora are built and kept for re-runs [default: <data dir>/bench].",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON report here.",
)
@click.option(
    "--database-url",
    help="Build and serve the corpora in PostgreSQL on this server (one database per size, "
    "paperfeed_bench_N, kept for re-runs) instead of SQLite. PAPERFEED_DATABASE_URL is "
    "not used: SQLite stays the default.",
)
@click.option(
    "--embedded-postgres",
    is_flag=True,
    help="Start a throwaway PostgreSQL server (embedded-postgres, loopback) in the work "
    "directory for the run, and stop it at the end.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@data_dir_option
@json_option
def bench(
    directory: Path,
    sizes: str,
    modes: tuple[str, ...],
    queries: int,
    duration: float,
    warmup: int,
    model: str,
    index_kind: str,
    embed_docs: int,
    no_baseline: bool,
    seed: int,
    work_dir: Path | None,
    out_path: Path | None,
    database_url: str | None,
    embedded_postgres: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Measure search at scale on a synthetic corpus made from a BEIR folder.

    DIRECTORY is a BEIR folder (e.g. SciFact): its sentences make the synthetic papers'
    text, its abstracts' real embeddings the distribution of their synthetic vectors, and
    its queries are the queries. Prints latency p50/p95/p99 and QPS per mode, recall@10 of
    the vector index, build times, the serving process's memory and embedding throughput.
    The store is SQLite unless --database-url or --embedded-postgres selects PostgreSQL.
    """
    if not semantic_installed():
        raise PaperfeedError("bench needs the semantic extra: pip install 'paperfeed[semantic]'")
    config = BenchConfig(
        beir_dir=directory,
        work_dir=work_dir or cli_settings(data_dir).data_dir / "bench",
        sizes=tuple(parse_size(s) for s in sizes.split(",") if s.strip()),
        modes=modes or MODES,
        queries=queries,
        duration=duration,
        warmup=warmup,
        model=model,
        index_kind=index_kind,  # type: ignore[arg-type]  # click.Choice checked it
        embed_docs=embed_docs,
        baseline=not no_baseline,
        seed=seed,
        database_url=database_url,
        embedded_postgres=embedded_postgres,
    )
    progress = progress_bar(quiet or as_json)
    tasks: dict[str, TaskID] = {}

    def step(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        report = run_bench(config, step)
    data = report.to_json()
    if out_path is not None:
        out_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print_json(data)
        return
    print_report(report)


def print_report(report: BenchReport) -> None:
    # Piped output is not cut to 80 columns: the tables are wider than that.
    console = out if out.is_terminal else Console(highlight=False, soft_wrap=True, width=170)
    if report.server is None:
        out.print(f"[bold]backend[/bold]: {escape(report.backend)}")
    else:
        srv = report.server
        out.print(
            f"[bold]backend[/bold]: {escape(report.backend)}, PostgreSQL "
            f"{escape(srv['postgresql'])} + pgvector {escape(srv['pgvector'])} "
            f"({escape(srv['server'])}; shared_buffers {escape(srv['shared_buffers'])}); "
            "the server's memory is not in the RSS columns: see 'server'"
        )
    out.print(
        f"[bold]model[/bold] {escape(report.model_id)} ({escape(report.model)}); "
        f"vector index {report.index_kind}; threads {report.threads}"
    )
    out.print(f"[bold]corpus vectors[/bold]: {escape(report.vectors)}")
    out.print(f"[bold]corpus text[/bold]: {escape(report.text)}")
    out.print(f"[bold]queries[/bold]: {escape(report.query_source)}, {report.queries_available}")
    table = Table(
        "papers",
        "mode",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "cpu p95",
        "QPS",
        "recall@10",
        "recall@k",
        "queries",
        title="Latency per query on one thread (keyword / semantic / hybrid: whole searches)",
    )
    for size in report.sizes:
        for m in size.modes:
            lat = m.latency
            table.add_row(
                f"{size.size:,}",
                m.mode,
                f"{lat.p50_ms:.2f}",
                f"{lat.p95_ms:.2f}",
                f"{lat.p99_ms:.2f}",
                f"{lat.cpu_p95_ms:.2f}",
                f"{lat.qps:.1f}",
                "" if m.recall_at_10 is None else f"{m.recall_at_10:.4f}",
                "" if m.recall_at_k is None else f"{m.recall_at_k:.4f} (k={m.k})",
                str(lat.queries),
            )
    console.print(table)
    server = any(s.memory.server_peak_mb is not None for s in report.sizes)
    build = Table(
        "papers",
        "store s",
        "keyword s",
        "vector s",
        "index",
        "store MB",
        "vectors MB",
        "RSS loaded",
        "RSS warm",
        "RSS peak",
        "anon",
        "file",
        *(["server loaded", "server peak"] if server else []),
        title="Build (reused: built by an earlier run) and serving memory (MiB)"
        + ("; server: the PostgreSQL processes' PSS, apart from the RSS" if server else ""),
    )
    for size in report.sizes:
        b, mem = size.build, size.memory
        extra = [_mb(mem.server_loaded_mb), _mb(mem.server_peak_mb)] if server else []
        build.add_row(
            f"{size.size:,}" + (" (reused)" if b.reused else ""),
            f"{b.store_seconds:.1f}",
            f"{b.keyword_seconds:.1f}",
            f"{b.vector_seconds:.1f}",
            b.vector_kind,
            f"{b.store_mb:.0f}",
            f"{b.vectors_mb:.0f}",
            f"{mem.loaded_mb:.0f}",
            f"{mem.warm_mb:.0f}",
            f"{mem.peak_mb:.0f}",
            f"{mem.anon_mb:.0f}",
            f"{mem.file_mb:.0f}",
            *extra,
        )
    console.print(build)
    if report.embedding is not None:
        e = report.embedding
        line = (
            f"embedding: {e.docs_per_s:.1f} abstracts/s "
            f"({e.threads} threads, {e.documents} real abstracts)"
        )
        if e.baseline_docs_per_s is not None:
            line += (
                f"; sentence-transformers encode: {e.baseline_docs_per_s:.1f} abstracts/s "
                f"({e.baseline_threads} threads)"
            )
        out.print(line)
    for size in report.sizes:
        for t in targets(size):
            mark = "[green]met[/green]" if t.met else "[red]missed[/red]"
            out.print(f"target at {size.size:,}: {t.name} {t.value:.3f} ({t.limit}): {mark}")
    out.print(f"[dim]work dir: {escape(report.work_dir)}[/dim]")


def _mb(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"
