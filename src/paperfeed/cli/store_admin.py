"""``paperfeed migrate-store``: move a store from SQLite to PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    json_option,
    named_steps,
    out,
    print_json,
    progress_bar,
)
from paperfeed.errors import PaperfeedError
from paperfeed.store.migrate_store import DEFAULT_BATCH_SIZE, CopyMismatch, CopyReport


def _print_report(report: CopyReport) -> None:
    table = Table("table", "copied now", "SQLite rows", "PostgreSQL rows", "checksum", "ok")
    for check in report.tables:
        same = check.source_checksum == check.target_checksum
        table.add_row(
            check.name,
            str(check.copied),
            str(check.source_rows),
            str(check.target_rows),
            check.target_checksum[:12] if same else "differs",
            "yes" if check.ok else "[bold red]NO[/bold red]",
        )
    out.print(table)
    verb = "Resumed and finished" if report.resumed else "Copied"
    out.print(
        f"{verb}: {report.source} -> {report.target}; "
        f"{report.keyword_indexed} papers keyword-indexed."
    )


@click.command("migrate-store")
@click.option(
    "--to",
    "to_url",
    required=True,
    metavar="postgresql://...",
    help="The PostgreSQL database to copy into: empty, or a partial copy of the same store.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows (or vectors) per transaction: a killed copy redoes at most one batch.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@json_option
@data_dir_option
def migrate_store(
    to_url: str, batch_size: int, quiet: bool, as_json: bool, data_dir: Path | None
) -> None:
    """Copy the SQLite store of the data directory into PostgreSQL: papers and their
    listings, vectors (every model and view), accounts, votes, collections,
    subscriptions, digest runs, the recommender's state, topics and fetch history.

    Resumable: run it again after an interruption and it continues where it stopped.
    Verified at the end by row counts and checksums per table; a mismatch exits with
    code 3 naming the table. Then set PAPERFEED_DATABASE_URL to the same URL. Stop
    other writers to the SQLite store while it copies.
    """
    from paperfeed.store.migrate_store import migrate_store as run_copy
    from paperfeed.store.postgres import open_postgres_store

    if not to_url.startswith(("postgresql://", "postgres://")):
        raise PaperfeedError(f"--to must be a postgresql:// URL, got {to_url.split(':')[0]!r}")
    settings = cli_settings(data_dir)
    target = open_postgres_store(to_url)
    try:
        progress = progress_bar(quiet or as_json)
        with progress:
            report = run_copy(
                settings.db_path,
                settings.data_dir / "vectors",
                target,
                batch_size=batch_size,
                progress=named_steps(progress),
            )
    finally:
        target.close()
    if as_json:
        print_json(report.to_json())
    else:
        _print_report(report)
    if not report.ok:
        raise CopyMismatch(
            "the copy differs from the SQLite store in: " + ", ".join(report.mismatched)
        )
