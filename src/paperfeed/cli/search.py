"""Commands over the indexes: search, similar, index, eval."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from paperfeed.cli.common import (
    advance_of,
    catch_up_keyword_index,
    cli_settings,
    data_dir_option,
    err,
    filters,
    hit_json,
    json_option,
    named_steps,
    open_cli_store,
    out,
    print_hits,
    print_json,
    progress_bar,
    semantic_installed,
    write_report,
)
from paperfeed.errors import PaperfeedError
from paperfeed.search import (
    DEFAULT_KEYWORD_WEIGHT,
    Fusion,
    SearchMode,
    SearchOptions,
)
from paperfeed.settings import Settings


@click.command()
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

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        engine = semantic.open_engine(settings, store, semantic=semantic_installed())
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
            filters=filters(date_from, date_to, categories, source),
            fusion=Fusion(fusion),
            keyword_weight=keyword_weight,
        )
        results = engine.search(query, options)
    if as_json:
        print_json(
            {
                "query": query,
                "mode": results.mode.value,
                "total": results.total,
                "offset": results.offset,
                "limit": results.limit,
                "nothing_relevant": results.nothing_relevant,
                "took_ms": round(results.took_ms, 2),
                "results": [hit_json(h) for h in results.hits],
            }
        )
        return
    if results.nothing_relevant:
        out.print(f"Nothing relevant found for {escape(query)!r}.")
        return
    print_hits(results.hits)
    shown = results.offset + len(results.hits)
    if results.total > shown:
        out.print(f"[dim]{shown} of {results.total} shown; more with --offset {shown}.[/dim]")


@click.command()
@click.argument("paper_id")
@click.option("--limit", type=click.IntRange(min=1, max=100), default=10, show_default=True)
@data_dir_option
@json_option
def similar(paper_id: str, limit: int, data_dir: Path | None, as_json: bool) -> None:
    """Papers most similar in meaning to one paper (by any of its ids)."""
    from paperfeed.index import semantic

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        engine = semantic.open_engine(settings, store, semantic=semantic_installed())
        hits = engine.similar(paper_id, limit=limit)
    if as_json:
        print_json({"paper_id": paper_id, "results": [hit_json(h) for h in hits]})
        return
    print_hits(hits)


@click.group(invoke_without_command=True)
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
    from paperfeed.recommend.topics import label_after_embedding

    if not semantic_installed():
        raise PaperfeedError(
            "embeddings need the semantic extra: pip install 'paperfeed[semantic]'"
        )
    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        progress = progress_bar(quiet or as_json)
        with progress:
            catch_up_keyword_index(store, progress)
            task = progress.add_task("embedding", total=None)
            encoder, _, n = semantic.build(
                settings, store, model=model, progress=partial(advance_of, progress, task)
            )
        label_after_embedding(settings, store, encoder)  # topic chips for the new papers
        info = semantic.status(settings, store)
    if as_json:
        print_json({"embedded_now": n, **_status_json(info)})
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

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        info = semantic.status(settings, store)
    if as_json:
        print_json(_status_json(info))
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

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        name = model or semantic.active_model(store)
        model_id = store.get_setting(f"semantic.model_id:{name}")
        if model_id:
            store.drop_embeddings(model_id)
            shutil.rmtree(semantic.vectors_dir(settings, model_id), ignore_errors=True)
        progress = progress_bar(quiet)
        with progress:
            task = progress.add_task("embedding", total=None)
            encoder, _, n = semantic.build(
                settings, store, model=name, progress=partial(advance_of, progress, task)
            )
    out.print(f"{n} papers embedded with {escape(encoder.model_id)}.")


@click.command("eval")
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
@click.option(
    "--recommender",
    is_flag=True,
    help="Evaluate the recommender instead: simulated users, precision@10 / nDCG@10 of "
    "held-out likes against recency, popularity and centroid baselines.",
)
@click.option(
    "--users",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="With --recommender: simulated users with several interests.",
)
@json_option
def eval_command(
    directory: Path,
    modes: tuple[str, ...],
    model: str | None,
    split: str,
    work_dir: Path | None,
    out_path: Path | None,
    recommender: bool,
    users: int,
    as_json: bool,
) -> None:
    """Evaluate search on a BEIR-format folder: nDCG@10, Recall@100, MRR@10 per mode
    (or, with --recommender, the recommender against its baselines)."""
    import tempfile

    from paperfeed.evaluation.beir import evaluate

    if recommender:
        from paperfeed.cli.recommend import run_recommender_eval

        run_recommender_eval(
            directory,
            model=model,
            split=split,
            work_dir=work_dir,
            out_path=out_path,
            users=users,
            as_json=as_json,
        )
        return

    chosen = [SearchMode(m) for m in modes] or list(SearchMode)
    if any(m is not SearchMode.KEYWORD for m in chosen) and not semantic_installed():
        raise PaperfeedError(
            "semantic and hybrid modes need the semantic extra: pip install 'paperfeed[semantic]'"
        )
    with tempfile.TemporaryDirectory(prefix="paperfeed-eval-") as tmp:
        work = Settings.resolve(work_dir or tmp)
        progress = progress_bar(as_json)
        step = named_steps(progress)

        with progress:
            report = evaluate(
                directory, work, modes=chosen, model=model, split=split, progress=step
            )
    if write_report(report.to_json(), out_path, as_json=as_json):
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
