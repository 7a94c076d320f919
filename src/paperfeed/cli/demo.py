"""``paperfeed demo``: the bundled sample, ingested, embedded, labelled with topics, mapped,
shown, then served."""

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
    progress_bar,
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
from paperfeed.settings import Settings
from paperfeed.store import PaperQuery, Store


def topics_and_map(settings: Settings, store: Store) -> None:
    """Topic labels for every embedded paper (``embed`` labels what it embeds; a store
    embedded earlier may have none yet) and the map of the corpus, computed once."""
    from paperfeed.index import semantic
    from paperfeed.recommend.projection import DEFAULT_METHOD, build_map, current_layout
    from paperfeed.recommend.topics import label_new_papers, unlabelled_keys
    from paperfeed.recommend.vectors import open_active_vectors

    vectors = open_active_vectors(settings, store)
    if vectors is None:
        return
    if len(unlabelled_keys(store, vectors)):
        label_new_papers(store, vectors, semantic.load_encoder(settings, vectors.model))
    names = {t.id: t.name for t in store.topics()}
    counts = sorted(store.topic_counts().items(), key=lambda kv: (-kv[1], kv[0]))
    labelled = len(store.paper_topics(vectors.index.keys().tolist()))
    common = ", ".join(f"{escape(names[i])} ({n})" for i, n in counts[:4] if i in names)
    out.print(f"Topics: {labelled} of {len(vectors.index)} papers labelled; most common: {common}.")
    if current_layout(store, vectors) is not None:
        return
    with progress_bar(False) as progress:
        progress.add_task(f"computing the map ({DEFAULT_METHOD})", total=None)
        try:
            built = build_map(store, vectors, method=DEFAULT_METHOD)
        except PaperfeedError as exc:  # the map's packages are an optional extra
            out.print(f"[dim]No map: {escape(str(exc))}[/dim]")
            return
    out.print(
        f"Map of the {len(built.layout.keys)} papers computed in {built.seconds:.0f} s "
        "(the site's /map; 'paperfeed map' draws it as a PNG)."
    )


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
            topics_and_map(settings, store)
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
