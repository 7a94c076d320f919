"""``paperfeed demo``: the bundled sample, ingested, embedded, shown, then served."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    embed,
    open_cli_store,
    out,
    print_hits,
    print_papers,
    run_ingest,
    semantic_installed,
)
from paperfeed.cli.serve import DEFAULT_HOST, DEFAULT_PORT, check_port, run_server
from paperfeed.errors import PaperfeedError
from paperfeed.sample import sample_path
from paperfeed.search import (
    SearchMode,
    SearchOptions,
)
from paperfeed.store import PaperQuery


@click.command()
@click.option("--no-embed", is_flag=True, help="Skip embedding (keyword search only).")
@click.option(
    "--no-serve", is_flag=True, help="Stop after the summary instead of serving the site."
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to serve on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to serve on.",
)
@data_dir_option
def demo(no_embed: bool, no_serve: bool, host: str, port: int, data_dir: Path | None) -> None:
    """Ingest the bundled sample, show the latest feed day and a search, then serve the
    site on localhost until Ctrl-C (--no-serve stops before)."""
    from paperfeed.index import semantic

    settings = cli_settings(data_dir)
    if not no_serve:
        check_port(host, port)  # fail now, not after the ingest
    with open_cli_store(data_dir, create=True) as store:
        out.print(f"[dim]Data directory: {escape(str(settings.data_dir))}[/dim]")
        reports, errors = run_ingest(store, [sample_path()], None, quiet=False)
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
            n = embed(settings, store, quiet=False)
            if n:
                out.print(f"{n} papers embedded for search by meaning.")
        day = store.feed_dates()[-1]
        today = store.query_papers(PaperQuery(feed_date=day, limit=5))
        out.rule(f"[bold]Latest feed day: {day:%A, %d %B %Y}[/bold]")
        print_papers(today)
        query = "text-to-image personalization"
        engine = semantic.open_engine(
            settings, store, semantic=semantic_installed() and not no_embed
        )
        mode = SearchMode.HYBRID if engine.semantic_available else SearchMode.KEYWORD
        out.rule(f"[bold]Search ({mode.value}): {query}[/bold]")
        results = engine.search(query, SearchOptions(mode=mode, limit=5))
        print_hits(results.hits)
        out.rule()
        out.print(
            "Next: 'paperfeed papers list --date latest', 'paperfeed search \"your words\"', "
            "'paperfeed similar ID', 'paperfeed ingest your.bib', 'paperfeed serve', "
            "'paperfeed --help'."
        )
        if no_serve:
            return
        out.rule("[bold]The site[/bold]")
        run_server(settings, store, host=host, port=port, access_log=False, engine=engine)
