"""What every command shares: consoles, common options, the store, progress bars, output."""

from __future__ import annotations

import datetime as dt
import html
import importlib.util
import json
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

from paperfeed.errors import PaperfeedError
from paperfeed.ingest import ingest_file
from paperfeed.model import IngestReport, Paper
from paperfeed.search import (
    SearchHit,
)
from paperfeed.settings import Settings
from paperfeed.sources import FORMATS
from paperfeed.store import SearchFilters, Store, open_store

F = TypeVar("F", bound=Callable[..., Any])


out = Console(highlight=False, soft_wrap=True)


err = Console(stderr=True, highlight=False, soft_wrap=True)


class ErrorReportingGroup(click.Group):
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
        # No envvar here: Settings.resolve reads PAPERFEED_HOME last, so that
        # `paperfeed --data-dir X cmd` beats the environment, as the help says.
        help="Data directory of the store [env: PAPERFEED_HOME; "
        "default: ~/.local/share/paperfeed].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def cli_settings(data_dir: Path | None) -> Settings:
    ctx = click.get_current_context()
    root = ctx.find_root().params.get("data_dir")
    return Settings.resolve(data_dir or root)


@contextmanager
def open_cli_store(data_dir: Path | None, *, create: bool = False) -> Iterator[Store]:
    store = open_store(cli_settings(data_dir), create=create)
    try:
        yield store
    finally:
        store.close()


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def parse_day(value: str | None, store: Store | None = None) -> dt.date | None:
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


def format_help() -> str:
    return "; ".join(f"{name}: {info.description}" for name, info in FORMATS.items())


def report_json(report: IngestReport) -> dict[str, object]:
    return {
        "path": report.path,
        "format": report.format,
        "added": report.added,
        "merged": report.merged,
        "unchanged": report.unchanged,
        "quarantined": report.quarantined,
        "appearances": report.appearances,
    }


def advance(progress: Progress, task: TaskID, done: int) -> None:
    progress.update(task, completed=done)


def advance_of(progress: Progress, task: TaskID, done: int, total: int) -> None:
    progress.update(task, completed=done, total=total)


def run_ingest(
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
                        progress=partial(advance, progress, task),
                        refresh_index=False,
                    )
                )
            except PaperfeedError as exc:
                errors.append(str(exc))
                err.print(f"[red]Error:[/red] {escape(str(exc))}")
            finally:
                progress.remove_task(task)
        # One pass over everything the files added, after all of them are stored.
        catch_up_keyword_index(store, progress)
    return reports, errors


def catch_up_keyword_index(store: Store, progress: Progress) -> int:
    """Index the papers queued for the keyword index, with a progress bar; how many."""
    pending = store.keyword_index_pending()
    if not pending:
        return 0
    task = progress.add_task("keyword index", total=pending)
    try:
        return store.refresh_keyword_index(progress=partial(advance_of, progress, task))
    finally:
        progress.remove_task(task)


def paper_line(paper: Paper) -> str:
    authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
    date = paper.published.isoformat() if paper.published else ""
    return " · ".join(x for x in (authors, date, paper.id) if x)


def print_papers(papers: list[Paper], *, abstracts: bool = True) -> None:
    for i, paper in enumerate(papers, start=1):
        out.print(f"[bold]{i:>3}. {escape(paper.title)}[/bold]")
        out.print(f"     [dim]{escape(paper_line(paper))}[/dim]")
        if abstracts and paper.abstract:
            text = paper.abstract if len(paper.abstract) <= 300 else paper.abstract[:297] + "…"
            out.print(f"     {escape(text)}")
        out.print()


def not_found(paper_id: str) -> PaperfeedError:
    from paperfeed.errors import NotFoundError

    return NotFoundError(f"no paper with id {paper_id!r}")


def semantic_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def embed(settings: Settings, store: Store, *, quiet: bool) -> int:
    """Embed what is new for the active model, with a progress bar; 0 if not installed."""
    if not semantic_installed():
        return 0
    from paperfeed.index import semantic
    from paperfeed.recommend.topics import label_after_embedding

    info = semantic.status(settings, store)
    up_to_date = info.model_id is not None and not store.embedding_jobs(info.model_id, limit=1)
    if info.papers == 0 or up_to_date:
        return 0  # nothing to embed: do not pay for loading the model
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("embedding", total=None)
        encoder, _, n = semantic.build(
            settings, store, progress=partial(advance_of, progress, task)
        )
        progress.remove_task(task)
    label_after_embedding(settings, store, encoder)  # topic chips for the new papers
    return n


def progress_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )


def filters(
    date_from: str | None, date_to: str | None, categories: tuple[str, ...], source: str | None
) -> SearchFilters:
    return SearchFilters(
        date_from=parse_day(date_from),
        date_to=parse_day(date_to),
        categories=categories,
        source=source,
    )


def hit_json(hit: SearchHit) -> dict[str, object]:
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 6),
        "semantic_score": None if hit.semantic_score is None else round(hit.semantic_score, 6),
        "snippet": hit.snippet,
        "paper": hit.paper.to_json(),
    }


def print_hits(hits: list[SearchHit]) -> None:
    for hit in hits:
        out.print(f"[bold]{hit.rank:>3}. {escape(hit.paper.title)}[/bold]")
        out.print(f"     [dim]{escape(paper_line(hit.paper))} · score {hit.score:.3f}[/dim]")
        out.print("     " + highlight(hit.snippet))
        out.print()


def highlight(snippet: str) -> str:
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


def named_steps(progress: Progress) -> Callable[[str, int, int], None]:
    """A ``progress(name, done, total)`` callback: one bar per named step, made on first use."""
    tasks: dict[str, TaskID] = {}

    def step(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(name, total=total)
        progress.update(tasks[name], completed=done, total=total)

    return step


def write_report(data: object, out_path: Path | None, *, as_json: bool) -> bool:
    """Write a report's JSON to ``--out`` and print it with ``--json``; True if printed."""
    if out_path is not None:
        out_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print_json(data)
    return as_json
