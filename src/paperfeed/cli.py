"""The ``paperfeed`` command: parses arguments, calls the library, formats the output.

Every command that prints data takes ``--json``. Errors are one line on stderr and a
non-zero exit code; a traceback means a bug.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from paperfeed import __version__
from paperfeed.errors import PaperfeedError
from paperfeed.ingest import ingest_file
from paperfeed.model import IngestReport, Paper
from paperfeed.sample import sample_path
from paperfeed.search import (
    DEFAULT_KEYWORD_WEIGHT,
    Fusion,
    SearchHit,
    SearchMode,
    SearchOptions,
)
from paperfeed.settings import Settings
from paperfeed.sources import FORMATS
from paperfeed.store import PaperQuery, SearchFilters, Store, open_store

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(click.Group):
    """Turns PaperfeedError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PaperfeedError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def data_dir_option(func: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="PAPERFEED_HOME",
        help="Data directory of the store [env: PAPERFEED_HOME; "
        "default: ~/.local/share/paperfeed].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def _settings(data_dir: Path | None) -> Settings:
    ctx = click.get_current_context()
    root = ctx.find_root().params.get("data_dir")
    return Settings.resolve(data_dir or root)


@contextmanager
def _store(data_dir: Path | None, *, create: bool = False) -> Iterator[Store]:
    store = open_store(_settings(data_dir), create=create)
    try:
        yield store
    finally:
        store.close()


def _print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _parse_day(value: str | None, store: Store | None = None) -> dt.date | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text == "today":
        return dt.date.today()
    if text == "yesterday":
        return dt.date.today() - dt.timedelta(days=1)
    if text == "latest":
        days = store.feed_dates() if store else []
        if not days:
            raise PaperfeedError("no feed days yet: ingest a listing first")
        return days[-1]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PaperfeedError(
            f"invalid date {value!r}: use YYYY-MM-DD, 'today', 'yesterday' or 'latest'"
        ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperfeed")
@data_dir_option
def main(data_dir: Path | None) -> None:
    """paperfeed: your own daily research-paper feed.

    Ingest paper lists (arXiv, Hugging Face daily papers, saved listing pages, BibTeX,
    RIS, CSV, JSONL, ...), browse them by feed day, search them, export them.
    Everything lives in one data directory (--data-dir or PAPERFEED_HOME).
    """
    del data_dir
    # bibtexparser logs every broken block; the quarantine already reports them.
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)


@main.command()
@data_dir_option
@json_option
def init(data_dir: Path | None, as_json: bool) -> None:
    """Create the data directory and the store (safe to run again)."""
    with _store(data_dir, create=True) as store:
        info = {"store": store.location, "schema_version": store.schema_version()}
    if as_json:
        _print_json(info)
    else:
        out.print(f"Store ready at {escape(str(info['store']))} (schema {info['schema_version']})")


def _format_help() -> str:
    return "; ".join(f"{name}: {info.description}" for name, info in FORMATS.items())


def _report_json(report: IngestReport) -> dict[str, object]:
    return {
        "path": report.path,
        "format": report.format,
        "added": report.added,
        "merged": report.merged,
        "unchanged": report.unchanged,
        "quarantined": report.quarantined,
        "appearances": report.appearances,
    }


def _advance(progress: Progress, task: TaskID, done: int) -> None:
    progress.update(task, completed=done)


def _advance_of(progress: Progress, task: TaskID, done: int, total: int) -> None:
    progress.update(task, completed=done, total=total)


def _run_ingest(
    store: Store, paths: list[Path], fmt: str | None, quiet: bool
) -> tuple[list[IngestReport], list[str]]:
    reports: list[IngestReport] = []
    errors: list[str] = []
    show = not quiet and err.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not show,
    )
    with progress:
        for path in paths:
            size = path.stat().st_size if path.is_file() else None
            task = progress.add_task(path.name, total=size)
            try:
                reports.append(
                    ingest_file(
                        store,
                        path,
                        fmt=fmt,
                        progress=partial(_advance, progress, task),
                        refresh_index=False,
                    )
                )
            except PaperfeedError as exc:
                errors.append(str(exc))
                err.print(f"[red]Error:[/red] {escape(str(exc))}")
            finally:
                progress.remove_task(task)
        # One pass over everything the files added, after all of them are stored.
        pending = store.keyword_index_pending()
        if pending:
            task = progress.add_task("keyword index", total=pending)
            store.refresh_keyword_index(progress=partial(_advance_of, progress, task))
            progress.remove_task(task)
    return reports, errors


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help="Force the input format instead of detecting it.",
)
@click.option("--sample", is_flag=True, help="Ingest the bundled sample corpus.")
@click.option(
    "--no-embed", is_flag=True, help="Do not embed the new papers now ('paperfeed index' later)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_dir_option
@json_option
def ingest(
    paths: tuple[Path, ...],
    fmt: str | None,
    sample: bool,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Read paper lists from PATHS into the store (merging, never duplicating).

    The format is detected from each file (compressed .gz/.bz2/.xz files too); bad records
    are quarantined with their reason (see 'paperfeed quarantine') and never stop the run.
    Exits non-zero only if nothing could be read. Safe to re-run after an interruption.
    """
    all_paths = list(paths)
    if sample:
        all_paths.insert(0, sample_path())
    if not all_paths:
        raise click.UsageError("give at least one PATH (or --sample)")
    with _store(data_dir, create=True) as store:
        embedded = 0
        try:
            reports, errors = _run_ingest(store, all_paths, fmt, quiet or as_json)
            if reports and not no_embed:
                embedded = _embed(_settings(data_dir), store, quiet=quiet or as_json)
        except KeyboardInterrupt:
            err.print(
                "Interrupted: everything up to the last batch is stored; run the same "
                "command again to finish."
            )
            sys.exit(130)
    total = sum(reports[1:], reports[0]) if reports else None
    if as_json:
        _print_json(
            {
                "files": [_report_json(r) for r in reports],
                "errors": errors,
                "total": _report_json(total) if total else None,
                "embedded": embedded,
            }
        )
    else:
        for r in reports:
            out.print(
                f"{escape(r.path)} ({r.format}): {r.added} added, {r.merged} merged, "
                f"{r.unchanged} unchanged, {r.quarantined} quarantined, "
                f"{r.appearances} new appearances"
            )
        if total and len(reports) > 1:
            out.print(
                f"Total: {total.added} added, {total.merged} merged, {total.unchanged} "
                f"unchanged, {total.quarantined} quarantined, {total.appearances} new appearances"
            )
        if embedded:
            out.print(f"{embedded} papers embedded for search by meaning.")
        if total and total.quarantined:
            out.print("See the quarantined records with: paperfeed quarantine")
    if total is None or total.read == 0:
        sys.exit(1)


def _paper_line(paper: Paper) -> str:
    authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    date = paper.published.isoformat() if paper.published else ""
    return " · ".join(x for x in (authors, date, paper.id) if x)


def _print_papers(papers: list[Paper], *, abstracts: bool = True) -> None:
    for i, paper in enumerate(papers, start=1):
        out.print(f"[bold]{i:>3}. {escape(paper.title)}[/bold]")
        out.print(f"     [dim]{escape(_paper_line(paper))}[/dim]")
        if abstracts and paper.abstract:
            text = paper.abstract if len(paper.abstract) <= 300 else paper.abstract[:297] + "…"
            out.print(f"     {escape(text)}")
        out.print()


@main.group()
def papers() -> None:
    """List and show papers."""


@papers.command("list")
@click.option(
    "--date",
    "date_",
    help="Papers listed on this feed day: YYYY-MM-DD, 'today', 'yesterday' or 'latest'.",
)
@click.option("--from", "date_from", help="First feed day (YYYY-MM-DD) of a range.")
@click.option("--to", "date_to", help="Last feed day (YYYY-MM-DD) of a range.")
@click.option("--source", help="Only papers from this source (a format name, e.g. bibtex).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@data_dir_option
@json_option
def papers_list(
    date_: str | None,
    date_from: str | None,
    date_to: str | None,
    source: str | None,
    limit: int,
    offset: int,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """List papers: a feed day (ranked as listed), a range of days, or everything."""
    with _store(data_dir) as store:
        query = PaperQuery(
            feed_date=_parse_day(date_, store),
            date_from=_parse_day(date_from, store),
            date_to=_parse_day(date_to, store),
            source=source,
            limit=limit,
            offset=offset,
        )
        found = store.query_papers(query)
        total = store.count_papers(query)
        days = store.feed_dates() if query.feed_date and not found else []
    if as_json:
        _print_json(
            {
                "total": total,
                "offset": offset,
                "limit": limit,
                "papers": [p.to_json() for p in found],
            }
        )
        return
    if query.feed_date:
        out.print(f"[bold]Papers of {query.feed_date:%A, %d %B %Y}[/bold] ({total})\n")
    if not found:
        msg = "No papers match."
        if days:
            msg += f" The latest feed day is {days[-1].isoformat()} (use --date latest)."
        out.print(msg)
        return
    _print_papers(found)
    if total > offset + len(found):
        out.print(f"[dim]{offset + len(found)} of {total} shown; more with --offset.[/dim]")


@papers.command("show")
@click.argument("paper_id")
@data_dir_option
@json_option
def papers_show(paper_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Show one paper by id, former id, arXiv id (any spelling) or DOI."""
    with _store(data_dir) as store:
        paper = store.get_paper(paper_id)
        if paper is None:
            raise _not_found(paper_id)
        apps = store.appearances(paper.id)
    if as_json:
        data = paper.to_json()
        data["appearances"] = [
            {
                "listing": a.listing,
                "feed_date": a.feed_date.isoformat() if a.feed_date else None,
                "rank": a.rank,
                "source": a.source,
            }
            for a in apps
        ]
        _print_json(data)
        return
    out.print(f"[bold]{escape(paper.title)}[/bold]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    table.add_row("id", escape(paper.id))
    if paper.authors:
        table.add_row("authors", escape(", ".join(paper.authors)))
    if paper.categories:
        table.add_row("categories", escape(" ".join(paper.categories)))
    if paper.published:
        table.add_row("published", paper.published.isoformat())
    if paper.updated:
        table.add_row("updated", paper.updated.isoformat())
    if paper.doi:
        table.add_row("doi", escape(paper.doi))
    for name, url in paper.links.as_dict().items():
        table.add_row(name, escape(url))
    if paper.upvotes is not None:
        table.add_row("upvotes", str(paper.upvotes))
    table.add_row("sources", escape(", ".join(paper.sources)))
    for a in apps:
        where = f"{a.feed_date or 'undated'} on {a.listing}" + (f" (#{a.rank})" if a.rank else "")
        table.add_row("listed", escape(where))
    out.print(table)
    if paper.abstract:
        out.print()
        out.print(escape(paper.abstract))


def _not_found(paper_id: str) -> PaperfeedError:
    from paperfeed.errors import NotFoundError

    return NotFoundError(f"no paper with id {paper_id!r}")


@main.command()
@data_dir_option
@json_option
def stats(data_dir: Path | None, as_json: bool) -> None:
    """Counts of papers, appearances, feed days, sources and quarantined records."""
    with _store(data_dir) as store:
        s = store.stats()
        location = store.location
    data = {
        "store": location,
        "papers": s.papers,
        "appearances": s.appearances,
        "quarantined": s.quarantined,
        "feed_days": s.feed_days,
        "first_feed_date": s.first_feed_date.isoformat() if s.first_feed_date else None,
        "last_feed_date": s.last_feed_date.isoformat() if s.last_feed_date else None,
        "sources": s.sources,
    }
    if as_json:
        _print_json(data)
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column(justify="right")
    for key in ("papers", "appearances", "quarantined", "feed_days"):
        table.add_row(key.replace("_", " "), str(data[key]))
    if s.first_feed_date:
        table.add_row("feed days from", f"{s.first_feed_date} to {s.last_feed_date}")
    for source, n in s.sources.items():
        table.add_row(f"  from {source}", str(n))
    out.print(f"[dim]{escape(location)}[/dim]")
    out.print(table)


@main.group(invoke_without_command=True)
@click.option("--listing", help="Only records from this file / listing name.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@data_dir_option
@json_option
@click.pass_context
def quarantine(
    ctx: click.Context, listing: str | None, limit: int, data_dir: Path | None, as_json: bool
) -> None:
    """List the records that could not be ingested, with where they were and why.

    Subcommands: 'export' writes them all to a file, 'clear' forgets them.
    """
    if ctx.invoked_subcommand is not None:
        return
    with _store(data_dir) as store:
        records = store.quarantined(listing=listing, limit=limit)
        total = store.stats().quarantined
    if as_json:
        _print_json({"total": total, "records": [_quarantine_json(r) for r in records]})
        return
    if not records:
        out.print("No quarantined records.")
        return
    table = Table("file", "where", "reason", show_lines=False)
    for r in records:
        table.add_row(escape(Path(r.path).name), escape(r.locator), escape(r.reason))
    out.print(table)
    if total > len(records):
        out.print(
            f"[dim]{len(records)} of {total} shown; all with: paperfeed quarantine export[/dim]"
        )


def _quarantine_json(r: Any) -> dict[str, object]:
    return {
        "id": r.id,
        "source": r.source,
        "path": r.path,
        "locator": r.locator,
        "reason": r.reason,
        "raw": r.raw,
        "created_at": r.created_at.isoformat(),
    }


@quarantine.command("export")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--listing", help="Only records from this file / listing name.")
@data_dir_option
def quarantine_export(out_path: Path | None, listing: str | None, data_dir: Path | None) -> None:
    """Write every quarantined record (with its raw text) as JSON lines."""
    with _store(data_dir) as store:
        records = store.quarantined(listing=listing)
    lines = (json.dumps(_quarantine_json(r), ensure_ascii=False) + "\n" for r in records)
    if out_path is None:
        for line in lines:
            click.echo(line, nl=False)
    else:
        with out_path.open("w", encoding="utf-8") as fh:
            fh.writelines(lines)
        err.print(f"{len(records)} records written to {escape(str(out_path))}")


@quarantine.command("clear")
@click.option("--listing", help="Only records from this file / listing name.")
@data_dir_option
def quarantine_clear(listing: str | None, data_dir: Path | None) -> None:
    """Forget quarantined records (after fixing and re-ingesting their files)."""
    with _store(data_dir) as store:
        n = store.clear_quarantine(listing)
    out.print(f"{n} quarantined records removed.")


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv", "bibtex", "ris"]),
    default="json",
    show_default=True,
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--id", "ids", multiple=True, help="Only this paper (repeatable).")
@click.option("--date", "date_", help="Only papers listed on this feed day.")
@click.option("--from", "date_from", help="First feed day of a range.")
@click.option("--to", "date_to", help="Last feed day of a range.")
@click.option("--source", help="Only papers from this source (a format name).")
@data_dir_option
def export(
    fmt: str,
    out_path: Path | None,
    ids: tuple[str, ...],
    date_: str | None,
    date_from: str | None,
    date_to: str | None,
    source: str | None,
    data_dir: Path | None,
) -> None:
    """Export all papers, or a selection, as JSON, JSON lines, CSV, BibTeX or RIS."""
    from paperfeed.export import export_papers

    with _store(data_dir) as store:
        query = PaperQuery(
            feed_date=_parse_day(date_, store),
            date_from=_parse_day(date_from, store),
            date_to=_parse_day(date_to, store),
            source=source,
            ids=ids or None,
        )
        if out_path is None:
            export_papers(store, query, fmt, sys.stdout)
        else:
            tmp = out_path.with_name(out_path.name + ".partial")
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                n = export_papers(store, query, fmt, fh)
            tmp.replace(out_path)
            err.print(f"{n} papers written to {escape(str(out_path))}")


def _semantic_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def _embed(settings: Settings, store: Store, *, quiet: bool) -> int:
    """Embed what is new for the active model, with a progress bar; 0 if not installed."""
    if not _semantic_installed():
        return 0
    from paperfeed.index import semantic

    info = semantic.status(settings, store)
    up_to_date = info.model_id is not None and not store.embedding_jobs(info.model_id, limit=1)
    if info.papers == 0 or up_to_date:
        return 0  # nothing to embed: do not pay for loading the model
    progress = _progress(quiet)
    with progress:
        task = progress.add_task("embedding", total=None)
        _, _, n = semantic.build(settings, store, progress=partial(_advance_of, progress, task))
        progress.remove_task(task)
    return n


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )


def _filters(
    date_from: str | None, date_to: str | None, categories: tuple[str, ...], source: str | None
) -> SearchFilters:
    return SearchFilters(
        date_from=_parse_day(date_from),
        date_to=_parse_day(date_to),
        categories=categories,
        source=source,
    )


def _hit_json(hit: SearchHit) -> dict[str, object]:
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 6),
        "semantic_score": None if hit.semantic_score is None else round(hit.semantic_score, 6),
        "snippet": hit.snippet,
        "paper": hit.paper.to_json(),
    }


def _print_hits(hits: list[SearchHit]) -> None:
    for hit in hits:
        out.print(f"[bold]{hit.rank:>3}. {escape(hit.paper.title)}[/bold]")
        out.print(f"     [dim]{escape(_paper_line(hit.paper))} · score {hit.score:.3f}[/dim]")
        out.print("     " + _highlight(hit.snippet))
        out.print()


@main.command()
@click.argument("query")
@click.option(
    "--mode",
    type=click.Choice([m.value for m in SearchMode]),
    help="keyword (BM25), semantic (embeddings) or hybrid (both, fused). "
    "Default: hybrid when the store is embedded, else keyword.",
)
@click.option(
    "--fusion",
    type=click.Choice([f.value for f in Fusion]),
    default=Fusion.SCORE.value,
    show_default=True,
    help="How hybrid mode fuses the two lists: normalized scores or reciprocal ranks.",
)
@click.option(
    "--keyword-weight",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_KEYWORD_WEIGHT,
    show_default=True,
    help="Weight of the keyword side in hybrid fusion (the semantic side gets the rest).",
)
@click.option("--from", "date_from", help="Published on or after this day (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Published on or before this day (YYYY-MM-DD).")
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="Only this category (repeatable; cs.* for all cs).",
)
@click.option("--source", help="Only papers from this source (a format name).")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@data_dir_option
@json_option
def search(
    query: str,
    mode: str | None,
    fusion: str,
    keyword_weight: float,
    date_from: str | None,
    date_to: str | None,
    categories: tuple[str, ...],
    source: str | None,
    limit: int,
    offset: int,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Search titles and abstracts by keywords and by meaning.

    QUERY is words, "a phrase", ti:word, au:name, cat:cs.CL, -excluded, or a whole pasted
    abstract (search by meaning finds related work).
    """
    from paperfeed.index import semantic

    settings = _settings(data_dir)
    with _store(data_dir) as store:
        engine = semantic.open_engine(settings, store, semantic=_semantic_installed())
        chosen = SearchMode(mode) if mode else None
        if chosen is None:
            chosen = SearchMode.HYBRID if engine.semantic_available else SearchMode.KEYWORD
            if chosen is SearchMode.KEYWORD and not as_json:
                err.print(
                    "[dim]Keyword search only: the store has no embeddings yet "
                    "(run 'paperfeed index').[/dim]"
                )
        options = SearchOptions(
            mode=chosen,
            limit=limit,
            offset=offset,
            filters=_filters(date_from, date_to, categories, source),
            fusion=Fusion(fusion),
            keyword_weight=keyword_weight,
        )
        results = engine.search(query, options)
    if as_json:
        _print_json(
            {
                "query": query,
                "mode": results.mode.value,
                "total": results.total,
                "offset": results.offset,
                "limit": results.limit,
                "nothing_relevant": results.nothing_relevant,
                "took_ms": round(results.took_ms, 2),
                "results": [_hit_json(h) for h in results.hits],
            }
        )
        return
    if results.nothing_relevant:
        out.print(f"Nothing relevant found for {escape(query)!r}.")
        return
    _print_hits(results.hits)
    shown = results.offset + len(results.hits)
    if results.total > shown:
        out.print(f"[dim]{shown} of {results.total} shown; more with --offset {shown}.[/dim]")


@main.command()
@click.argument("paper_id")
@click.option("--limit", type=click.IntRange(min=1, max=100), default=10, show_default=True)
@data_dir_option
@json_option
def similar(paper_id: str, limit: int, data_dir: Path | None, as_json: bool) -> None:
    """Papers most similar in meaning to one paper (by any of its ids)."""
    from paperfeed.index import semantic

    settings = _settings(data_dir)
    with _store(data_dir) as store:
        engine = semantic.open_engine(settings, store, semantic=_semantic_installed())
        hits = engine.similar(paper_id, limit=limit)
    if as_json:
        _print_json({"paper_id": paper_id, "results": [_hit_json(h) for h in hits]})
        return
    _print_hits(hits)


@main.group(invoke_without_command=True)
@click.option("--model", help="Model to index with: minilm (default), minilm-fast, or a path.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_dir_option
@json_option
@click.pass_context
def index(
    ctx: click.Context, model: str | None, quiet: bool, data_dir: Path | None, as_json: bool
) -> None:
    """Bring the search indexes up to date (keyword index and embeddings).

    Only new or changed papers are embedded. With --model, the index of that model is
    built while the current one keeps answering searches, then it becomes the active one.
    Subcommands: 'status' shows what is indexed, 'rebuild' starts a model's index afresh.
    """
    if ctx.invoked_subcommand is not None:
        return
    from paperfeed.index import semantic

    if not _semantic_installed():
        raise PaperfeedError(
            "embeddings need the semantic extra: pip install 'paperfeed[semantic]'"
        )
    settings = _settings(data_dir)
    with _store(data_dir) as store:
        store.refresh_keyword_index()
        progress = _progress(quiet or as_json)
        with progress:
            task = progress.add_task("embedding", total=None)
            encoder, _, n = semantic.build(
                settings, store, model=model, progress=partial(_advance_of, progress, task)
            )
        info = semantic.status(settings, store)
    if as_json:
        _print_json({"embedded_now": n, **_status_json(info)})
    else:
        out.print(
            f"{n} papers embedded with {escape(encoder.model_id)}; "
            f"{info.embedded} of {info.papers} papers are searchable by meaning."
        )


def _status_json(info: Any) -> dict[str, object]:
    return {
        "model": info.model,
        "model_id": info.model_id,
        "papers": info.papers,
        "embedded": info.embedded,
        "pending": info.pending,
        "keyword_pending": info.keyword_pending,
        "vectors_path": info.vectors_path,
    }


@index.command("status")
@data_dir_option
@json_option
def index_status(data_dir: Path | None, as_json: bool) -> None:
    """What is indexed: papers, embedded papers, pending work, the active model."""
    from paperfeed.index import semantic

    settings = _settings(data_dir)
    with _store(data_dir) as store:
        info = semantic.status(settings, store)
    if as_json:
        _print_json(_status_json(info))
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key, value in _status_json(info).items():
        table.add_row(key.replace("_", " "), escape(str(value)))
    out.print(table)


@index.command("rebuild")
@click.option("--model", help="Model to rebuild (default: the active one).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_dir_option
def index_rebuild(model: str | None, quiet: bool, data_dir: Path | None) -> None:
    """Forget a model's vectors and embed every paper again."""
    import shutil

    from paperfeed.index import semantic

    settings = _settings(data_dir)
    with _store(data_dir) as store:
        name = model or semantic.active_model(store)
        model_id = store.get_setting(f"semantic.model_id:{name}")
        if model_id:
            store.drop_embeddings(model_id)
            shutil.rmtree(semantic.vectors_dir(settings, model_id), ignore_errors=True)
        progress = _progress(quiet)
        with progress:
            task = progress.add_task("embedding", total=None)
            encoder, _, n = semantic.build(
                settings, store, model=name, progress=partial(_advance_of, progress, task)
            )
    out.print(f"{n} papers embedded with {escape(encoder.model_id)}.")


@main.command("eval")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice([m.value for m in SearchMode]),
    help="Mode to evaluate (repeatable; default: all three).",
)
@click.option("--model", help="Embedding model (default: minilm).")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to use.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the evaluation store (reused when run again; default: a temp dir).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JSON here.",
)
@json_option
def eval_command(
    directory: Path,
    modes: tuple[str, ...],
    model: str | None,
    split: str,
    work_dir: Path | None,
    out_path: Path | None,
    as_json: bool,
) -> None:
    """Evaluate search on a BEIR-format folder: nDCG@10, Recall@100, MRR@10 per mode."""
    import tempfile

    from paperfeed.evaluation.beir import evaluate

    chosen = [SearchMode(m) for m in modes] or list(SearchMode)
    if any(m is not SearchMode.KEYWORD for m in chosen) and not _semantic_installed():
        raise PaperfeedError(
            "semantic and hybrid modes need the semantic extra: pip install 'paperfeed[semantic]'"
        )
    with tempfile.TemporaryDirectory(prefix="paperfeed-eval-") as tmp:
        work = Settings.resolve(work_dir or tmp)
        progress = _progress(as_json)
        tasks: dict[str, TaskID] = {}

        def step(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        with progress:
            report = evaluate(
                directory, work, modes=chosen, model=model, split=split, progress=step
            )
    data = report.to_json()
    if out_path is not None:
        out_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if as_json:
        _print_json(data)
        return
    table = Table(
        "mode",
        "nDCG@10",
        "Recall@100",
        "MRR@10",
        "ms/query",
        title=f"{report.dataset} ({report.documents} documents, {len(chosen)} modes, "
        f"model {report.model or '-'})",
    )
    for sc in report.scores:
        table.add_row(
            sc.mode,
            f"{sc.ndcg_at_10:.4f}",
            f"{sc.recall_at_100:.4f}",
            f"{sc.mrr_at_10:.4f}",
            f"{sc.ms_per_query:.1f}",
        )
    out.print(table)


def _highlight(snippet: str) -> str:
    parts = []
    for i, piece in enumerate(snippet.split("<mark>")):
        if i == 0:
            parts.append(escape(html.unescape(piece)))
            continue
        marked, _, rest = piece.partition("</mark>")
        parts.append(
            f"[bold yellow]{escape(html.unescape(marked))}[/bold yellow]"
            f"{escape(html.unescape(rest))}"
        )
    return "".join(parts)


@main.command()
@click.option("--no-embed", is_flag=True, help="Skip embedding (keyword search only).")
@data_dir_option
def demo(no_embed: bool, data_dir: Path | None) -> None:
    """Ingest the bundled sample, then show the latest feed day and a search."""
    from paperfeed.index import semantic

    settings = _settings(data_dir)
    with _store(data_dir, create=True) as store:
        out.print(f"[dim]Data directory: {escape(str(settings.data_dir))}[/dim]")
        reports, errors = _run_ingest(store, [sample_path()], None, quiet=False)
        if errors or not reports:
            raise PaperfeedError("the bundled sample could not be ingested: " + "; ".join(errors))
        r = reports[0]
        s = store.stats()
        out.print(
            f"Sample ingested: {r.added} new papers, {r.appearances} new appearances; "
            f"the store holds {s.papers} papers listed {s.appearances} times "
            f"over {s.feed_days} feed days."
        )
        if not no_embed:
            n = _embed(settings, store, quiet=False)
            if n:
                out.print(f"{n} papers embedded for search by meaning.")
        day = store.feed_dates()[-1]
        today = store.query_papers(PaperQuery(feed_date=day, limit=5))
        out.rule(f"[bold]Latest feed day: {day:%A, %d %B %Y}[/bold]")
        _print_papers(today)
        query = "text-to-image personalization"
        engine = semantic.open_engine(
            settings, store, semantic=_semantic_installed() and not no_embed
        )
        mode = SearchMode.HYBRID if engine.semantic_available else SearchMode.KEYWORD
        out.rule(f"[bold]Search ({mode.value}): {query}[/bold]")
        results = engine.search(query, SearchOptions(mode=mode, limit=5))
        _print_hits(results.hits)
    out.rule()
    out.print(
        "Next: 'paperfeed papers list --date latest', 'paperfeed search \"your words\"', "
        "'paperfeed similar ID', 'paperfeed ingest your.bib', 'paperfeed --help'."
    )
