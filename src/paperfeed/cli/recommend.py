"""Recommendations, topics and the map: like, dislike, for-you, recommend, topics, map.

Every command acts for ``--user NAME`` (or ``PAPERFEED_USER``); without one, for the local
user of a single-person install (see :mod:`paperfeed.recommend.feedback`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape
from rich.table import Table

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    err,
    json_option,
    named_steps,
    open_cli_store,
    out,
    print_json,
    progress_bar,
    semantic_installed,
    write_report,
)
from paperfeed.errors import PaperfeedError
from paperfeed.feeds import Period, parse_period
from paperfeed.model import User
from paperfeed.recommend import feedback as fb
from paperfeed.recommend import topics as tp
from paperfeed.recommend.vectors import ActiveVectors, open_active_vectors
from paperfeed.settings import Settings
from paperfeed.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def user_option(func: F) -> F:
    return click.option(
        "--user",
        "username",
        envvar="PAPERFEED_USER",
        help="Act for this account [env: PAPERFEED_USER; default: the local user].",
    )(func)


def _vectors(settings: Settings, store: Store) -> ActiveVectors:
    vectors = open_active_vectors(settings, store)
    if vectors is None:
        raise PaperfeedError(
            "the store has no embeddings yet: run 'paperfeed index' (needs the semantic extra)"
        )
    return vectors


def _encoder_factory(settings: Settings, vectors: ActiveVectors) -> Callable[[], Any]:
    from paperfeed.index import semantic

    def load() -> Any:
        return semantic.load_encoder(settings, vectors.model)

    return load


def _feedback_command(
    name: str, kind: fb.FeedbackKind, help_text: str, *, tag_help: str
) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("paper_ids", nargs=-1, required=True)
    @click.option("--tag", help=tag_help)
    @user_option
    @data_dir_option
    @json_option
    def command(
        paper_ids: tuple[str, ...],
        tag: str | None,
        username: str | None,
        data_dir: Path | None,
        as_json: bool,
    ) -> None:
        with open_cli_store(data_dir) as store:
            user = fb.resolve_user(store, username)
            for paper_id in paper_ids:
                fb.give_feedback(store, user.id, paper_id, kind, tag)
            summary = fb.tag_summaries(store, user.id)
        if as_json:
            print_json(
                {
                    "user": user.username,
                    "action": kind.value,
                    "tag": tag or "",
                    "papers": list(paper_ids),
                    "tags": [
                        {"tag": s.tag, "positives": s.positives, "negatives": s.negatives}
                        for s in summary
                    ],
                }
            )
            return
        where = f" (tag {escape(tag)})" if tag else ""
        out.print(f"{kind.value}: {len(paper_ids)} paper(s){where} for {escape(user.username)}.")

    return command


like = _feedback_command(
    "like",
    fb.FeedbackKind.LIKE,
    "Like papers (by id, arXiv id, DOI or URL); with --tag, save them to that tag. "
    "Their models are retrained in the background (or by 'paperfeed for-you').",
    tag_help="Save to this tag (a tag gets a model of its own).",
)
dislike = _feedback_command(
    "dislike",
    fb.FeedbackKind.DISLIKE,
    "Dislike papers (also: 'not interested' in a pick); the models learn from it and the "
    "papers are never picked again.",
    tag_help="A negative example of this tag only.",
)
unlike = _feedback_command(
    "unlike",
    fb.FeedbackKind.CLEAR,
    "Remove your like / dislike of papers (or take them out of --tag).",
    tag_help="Take the papers out of this tag.",
)


def _period(
    store: Store, date: str | None, week: str | None, month: str | None, days: int | None
) -> Period | None:
    if days is not None:
        if date or week or month:
            raise PaperfeedError("give --days or one of --date / --week / --month, not both")
        from paperfeed.recommend.for_you import default_period

        return default_period(store, days)
    if date or week or month:
        return parse_period(store, date=date, week=week, month=month)
    return None


@click.command("for-you")
@click.option("--tag", default="", help="Rank by this tag's model (default: your general likes).")
@click.option("--date", help="Papers of this feed day (YYYY-MM-DD, latest, today).")
@click.option("--week", help="Papers of this ISO week (YYYY-Www, latest).")
@click.option("--month", help="Papers of this month (YYYY-MM, latest).")
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    help="Papers of the last N days up to the latest feed day [default: 7].",
)
@click.option("--all", "everything", is_flag=True, help="Rank every embedded paper.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@user_option
@data_dir_option
@json_option
def for_you(
    tag: str,
    date: str | None,
    week: str | None,
    month: str | None,
    days: int | None,
    everything: bool,
    limit: int,
    username: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """New papers ranked by your models, each with why: the liked papers it is closest to."""
    from paperfeed.recommend.for_you import ForYouStatus
    from paperfeed.recommend.for_you import for_you as rank
    from paperfeed.recommend.trainer import train_pending

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        user = fb.resolve_user(store, username)
        name = fb.check_tag(tag) if tag else ""
        period = _period(store, date, week, month, days)
        vectors = open_active_vectors(settings, store)
        if vectors is not None:
            # The command line has no background trainer: catch up here, before ranking.
            train_pending(
                store,
                vectors,
                user_id=user.id,
                encoder_factory=_encoder_factory(settings, vectors),
            )
        result = rank(
            store, vectors, user.id, tag=name, period=period, everything=everything, limit=limit
        )
    if as_json:
        print_json(result.to_json())
        return
    if result.status is not ForYouStatus.OK:
        hints = {
            ForYouStatus.NO_FEEDBACK: "nothing liked yet: 'paperfeed like ID' a few papers, "
            "or describe an interest with 'paperfeed topics add --interest SENTENCE'",
            ForYouStatus.TRAINING: "the model is being trained; try again in a moment",
            ForYouStatus.NO_VECTORS: "the store has no embeddings: run 'paperfeed index'",
            ForYouStatus.STALE: "the model was trained on another embedding model: run "
            "'paperfeed recommend train'",
        }
        err.print(f"No picks for {escape(user.username)}: {hints[result.status]}.")
        return
    where = result.period.label if result.period else "all papers"
    out.print(
        f"[bold]For you[/bold] ({escape(user.username)}, {where}: "
        f"{len(result.picks)} of {result.candidates} candidates)"
    )
    for i, pick in enumerate(result.picks, start=1):
        out.print(f"{i:3d}. [bold]{escape(pick.paper.title)}[/bold]  [dim]{pick.paper.id}[/dim]")
        out.print(f"     [green]{escape(pick.reason)}[/green]")
    if not result.picks:
        out.print("Nothing new to pick in this period.")


@click.group()
def recommend() -> None:
    """The recommender's models: train them, see what they learned from."""


@recommend.command("train")
@click.option("--all-users", is_flag=True, help="Train every user's queued models.")
@click.option("--rebuild", is_flag=True, help="Retrain every tag of the user, queued or not.")
@user_option
@data_dir_option
@json_option
def train(
    all_users: bool, rebuild: bool, username: str | None, data_dir: Path | None, as_json: bool
) -> None:
    """Train the models whose feedback changed (what 'paperfeed serve' does in the
    background)."""
    from paperfeed.recommend.trainer import retrain_user, train_pending

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        vectors = _vectors(settings, store)
        factory = _encoder_factory(settings, vectors)
        if all_users:
            if rebuild:
                reports = []
                for uid in store.feedback_users():
                    reports += retrain_user(store, vectors, uid, encoder_factory=factory)
            else:
                reports = train_pending(store, vectors, encoder_factory=factory)
        else:
            user = fb.resolve_user(store, username)
            if rebuild:
                reports = retrain_user(store, vectors, user.id, encoder_factory=factory)
            else:
                reports = train_pending(store, vectors, user_id=user.id, encoder_factory=factory)
    rows = [
        {
            "user_id": r.user_id,
            "tag": r.tag,
            "version": r.version,
            "kind": r.kind,
            "positives": r.positives,
            "negatives": r.negatives,
            "seconds": round(r.seconds, 3),
        }
        for r in reports
    ]
    if as_json:
        print_json({"trained": rows})
        return
    if not rows:
        out.print("Every model is up to date.")
    for r in rows:
        what = r["kind"] or "removed (nothing left to learn from)"
        out.print(
            f"user {r['user_id']} tag {escape(repr(r['tag']))}: {what}, "
            f"{r['positives']} positives, {r['negatives']} negatives, {r['seconds']} s"
        )


@recommend.command("status")
@user_option
@data_dir_option
@json_option
def status(username: str | None, data_dir: Path | None, as_json: bool) -> None:
    """Your tags, their feedback and their trained models."""
    with open_cli_store(data_dir) as store:
        user = fb.resolve_user(store, username)
        tags = fb.tag_summaries(store, user.id)
        models = {m.tag: m for m in store.models(user.id)}
        queued = {j.tag for j in store.training_jobs(1000) if j.user_id == user.id}
    rows = []
    for s in tags or [fb.TagSummary("", 0, 0)]:
        m = models.get(s.tag)
        rows.append(
            {
                "tag": s.tag,
                "positives": s.positives,
                "negatives": s.negatives,
                "model": m.kind if m else None,
                "trained_at": m.trained_at.isoformat(timespec="seconds") if m else None,
                "queued": s.tag in queued,
                "metrics": dict(m.metadata.get("metrics", {})) if m else {},
            }
        )
    if as_json:
        print_json({"user": user.username, "tags": rows})
        return
    table = Table(
        "tag",
        "likes",
        "dislikes",
        "model",
        "trained",
        "queued",
        title=f"Models of {escape(user.username)}",
    )
    for r in rows:
        table.add_row(
            escape(str(r["tag"]) or "(general)"),
            str(r["positives"]),
            str(r["negatives"]),
            str(r["model"] or "-"),
            str(r["trained_at"] or "-"),
            "yes" if r["queued"] else "",
        )
    out.print(table)


# --- topics ------------------------------------------------------------------------------


def _user_or_none(store: Store, username: str | None) -> User:
    return fb.resolve_user(store, username)


@click.group()
def topics() -> None:
    """Zero-shot topics: the default taxonomy, your own topics, the papers' labels."""


@topics.command("list")
@user_option
@data_dir_option
@json_option
def topics_list(username: str | None, data_dir: Path | None, as_json: bool) -> None:
    """Every topic (default taxonomy and yours) with its number of papers."""
    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        if not any(t.owner_id is None for t in store.topics()):
            tp.install_taxonomy(store)
        found = store.topics(owner_id=user.id)
        counts = store.topic_counts()
    if as_json:
        print_json(
            [
                {
                    "key": t.key,
                    "name": t.name,
                    "description": t.description,
                    "group": t.group,
                    "threshold": t.threshold,
                    "papers": counts.get(t.id, 0),
                }
                for t in found
            ]
        )
        return
    table = Table("key", "name", "group", "papers", title="Topics")
    for t in found:
        table.add_row(escape(t.key), escape(t.name), t.group, str(counts.get(t.id, 0)))
    out.print(table)


@topics.command("add")
@click.argument("sentence")
@click.option("--name", help="A short name for the chip (default: the sentence).")
@click.option(
    "--interest",
    is_flag=True,
    help="An interest for 'for you' (cold start) rather than a label for papers.",
)
@user_option
@data_dir_option
@json_option
def topics_add(
    sentence: str,
    name: str | None,
    interest: bool,
    username: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Define your own topic (or interest) with one sentence."""
    from paperfeed.index import semantic

    settings = cli_settings(data_dir)
    labelled = None
    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        topic = tp.add_user_topic(store, user.id, sentence, name=name, interest=interest)
        vectors = None if interest else open_active_vectors(settings, store)
        if vectors is not None:
            encoder = semantic.load_encoder(settings, vectors.model)
            labelled = tp.label_topic(store, vectors, encoder, topic)
    if as_json:
        print_json({"key": topic.key, "name": topic.name, "group": topic.group, "papers": labelled})
        return
    if interest:
        then = "'paperfeed for-you' uses it now"
    elif labelled is None:
        then = "its papers are labelled once the store is embedded ('paperfeed index')"
    else:
        then = f"{labelled} papers carry it"
    out.print(f"Added {topic.group} {escape(topic.key)}; {then}.")


@topics.command("remove")
@click.argument("key")
@user_option
@data_dir_option
def topics_remove(key: str, username: str | None, data_dir: Path | None) -> None:
    """Remove one of your topics or interests (by key, see 'paperfeed topics list')."""
    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        tp.remove_user_topic(store, user.id, key)
    out.print(f"Removed {escape(key)}.")


@topics.command("assign")
@click.option(
    "--threshold",
    type=click.FloatRange(-1.0, 1.0),
    help="Cosine similarity floor [default: calibrated for the model, 0.30 for MiniLM].",
)
@data_dir_option
@json_option
def topics_assign(threshold: float | None, data_dir: Path | None, as_json: bool) -> None:
    """Label every embedded paper with its topics (run after ingesting)."""
    from paperfeed.index import semantic

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        vectors = _vectors(settings, store)
        encoder = semantic.load_encoder(settings, vectors.model)
        report = tp.assign_topics(store, vectors, encoder, threshold=threshold)
    data = {
        "papers": report.papers,
        "topics": report.topics,
        "labels": report.labels,
        "threshold": report.threshold,
        "papers_without_topic": report.papers_without_topic,
    }
    if as_json:
        print_json(data)
        return
    out.print(
        f"{report.labels} labels on {report.papers} papers from {report.topics} topics "
        f"(floor {report.threshold:.2f}); {report.papers_without_topic} papers have none."
    )


@topics.command("show")
@click.argument("key")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@user_option
@data_dir_option
@json_option
def topics_show(
    key: str, limit: int, username: str | None, data_dir: Path | None, as_json: bool
) -> None:
    """The papers of a topic (by key or name), best match first: a topic feed."""
    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        topic = tp.find_topic(store, key, user_id=user.id)
        labels = store.topic_papers(topic.id)[:limit]
        papers = store.papers_by_pk([pt.paper_pk for pt in labels])
    rows = [(papers[pt.paper_pk], pt.score) for pt in labels if pt.paper_pk in papers]
    if as_json:
        print_json(
            {
                "topic": {"key": topic.key, "name": topic.name, "group": topic.group},
                "papers": [{"score": s, **p.to_json()} for p, s in rows],
            }
        )
        return
    out.print(f"[bold]{escape(topic.name)}[/bold] ({escape(topic.key)})")
    for p, s in rows:
        out.print(f"  {s:.2f}  {escape(p.title)}  [dim]{p.id}[/dim]")
    if not rows:
        out.print("  No papers yet ('paperfeed topics assign' labels them).")


@topics.command("paper")
@click.argument("paper_id")
@user_option
@data_dir_option
@json_option
def topics_paper(paper_id: str, username: str | None, data_dir: Path | None, as_json: bool) -> None:
    """The topic chips of one paper."""
    from paperfeed.errors import NotFoundError

    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        pk = store.paper_pk(paper_id)
        if pk is None:
            raise NotFoundError(f"no paper with id {paper_id!r}")
        chips = tp.topic_labels(store, [pk], user_id=user.id).get(pk, [])
    if as_json:
        print_json([c.to_json() for c in chips])
        return
    out.print(", ".join(f"{escape(c.name)} ({c.score:.2f})" for c in chips) or "No topics.")


# --- the map -----------------------------------------------------------------------------


@click.command("map")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("map.png"),
    show_default=True,
    help="Where to write the PNG.",
)
@click.option(
    "--method",
    type=click.Choice(["umap", "tsne", "pca"]),
    default="umap",
    show_default=True,
    help="Projection to 2-D (used when the map is computed).",
)
@click.option("--rebuild", is_flag=True, help="Recompute the layout even when it is current.")
@click.option(
    "--size",
    type=click.FloatRange(4, 40),
    default=12.0,
    show_default=True,
    help="Width and height in inches (at 120 dpi).",
)
@user_option
@data_dir_option
@json_option
def map_command(
    out_path: Path,
    method: str,
    rebuild: bool,
    size: float,
    username: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Draw the 2-D map of the corpus, coloured by topic, your liked papers ringed."""
    from paperfeed.recommend.map_image import map_points, render_png
    from paperfeed.recommend.projection import build_map, current_layout

    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        user = _user_or_none(store, username)
        vectors = _vectors(settings, store)
        layout = None if rebuild else current_layout(store, vectors)
        if layout is not None and layout.metadata.get("method") != method:
            layout = None
        computed = layout is None
        if layout is None:
            with progress_bar(as_json) as progress:
                progress.add_task(f"projecting with {method}", total=None)
                layout = build_map(store, vectors, method=method).layout
        liked = [f.paper_pk for f in store.feedback(user.id) if f.label > 0]
        points = map_points(store, layout, liked=liked, user_id=user.id)
        coloured = render_png(points, out_path, size_inches=size)
    data = {
        "out": str(out_path),
        "papers": len(points),
        "computed": computed,
        "layout": dict(layout.metadata),
        "topics": coloured,
        "liked": sum(1 for p in points if p.liked),
    }
    if as_json:
        print_json(data)
        return
    how = "computed" if computed else "cached"
    out.print(
        f"Wrote {escape(str(out_path))}: {len(points)} papers ({how} {layout.metadata['method']} "
        f"layout), {len(coloured)} topics coloured."
    )


# --- evaluation ----------------------------------------------------------------------------


def run_recommender_eval(
    directory: Path,
    *,
    model: str | None,
    split: str,
    work_dir: Path | None,
    out_path: Path | None,
    users: int,
    as_json: bool,
) -> None:
    """``paperfeed eval DIR --recommender``: simulated users, recommender vs baselines."""
    import tempfile

    from paperfeed.evaluation.recommend import evaluate_recommender

    if not semantic_installed():
        raise PaperfeedError(
            "the recommender evaluation needs the semantic extra: pip install 'paperfeed[semantic]'"
        )
    with tempfile.TemporaryDirectory(prefix="paperfeed-eval-") as tmp:
        work = Settings.resolve(work_dir or tmp)
        progress = progress_bar(as_json)
        step = named_steps(progress)

        with progress:
            report = evaluate_recommender(
                directory, work, model=model, split=split, users=users, progress=step
            )
    if write_report(report.to_json(), out_path, as_json=as_json):
        return
    for pop in report.populations:
        table = Table(
            "method",
            "precision@10",
            "nDCG@10",
            title=f"{report.dataset}: {pop.population} ({pop.users} simulated users, "
            f"{pop.mean_likes:.1f} likes each, model {report.model})",
        )
        for sc in pop.scores:
            table.add_row(sc.method, f"{sc.precision_at_10:.4f}", f"{sc.ndcg_at_10:.4f}")
        out.print(table)
