"""Subscriptions and the e-mail digest: subscribe, unsubscribe, subscriptions, digest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from paperfeed.accounts.signing import Signer
from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    err,
    json_option,
    open_cli_store,
    out,
    parse_day,
    print_json,
    semantic_installed,
)
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.compose import Recommender, Searcher
from paperfeed.digest.links import confirm_url
from paperfeed.digest.render import render_digest_parts
from paperfeed.digest.runner import DigestOutcome, DigestReport
from paperfeed.digest.setup import build_mailer, build_sender, mail_context
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import Subscription, SubscriptionContents
from paperfeed.settings import Settings
from paperfeed.store import Store


def _subscription_json(sub: Subscription) -> dict[str, object]:
    return {
        "id": sub.id,
        "email": sub.email,
        "user_id": sub.user_id,
        "frequency": sub.frequency,
        "contents": sub.contents.to_json(),
        "max_items": sub.max_items,
        "confirmed": sub.confirmed,
        "active": sub.active,
        "created_at": sub.created_at.isoformat(),
    }


def _searcher(settings: Settings, store: Store) -> Searcher:
    from paperfeed.index import semantic

    return semantic.open_engine(settings, store, semantic=semantic_installed())


def _recommender(settings: Settings, store: Store) -> Recommender | None:
    """The "for you" section, as ``serve`` composes it: the subscribers' picks.

    The command line has no background trainer, so the queued models are trained first
    (the model is loaded only when an interest sentence needs embedding).
    """
    from paperfeed.index import semantic
    from paperfeed.recommend.for_you import digest_recommender
    from paperfeed.recommend.trainer import train_pending
    from paperfeed.recommend.vectors import open_active_vectors

    vectors = open_active_vectors(settings, store)
    if vectors is None:
        return None
    train_pending(
        store, vectors, encoder_factory=lambda: semantic.load_encoder(settings, vectors.model)
    )
    return digest_recommender(store, lambda: vectors)


@click.command()
@click.argument("email")
@click.option(
    "--frequency",
    type=click.Choice(subs.FREQUENCIES),
    default="daily",
    show_default=True,
    help="How often the digest comes.",
)
@click.option("--search", "searches", multiple=True, help="A saved search (repeatable).")
@click.option("--author", "authors", multiple=True, help="A followed author (repeatable).")
@click.option(
    "--category", "categories", multiple=True, help="A category, e.g. cs.CL or cs.* (repeatable)."
)
@click.option("--no-trending", is_flag=True, help="Leave out the period's trending papers.")
@click.option(
    "--max-items",
    type=click.IntRange(1, subs.MAX_ITEMS_LIMIT),
    default=subs.DEFAULT_MAX_ITEMS,
    show_default=True,
    help="Most papers in one digest.",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="Skip the double opt-in (only for addresses you know want it).",
)
@data_dir_option
@json_option
def subscribe(
    email: str,
    frequency: str,
    searches: tuple[str, ...],
    authors: tuple[str, ...],
    categories: tuple[str, ...],
    no_trending: bool,
    max_items: int,
    confirmed: bool,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Subscribe an address to the digest; it gets a confirmation link first."""
    settings = cli_settings(data_dir)
    contents = SubscriptionContents(
        trending=not no_trending, searches=searches, authors=authors, categories=categories
    )
    with open_cli_store(data_dir, create=True) as store:
        sub = subs.subscribe(
            store, email, frequency=frequency, contents=contents, max_items=max_items
        )
        signer = Signer.for_store(store)
        link = None
        mailed = False
        if confirmed:
            sub = store.update_subscription(sub.id, confirmed_at=dt.datetime.now(dt.UTC))
        elif not sub.confirmed:
            ctx = mail_context(settings)
            link = confirm_url(ctx.base_url, subs.confirm_token(signer, sub))
            mailer = build_mailer()
            if mailer is not None:
                with mailer:
                    mailer.send(subs.confirmation_for(signer, ctx, sub))
                mailed = True
    if as_json:
        print_json({**_subscription_json(sub), "confirm_url": link, "confirmation_mailed": mailed})
        return
    out.print(f"{escape(sub.email)}: {sub.frequency} digest, up to {sub.max_items} papers.")
    if sub.confirmed:
        out.print("Confirmed: the next digest run includes it.")
    elif mailed:
        out.print("A confirmation link was mailed; nothing is sent until it is followed.")
    else:
        out.print("No SMTP server is configured, so confirm with this link:")
        click.echo(link)


@click.command()
@click.argument("email")
@data_dir_option
def unsubscribe(email: str, data_dir: Path | None) -> None:
    """End the digest subscription of an address."""
    with open_cli_store(data_dir) as store:
        sub = store.subscription_by_email(email.strip())
        if sub is None:
            raise NotFoundError(f"{email} is not subscribed")
        store.update_subscription(sub.id, unsubscribed_at=dt.datetime.now(dt.UTC))
    out.print(f"{escape(sub.email)} is unsubscribed.")


@click.command()
@data_dir_option
@json_option
def subscriptions(data_dir: Path | None, as_json: bool) -> None:
    """List the digest subscriptions."""
    with open_cli_store(data_dir) as store:
        found = store.list_subscriptions()
    if as_json:
        print_json([_subscription_json(s) for s in found])
        return
    if not found:
        out.print("No subscriptions yet: 'paperfeed subscribe EMAIL'.")
        return
    table = Table("id", "email", "frequency", "state", "contents")
    for s in found:
        state = "active" if s.active else ("unsubscribed" if s.unsubscribed_at else "unconfirmed")
        parts = (["trending"] if s.contents.trending else []) + [
            *(f"search:{q}" for q in s.contents.searches),
            *(f"author:{a}" for a in s.contents.authors),
            *(f"cat:{c}" for c in s.contents.categories),
        ]
        table.add_row(str(s.id), escape(s.email), s.frequency, state, escape(", ".join(parts)))
    out.print(table)


@click.group()
def digest() -> None:
    """Send or preview the e-mail digest."""


def _outcome_json(o: DigestOutcome) -> dict[str, object]:
    return {
        "subscription_id": o.subscription_id,
        "email": o.email,
        "period": o.period,
        "status": o.status,
        "items": o.items,
        "error": o.error,
    }


def _summary(report: DigestReport) -> str:
    counts: dict[str, int] = {}
    for o in report.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    if not counts:
        return "no active subscription matched"
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


@digest.command("send")
@click.option("--dry-run", is_flag=True, help="Compose the digests but send nothing.")
@click.option("--user", "username", help="Only this account's subscriptions.")
@click.option("--email", help="Only the subscription of this address.")
@click.option("--date", "date_", help="A day of the period to send [default: latest feed day].")
@click.option(
    "--frequency", type=click.Choice(subs.FREQUENCIES), help="Only daily or only weekly digests."
)
@data_dir_option
@json_option
def digest_send(
    dry_run: bool,
    username: str | None,
    email: str | None,
    date_: str | None,
    frequency: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Send the digests of a period, each subscription once (safe to re-run)."""
    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        day = parse_day(date_, store) or store.latest_feed_day() or dt.date.today()
        user_id = None
        if username:
            found = store.user_credentials(username)
            if found is None:
                raise NotFoundError(f"no user {username!r}")
            user_id = found[0].id
        sender = build_sender(settings, store)
        due = sender.subscriptions(frequency=frequency, user_id=user_id, email=email)
        if any(s.contents.for_you and s.user_id is not None for s in due):
            sender.recommender = _recommender(settings, store)
        if any(s.contents.searches for s in due):
            sender.searcher = _searcher(settings, store)
        mailer = None if dry_run else build_mailer()

        def show(o: DigestOutcome) -> None:
            if not as_json:
                note = f" — {o.error}" if o.error else ""
                err.print(f"{escape(o.email)} {o.period}: {o.status} ({o.items} papers){note}")

        try:
            report = sender.run(
                mailer,
                day=day,
                frequency=frequency,
                user_id=user_id,
                email=email,
                dry_run=dry_run,
                progress=show,
            )
        finally:
            if mailer is not None:
                mailer.close()
    if as_json:
        print_json(
            {
                "day": day.isoformat(),
                "dry_run": dry_run,
                "outcomes": [_outcome_json(o) for o in report.outcomes],
            }
        )
    else:
        out.print(("Dry run: " if dry_run else "") + _summary(report) + ".")
    if report.failed:
        raise PaperfeedError(f"{report.failed} digest(s) could not be sent (see above)")


@digest.command("preview")
@click.argument("email")
@click.option("--date", "date_", help="A day of the period [default: latest feed day].")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html"]),
    default="text",
    show_default=True,
    help="Which part of the mail to show.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of the terminal.",
)
@data_dir_option
def digest_preview(
    email: str, date_: str | None, fmt: str, out_path: Path | None, data_dir: Path | None
) -> None:
    """Show the digest an address would get, without sending or recording anything."""
    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        sub = store.subscription_by_email(email.strip())
        if sub is None:
            raise NotFoundError(f"{email} is not subscribed")
        day = parse_day(date_, store) or store.latest_feed_day() or dt.date.today()
        sender = build_sender(settings, store)
        if sub.contents.searches:
            sender.searcher = _searcher(settings, store)
        if sub.contents.for_you and sub.user_id is not None:
            sender.recommender = _recommender(settings, store)
        composed = sender.digest_for(sub, day)
        if composed.is_empty:
            raise PaperfeedError(f"the digest of {sub.email} for {day} would be empty")
        text, html = render_digest_parts(composed, sender.ctx, "(unsubscribe link)")
    body = html if fmt == "html" else text
    if out_path is not None:
        out_path.write_text(body, encoding="utf-8")
        err.print(f"Preview written to {escape(str(out_path))}")
    else:
        click.echo(body)
