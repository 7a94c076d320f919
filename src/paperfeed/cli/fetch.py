"""Live sources: ``paperfeed fetch ...`` (arXiv, OAI-PMH, HF daily papers, a URL), ``sources``."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    embed,
    err,
    json_option,
    open_cli_store,
    out,
    parse_day,
    print_json,
    progress_bar,
)
from paperfeed.fetch import arxiv_api, hf_daily, oai, schedule
from paperfeed.fetch.config import OAI_METADATA, FetchConfig, config_path, load_config
from paperfeed.fetch.http import PoliteClient
from paperfeed.fetch.runs import FetchReport, ProgressCallback
from paperfeed.fetch.url import fetch_url
from paperfeed.settings import Settings
from paperfeed.sources import FORMATS
from paperfeed.store import Store

Work = Callable[
    [Store, PoliteClient, FetchConfig, Callable[[str], ProgressCallback]], list[FetchReport]
]


def _quiet_option(func: Callable[..., object]) -> Callable[..., object]:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar, no retry notes.")(
        func
    )


def _no_embed_option(func: Callable[..., object]) -> Callable[..., object]:
    return click.option(
        "--no-embed",
        is_flag=True,
        help="Do not embed the new papers now ('paperfeed index' later).",
    )(func)


class _StderrNotes(logging.Handler):
    """Retry and throttling notes from the client, one dim line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[dim]note: {escape(record.getMessage())}[/dim]")


@contextmanager
def _notes(show: bool) -> Iterator[None]:
    logger = logging.getLogger("paperfeed.fetch")
    # Quiet still needs a handler: without any, logging prints warnings on its own.
    handler = _StderrNotes(level=logging.WARNING) if show else logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _bars(progress: Progress) -> Callable[[str], ProgressCallback]:
    def factory(label: str) -> ProgressCallback:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        return update

    return factory


def _run(data_dir: Path | None, *, quiet: bool, as_json: bool, no_embed: bool, work: Work) -> None:
    parent = click.get_current_context().parent
    if data_dir is None and parent is not None and parent.command is fetch:
        data_dir = parent.params.get("data_dir")  # paperfeed fetch --data-dir DIR arxiv ...
    settings = cli_settings(data_dir)
    config = load_config(settings)
    with open_cli_store(data_dir, create=True) as store:
        try:
            progress = progress_bar(quiet or as_json)
            with _notes(not quiet), progress, PoliteClient(config) as client:
                reports = work(store, client, config, _bars(progress))
            store.refresh_keyword_index()
            changed = any(r.run.added or r.run.merged for r in reports)
            embedded = (
                embed(settings, store, quiet=quiet or as_json) if changed and not no_embed else 0
            )
        except KeyboardInterrupt:
            err.print(
                "Interrupted: every page stored so far is kept and the position is saved; "
                "run the same command again to resume."
            )
            sys.exit(130)
    _print_reports(reports, embedded, as_json)
    if not reports or not all(r.ok for r in reports):
        sys.exit(1)


def _print_reports(reports: list[FetchReport], embedded: int, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "ok": bool(reports) and all(r.ok for r in reports),
                "runs": [r.to_json() for r in reports],
                "embedded": embedded,
            }
        )
        return
    for report in reports:
        r = report.run
        label = f"{r.source} {r.query}" + (f" ({report.note})" if report.note else "")
        if report.ok:
            out.print(
                f"{escape(label)}: {r.added} added, {r.merged} merged, {r.unchanged} unchanged, "
                f"{r.quarantined} quarantined, {r.appearances} new appearances "
                f"[dim]({r.pages} pages, {r.requests} requests, {r.retries} retries)[/dim]"
            )
        else:
            if r.pages:
                out.print(f"{escape(label)}: {r.added} added, {r.merged} merged before the failure")
            click.echo(f"Error: {r.source} {r.query}: {r.error}", err=True)
    if embedded:
        out.print(f"{embedded} papers embedded for search by meaning.")
    if any(r.run.quarantined for r in reports):
        out.print("See the quarantined records with: paperfeed quarantine")


@click.group(invoke_without_command=True)
@click.option(
    "--scheduled",
    is_flag=True,
    help="Run every source of the schedule in the settings once (what cron calls).",
)
@_no_embed_option
@_quiet_option
@data_dir_option
@json_option
@click.pass_context
def fetch(
    ctx: click.Context,
    scheduled: bool,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Fetch papers from live sources: arXiv, OAI-PMH, Hugging Face daily papers, a URL.

    Requests are polite (one every 3 s per host, Retry-After honoured, retries with
    backoff) and resumable: a fetch stopped at any moment continues where it stopped
    when run again, and a re-run adds nothing new. See 'paperfeed sources' for the state.
    """
    if ctx.invoked_subcommand is not None:
        if scheduled:
            raise click.UsageError("--scheduled runs the whole schedule: give no subcommand")
        return
    if not scheduled:
        raise click.UsageError("choose a source (arxiv, oai, hf-daily, url) or --scheduled")
    if not load_config(cli_settings(data_dir)).schedule.embed:
        no_embed = True

    def work(
        store: Store,
        client: PoliteClient,
        config: FetchConfig,
        bars: Callable[[str], ProgressCallback],
    ) -> list[FetchReport]:
        del client  # run_scheduled makes its own, from the same settings
        result = schedule.run_scheduled(
            cli_settings(data_dir), store, config=config, embed=False, progress=bars
        )
        return result.reports

    _run(data_dir, quiet=quiet, as_json=as_json, no_embed=no_embed, work=work)


def _day_option(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


@fetch.command("arxiv")
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="An arXiv category, e.g. cs.CL (repeatable). Default: the schedule's categories.",
)
@click.option("--since", help="First day of the window: YYYY-MM-DD, 'today' or 'yesterday'.")
@click.option(
    "--days", type=click.IntRange(min=1), help="Window of the last N days, today included."
)
@click.option(
    "--via",
    type=click.Choice(["api", "rss"]),
    default="api",
    show_default=True,
    help="api: the query API, paged by date window; rss: today's listing feed.",
)
@click.option("--restart", is_flag=True, help="Forget an unfinished window; start a new one.")
@_no_embed_option
@_quiet_option
@data_dir_option
@json_option
def fetch_arxiv(
    categories: tuple[str, ...],
    since: str | None,
    days: int | None,
    via: str,
    restart: bool,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """New and updated papers of arXiv categories (query API or listing feed).

    Without --since / --days, a category continues from the last day it covered (or
    the last 3 days the first time); an unfinished window is resumed where it stopped.
    """
    if since is not None and days is not None:
        raise click.UsageError("give --since or --days, not both")
    today = dt.date.today()
    start = _day_option(since, "--since")
    if days is not None:
        start = today - dt.timedelta(days=days - 1)
    if via == "rss" and (start is not None or restart):
        raise click.UsageError(
            "--via rss reads today's listing: --since / --days / --restart do not apply"
        )

    def work(
        store: Store,
        client: PoliteClient,
        config: FetchConfig,
        bars: Callable[[str], ProgressCallback],
    ) -> list[FetchReport]:
        chosen = categories or config.schedule.categories
        if not chosen:
            raise click.UsageError("give --category (or set categories in the schedule)")
        reports = []
        for cat in chosen:
            if via == "rss":
                reports.append(
                    arxiv_api.fetch_listing(store, client, config, cat, progress=bars(f"rss {cat}"))
                )
            else:
                reports.append(
                    arxiv_api.fetch_category(
                        store,
                        client,
                        config,
                        cat,
                        since=start,
                        today=today,
                        restart=restart,
                        progress=bars(cat),
                    )
                )
        return reports

    _run(data_dir, quiet=quiet, as_json=as_json, no_embed=no_embed, work=work)


@fetch.command("oai")
@click.option(
    "--set", "set_spec", help="An OAI-PMH set: cs, math, physics:hep-th, ... (default: all)."
)
@click.option("--from", "date_from", help="Records changed on or after this day (YYYY-MM-DD).")
@click.option("--until", "date_until", help="Records changed on or before this day (YYYY-MM-DD).")
@click.option(
    "--metadata",
    type=click.Choice(list(OAI_METADATA)),
    default="arXiv",
    show_default=True,
    help="The metadata format to harvest.",
)
@click.option("--restart", is_flag=True, help="Forget an unfinished harvest; start a new one.")
@_no_embed_option
@_quiet_option
@data_dir_option
@json_option
def fetch_oai(
    set_spec: str | None,
    date_from: str | None,
    date_until: str | None,
    metadata: str,
    restart: bool,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Harvest arXiv over OAI-PMH (backfills of whole categories), incrementally.

    Without --from, a set continues from where its last complete harvest began; an
    unfinished harvest resumes from its last resumption token.
    """
    start = _day_option(date_from, "--from")
    until = _day_option(date_until, "--until")

    def work(
        store: Store,
        client: PoliteClient,
        config: FetchConfig,
        bars: Callable[[str], ProgressCallback],
    ) -> list[FetchReport]:
        return [
            oai.harvest(
                store,
                client,
                config,
                set_spec=set_spec,
                metadata=metadata,
                date_from=start,
                until=until,
                restart=restart,
                progress=bars(f"oai {set_spec or '*'}"),
            )
        ]

    _run(data_dir, quiet=quiet, as_json=as_json, no_embed=no_embed, work=work)


@fetch.command("hf-daily")
@click.option("--date", "date_", help="A day: YYYY-MM-DD, 'today' (default) or 'yesterday'.")
@click.option("--week", help="An ISO week: YYYY-Www (e.g. 2024-W11), or a day in it.")
@click.option("--month", help="A month: YYYY-MM.")
@_no_embed_option
@_quiet_option
@data_dir_option
@json_option
def fetch_hf_daily(
    date_: str | None,
    week: str | None,
    month: str | None,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """The Hugging Face daily papers of a day, a week or a month, with their upvotes."""
    when = hf_daily.period(date=_day_option(date_, "--date"), week=week, month=month)

    def work(
        store: Store,
        client: PoliteClient,
        config: FetchConfig,
        bars: Callable[[str], ProgressCallback],
    ) -> list[FetchReport]:
        return [hf_daily.fetch_period(store, client, config, when, progress=bars(str(when)))]

    _run(data_dir, quiet=quiet, as_json=as_json, no_embed=no_embed, work=work)


@fetch.command("url")
@click.argument("url")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    help="Force the format instead of detecting it.",
)
@_no_embed_option
@_quiet_option
@data_dir_option
@json_option
def fetch_url_command(
    url: str,
    fmt: str | None,
    no_embed: bool,
    quiet: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """One URL: an arXiv abs / pdf link, a BibTeX file, a listing page, any paper list."""

    def work(
        store: Store,
        client: PoliteClient,
        config: FetchConfig,
        bars: Callable[[str], ProgressCallback],
    ) -> list[FetchReport]:
        del bars
        return [fetch_url(store, client, config, url, fmt=fmt)]

    _run(data_dir, quiet=quiet, as_json=as_json, no_embed=no_embed, work=work)


def _cursor(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _schedule_json(settings: Settings, config: FetchConfig, store: Store) -> dict[str, object]:
    s = config.schedule
    last = schedule.last_scheduled_run(store)
    next_run = schedule.next_run_time(s, last, dt.datetime.now().astimezone()) if s.active else None
    return {
        "settings_file": str(config_path(settings)),
        "settings_file_exists": config_path(settings).exists(),
        "schedule": {
            "enabled": s.enabled,
            "time": s.time.strftime("%H:%M"),
            "sources": list(s.sources),
            "categories": list(s.categories),
            "oai_sets": list(s.oai_sets),
            "oai_metadata": s.oai_metadata,
            "embed": s.embed,
        },
        "last_scheduled_run": last.isoformat() if last else None,
        "next_run": next_run.isoformat(timespec="minutes") if next_run else None,
        "endpoints": {
            "arxiv_api_url": config.arxiv_api_url,
            "arxiv_rss_url": config.arxiv_rss_url,
            "oai_url": config.oai_url,
            "hf_daily_url": config.hf_daily_url,
        },
        "contact": config.contact or None,
        "min_interval": config.min_interval,
    }


@click.command()
@click.option(
    "--runs",
    "limit",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many recent fetch runs to show.",
)
@data_dir_option
@json_option
def sources(limit: int, data_dir: Path | None, as_json: bool) -> None:
    """The live sources: the schedule, how far each source got, the latest runs."""
    settings = cli_settings(data_dir)
    config = load_config(settings)
    with open_cli_store(data_dir, create=True) as store:
        info = _schedule_json(settings, config, store)
        states = store.fetch_states()
        runs = store.fetch_runs(limit=limit) if limit else []
    if as_json:
        info["state"] = [
            {
                "source": st.source,
                "key": st.key,
                "cursor": _cursor(st.cursor),
                "updated_at": st.updated_at.isoformat(),
            }
            for st in states
        ]
        info["runs"] = [FetchReport(r).to_json() for r in runs]
        print_json(info)
        return
    sched = info["schedule"]
    assert isinstance(sched, dict)
    if config.schedule.active:
        out.print(
            f"[bold]Schedule[/bold]: daily at {sched['time']}: {', '.join(sched['sources'])}"
            + (f"; categories {', '.join(sched['categories'])}" if sched["categories"] else "")
            + (f"; OAI sets {', '.join(sched['oai_sets'])}" if sched["oai_sets"] else "")
        )
        out.print(f"  last run: {info['last_scheduled_run'] or 'never'}; next: {info['next_run']}")
    else:
        out.print(
            "[bold]Schedule[/bold]: none (set \\[fetch.schedule] in "
            f"{escape(str(info['settings_file']))})"
        )
    if not config.contact:
        out.print(
            '[dim]No contact address set: add contact = "you@example.org" under \\[fetch].[/dim]'
        )
    if states:
        table = Table("source", "query", "position", "updated", box=None)
        for st in states:
            table.add_row(
                st.source, escape(st.key), escape(_position(st.cursor)), _when(st.updated_at)
            )
        out.print(table)
    if runs:
        table = Table(
            "run", "source", "query", "status", "added", "merged", "quar.", "started", box=None
        )
        for r in runs:
            status = r.status if not r.error else f"{r.status}: {r.error[:60]}"
            table.add_row(
                str(r.id),
                r.source,
                escape(r.query[:50]),
                escape(status),
                str(r.added),
                str(r.merged),
                str(r.quarantined),
                _when(r.started_at),
            )
        out.print(table)
    elif not states:
        out.print("No fetch has run yet: see 'paperfeed fetch --help'.")


def _when(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _position(text: str) -> str:
    """A one-line summary of a source's cursor."""
    data = _cursor(text)
    if not isinstance(data, dict):
        return str(data)[:60]
    if data.get("window_from"):
        total = data.get("total")
        return f"window {data['window_from']}..{data['window_to']} at {data.get('start', 0)}" + (
            f" of {total}" if total is not None else ""
        )
    if data.get("token"):
        total = data.get("total")
        return (
            f"harvest from {data.get('harvest_from') or 'the start'}: {data.get('records', 0)}"
            + (f" of {total}" if total is not None else "")
            + " records"
        )
    if data.get("done_through"):
        return f"done through {data['done_through']}"
    if data.get("next_from"):
        return f"next harvest from {data['next_from']}"
    if "done" in data:
        return "complete" if data["done"] else f"at page {data.get('page', 0)}"
    if data.get("last_day"):
        return f"last day {data['last_day']}"
    if data.get("day"):
        return f"last run {data['day']} ({data.get('status', '?')})"
    if data.get("last"):
        return f"last {data['last']}"
    return ", ".join(f"{k}={v}" for k, v in data.items())[:60]
