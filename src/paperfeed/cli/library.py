"""Commands over the library itself: init, ingest, papers, stats, quarantine, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    embed,
    err,
    json_option,
    not_found,
    open_cli_store,
    out,
    parse_day,
    print_json,
    print_papers,
    report_json,
    run_ingest,
)
from paperfeed.sample import sample_path
from paperfeed.sources import FORMATS
from paperfeed.store import PaperQuery


@click.command()
@data_dir_option
@json_option
def init(data_dir: Path | None, as_json: bool) -> None:
    """Create the data directory and the store (safe to run again)."""
    with open_cli_store(data_dir, create=True) as store:
        info = {"store": store.location, "schema_version": store.schema_version()}
    if as_json:
        print_json(info)
    else:
        out.print(f"Store ready at {escape(str(info['store']))} (schema {info['schema_version']})")


@click.command()
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
    with open_cli_store(data_dir, create=True) as store:
        embedded = 0
        try:
            reports, errors = run_ingest(store, all_paths, fmt, quiet or as_json)
            if reports and not no_embed:
                embedded = embed(cli_settings(data_dir), store, quiet=quiet or as_json)
        except KeyboardInterrupt:
            err.print(
                "Interrupted: everything up to the last batch is stored; run the same "
                "command again to finish."
            )
            sys.exit(130)
    total = sum(reports[1:], reports[0]) if reports else None
    if as_json:
        print_json(
            {
                "files": [report_json(r) for r in reports],
                "errors": errors,
                "total": report_json(total) if total else None,
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


@click.group()
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
    with open_cli_store(data_dir) as store:
        query = PaperQuery(
            feed_date=parse_day(date_, store),
            date_from=parse_day(date_from, store),
            date_to=parse_day(date_to, store),
            source=source,
            limit=limit,
            offset=offset,
        )
        found = store.query_papers(query)
        total = store.count_papers(query)
        days = store.feed_dates() if query.feed_date and not found else []
    if as_json:
        print_json(
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
    print_papers(found)
    if total > offset + len(found):
        out.print(f"[dim]{offset + len(found)} of {total} shown; more with --offset.[/dim]")


@papers.command("show")
@click.argument("paper_id")
@data_dir_option
@json_option
def papers_show(paper_id: str, data_dir: Path | None, as_json: bool) -> None:
    """Show one paper by id, former id, arXiv id (any spelling) or DOI."""
    with open_cli_store(data_dir) as store:
        paper = store.get_paper(paper_id)
        if paper is None:
            raise not_found(paper_id)
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
        print_json(data)
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


@click.command()
@data_dir_option
@json_option
def stats(data_dir: Path | None, as_json: bool) -> None:
    """Counts of papers, appearances, feed days, sources and quarantined records."""
    with open_cli_store(data_dir) as store:
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
        print_json(data)
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


@click.group(invoke_without_command=True)
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
    with open_cli_store(data_dir) as store:
        records = store.quarantined(listing=listing, limit=limit)
        total = store.stats().quarantined
    if as_json:
        print_json({"total": total, "records": [_quarantine_json(r) for r in records]})
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
    with open_cli_store(data_dir) as store:
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
    with open_cli_store(data_dir) as store:
        n = store.clear_quarantine(listing)
    out.print(f"{n} quarantined records removed.")


@click.command()
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

    with open_cli_store(data_dir) as store:
        query = PaperQuery(
            feed_date=parse_day(date_, store),
            date_from=parse_day(date_from, store),
            date_to=parse_day(date_to, store),
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
