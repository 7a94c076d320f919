"""The ``paperfeed`` command: parses arguments, calls the library, formats the output.

Every command that prints data takes ``--json``. Errors are one line on stderr and a
non-zero exit code; a traceback means a bug.
"""

from __future__ import annotations

import datetime as dt
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
from paperfeed.settings import Settings
from paperfeed.sources import FORMATS
from paperfeed.store import PaperQuery, Store, open_store

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
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@data_dir_option
@json_option
def ingest(
    paths: tuple[Path, ...],
    fmt: str | None,
    sample: bool,
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
        try:
            reports, errors = _run_ingest(store, all_paths, fmt, quiet or as_json)
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


@main.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@data_dir_option
@json_option
def search(query: str, limit: int, data_dir: Path | None, as_json: bool) -> None:
    """Keyword search (BM25 over titles, abstracts, authors, categories)."""
    with _store(data_dir) as store:
        hits = store.keyword_search(query, limit=limit)
    if as_json:
        _print_json(
            {
                "query": query,
                "results": [
                    {"score": round(h.score, 4), "snippet": h.snippet, "paper": h.paper.to_json()}
                    for h in hits
                ],
            }
        )
        return
    if not hits:
        out.print(f"Nothing found for {escape(query)!r}.")
        return
    for i, hit in enumerate(hits, start=1):
        out.print(f"[bold]{i:>3}. {escape(hit.paper.title)}[/bold]")
        out.print(f"     [dim]{escape(_paper_line(hit.paper))} · score {hit.score:.2f}[/dim]")
        out.print("     " + _highlight(hit.snippet))
        out.print()


def _highlight(snippet: str) -> str:
    parts = []
    for i, piece in enumerate(snippet.split("<mark>")):
        if i == 0:
            parts.append(escape(piece))
            continue
        marked, _, rest = piece.partition("</mark>")
        parts.append(f"[bold yellow]{escape(marked)}[/bold yellow]{escape(rest)}")
    return "".join(parts)


@main.command()
@data_dir_option
def demo(data_dir: Path | None) -> None:
    """Ingest the bundled sample, then show the latest feed day and a search."""
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
        day = store.feed_dates()[-1]
        today = store.query_papers(PaperQuery(feed_date=day, limit=5))
        out.rule(f"[bold]Latest feed day: {day:%A, %d %B %Y}[/bold]")
        _print_papers(today)
        query = "text-to-image personalization"
        out.rule(f"[bold]Search: {query}[/bold]")
        for i, hit in enumerate(store.keyword_search(query, limit=5), start=1):
            out.print(f"[bold]{i:>3}. {escape(hit.paper.title)}[/bold]")
            out.print("     " + _highlight(hit.snippet))
    out.rule()
    out.print(
        "Next: 'paperfeed papers list --date latest', 'paperfeed search \"your words\"', "
        "'paperfeed ingest your.bib', 'paperfeed --help'."
    )
