"""``paperfeed serve``: the web app and APIs over a store, with uvicorn."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from paperfeed.cli.common import (
    cli_settings,
    data_dir_option,
    open_cli_store,
    out,
    semantic_installed,
)
from paperfeed.errors import PaperfeedError
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store

if TYPE_CHECKING:
    from paperfeed.digest.runner import DigestReport
    from paperfeed.digest.schedule import DueRun
    from paperfeed.web.app import Service

log = logging.getLogger("paperfeed.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def check_port(host: str, port: int) -> None:
    """Fail with a clear message (not a traceback) when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PaperfeedError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another one with --port"
            ) from None


def digest_runner(
    settings: Settings, store: Store, searcher: Callable[[], SearchEngine]
) -> Callable[[DueRun], DigestReport]:
    """What the digest scheduler runs: the day's digests through the configured SMTP
    server, with the site's search engine and the recommender's "for you" picks. Without
    an SMTP server it logs that once and sends nothing."""
    from paperfeed.digest.runner import DigestReport
    from paperfeed.digest.setup import build_mailer, build_sender
    from paperfeed.recommend.for_you import digest_recommender
    from paperfeed.recommend.vectors import open_active_vectors

    warned = False

    def run(due: DueRun) -> DigestReport:
        nonlocal warned
        mailer = build_mailer()
        if mailer is None:
            if not warned:
                log.warning(
                    "%s digests not sent: no SMTP server is configured (PAPERFEED_SMTP_HOST)",
                    due.frequency,
                )
                warned = True
            return DigestReport()
        sender = build_sender(
            settings,
            store,
            searcher=searcher(),
            recommender=digest_recommender(store, lambda: open_active_vectors(settings, store)),
        )
        try:
            return sender.run(mailer, day=due.day, frequency=due.frequency)
        finally:
            mailer.close()

    return run


def background_services(
    settings: Settings, store: Store, searcher: Callable[[], SearchEngine]
) -> list[Service]:
    """The scheduled fetch, the digest schedule and the recommender's trainer."""
    from paperfeed.digest.schedule import DigestScheduler, load_digest_config
    from paperfeed.fetch.schedule import FetchScheduler
    from paperfeed.recommend.trainer import Trainer

    digests = DigestScheduler(
        load_digest_config(settings),
        digest_runner(settings, store, searcher),
        store.latest_feed_day,
    )
    return [FetchScheduler(settings, store), digests, Trainer(settings, store)]


def run_server(
    settings: Settings,
    store: Store,
    *,
    host: str,
    port: int,
    keyword_only: bool = False,
    access_log: bool = True,
    engine: SearchEngine | None = None,
    accounts: bool | None = None,
    schedule: bool = True,
) -> None:
    """Serve until Ctrl-C; the search engine (and its model) loads in the background
    unless a ready one is given. ``accounts`` overrides ``[web] accounts``; ``schedule``
    runs the scheduled fetch, the digests and the trainer beside the app."""
    import dataclasses

    import uvicorn

    from paperfeed.index.live import LiveSearch
    from paperfeed.web import create_app
    from paperfeed.web.config import load_web_config
    from paperfeed.web.context import with_query_cache

    check_port(host, port)
    use_semantic = semantic_installed() and not keyword_only
    web_config = load_web_config(settings)
    if accounts is not None:
        web_config = dataclasses.replace(web_config, accounts=accounts)

    def build_engine() -> LiveSearch:
        # A long-running server follows new vectors (an ingest elsewhere) and model
        # switches (`paperfeed index --model X`) without a restart.
        return LiveSearch(settings, store, semantic_search=use_semantic, prepare=with_query_cache)

    services: list[Service] = []
    holder: list[Callable[[], SearchEngine]] = []
    if schedule:
        services = background_services(settings, store, lambda: holder[0]())
    app = create_app(
        settings, store, engine or build_engine, web_config=web_config, services=services
    )
    holder.append(lambda: app.state.ctx.engine)
    shown = f"[{host}]" if ":" in host else host
    mode = "accounts" if web_config.accounts else "single-user mode"
    out.print(
        f"Serving {settings.data_dir} at [bold]http://{shown}:{port}/[/bold] ({mode}; "
        "Ctrl-C to stop)"
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        # The app's own error contract answers every error; no server banner needed.
        server_header=False,
    )
    # uvicorn shuts down cleanly on Ctrl-C, then re-raises it: stopping is not an error.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    out.print("Stopped.")


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--keyword-only",
    is_flag=True,
    help="Do not load the embedding model: keyword search only, no similar papers.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log every request on stderr.",
)
@click.option(
    "--accounts/--single-user",
    default=None,
    help="Require sign-up / log-in for votes, collections and subscriptions, or act as one "
    "local user without log-in [default: [web] accounts in paperfeed.toml, else single-user].",
)
@click.option(
    "--no-schedule",
    is_flag=True,
    help="Do not run the scheduled fetch, the digest schedule and the recommender trainer.",
)
@data_dir_option
def serve(
    host: str,
    port: int,
    keyword_only: bool,
    access_log: bool,
    accounts: bool | None,
    no_schedule: bool,
    data_dir: Path | None,
) -> None:
    """Run the web app: feeds, search, paper pages, RSS / Atom, accounts, votes,
    collections and digest subscriptions, the JSON API (/api/v1, documented at /docs) and
    the Hugging Face-compatible papers API; plus the scheduled fetch and digests."""
    settings = cli_settings(data_dir)
    with open_cli_store(data_dir) as store:
        run_server(
            settings,
            store,
            host=host,
            port=port,
            keyword_only=keyword_only,
            access_log=access_log,
            accounts=accounts,
            schedule=not no_schedule,
        )
