"""``paperfeed serve``: the web app and APIs over a store, with uvicorn."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from paperfeed.cli.common import (
    catch_up_keyword_index,
    cli_settings,
    data_dir_option,
    open_cli_store,
    out,
    progress_bar,
    semantic_installed,
)
from paperfeed.errors import PaperfeedError
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store, open_store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from paperfeed.digest.runner import DigestReport
    from paperfeed.digest.schedule import DueRun
    from paperfeed.web.app import Service

log = logging.getLogger("paperfeed.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# How a `serve --workers N` parent hands its options to the worker processes it spawns
# (uvicorn builds each worker's app from an import string, not from an object).
WORKER_OPTIONS_ENV = "PAPERFEED_SERVE_WORKER"
# How often a process without a job's lease asks again (the holder may have stopped).
LEASE_RETRY_SECONDS = 30.0


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
    # Each runs where its job's lease is held: in exactly one of the processes sharing
    # the store (several `serve --workers`, several servers on one database).
    return [
        LeasedService(store, "fetch", FetchScheduler(settings, store)),
        LeasedService(store, "digests", digests),
        LeasedService(store, "trainer", Trainer(settings, store)),
    ]


class LeasedService:
    """Runs ``service`` only while this process holds the store's lease on ``job``.

    A thread asks for the lease every ``retry`` seconds until it gets it, then starts the
    service; if the lease is lost (its database session ended), the service is stopped
    and the thread asks again. The job's own idempotence (digest ledger, fetch cursors,
    training versions) covers the moment of a hand-over.
    """

    def __init__(
        self, store: Store, job: str, service: Service, *, retry: float = LEASE_RETRY_SECONDS
    ) -> None:
        self.store = store
        self.job = job
        self.service = service
        self.retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    @property
    def running(self) -> bool:
        """Whether the service runs here (this process holds the lease)."""
        return self._running.is_set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"paperfeed-lease-{self.job}", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                lease = self.store.acquire_job(self.job)
            except PaperfeedError as exc:
                log.warning("job %s: %s", self.job, exc)
                lease = None
            if lease is None:
                self._stop.wait(self.retry)
                continue
            try:
                log.info("job %s runs in this process (pid %d)", self.job, os.getpid())
                self.service.start()
                self._running.set()
                while not self._stop.wait(self.retry):
                    if not lease.held:
                        log.warning("job %s: lease lost; stopping it here", self.job)
                        break
            finally:
                self._running.clear()
                try:
                    self.service.stop()
                finally:
                    lease.release()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None


class _ClosesStore:
    """The last service to stop: closes a store that the app's process opened itself."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.store.close()


def build_app(
    settings: Settings,
    store: Store,
    *,
    keyword_only: bool = False,
    engine: SearchEngine | None = None,
    accounts: bool | None = None,
    schedule: bool = True,
    close_store: bool = False,
) -> FastAPI:
    """The app ``serve`` runs: the search engine (and its model) loads in the background
    unless a ready one is given; ``accounts`` overrides ``[web] accounts``; ``schedule``
    runs the scheduled fetch, the digests and the trainer beside the app (each where its
    job lease is held); ``close_store`` closes the store when the app shuts down."""
    import dataclasses

    from paperfeed.index.live import LiveSearch
    from paperfeed.web import create_app
    from paperfeed.web.config import load_web_config
    from paperfeed.web.context import with_query_cache

    use_semantic = semantic_installed() and not keyword_only
    web_config = load_web_config(settings)
    if accounts is not None:
        web_config = dataclasses.replace(web_config, accounts=accounts)

    def build_engine() -> LiveSearch:
        # A long-running server follows new vectors (an ingest elsewhere) and model
        # switches (`paperfeed index --model X`) without a restart.
        return LiveSearch(settings, store, semantic_search=use_semantic, prepare=with_query_cache)

    services: list[Service] = [_ClosesStore(store)] if close_store else []
    holder: list[Callable[[], SearchEngine]] = []
    if schedule:
        services += background_services(settings, store, lambda: holder[0]())
    app = create_app(
        settings, store, engine or build_engine, web_config=web_config, services=services
    )
    holder.append(lambda: app.state.ctx.engine)
    return app


def _banner(settings: Settings, host: str, port: int, accounts: bool | None, extra: str) -> None:
    from paperfeed.web.config import load_web_config

    shown = f"[{host}]" if ":" in host else host
    on = accounts if accounts is not None else load_web_config(settings).accounts
    mode = "accounts" if on else "single-user mode"
    out.print(
        f"Serving {settings.data_dir} at [bold]http://{shown}:{port}/[/bold] ({mode}{extra}; "
        "Ctrl-C to stop)"
    )


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
    """Serve until Ctrl-C in this process (see :func:`build_app` for the options)."""
    import uvicorn

    check_port(host, port)
    app = build_app(
        settings,
        store,
        keyword_only=keyword_only,
        engine=engine,
        accounts=accounts,
        schedule=schedule,
    )
    _banner(settings, host, port, accounts, "")
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


def worker_app() -> FastAPI:
    """The app of one ``serve --workers`` process (uvicorn's factory): its own store
    (connection pool), search engine and job leases, built from the options the parent
    left in the environment; nothing is shared between workers but the database."""
    options = json.loads(os.environ[WORKER_OPTIONS_ENV])
    settings = Settings.resolve(options["data_dir"], options["database_url"])
    store = open_store(settings, create=False)
    try:
        return build_app(
            settings,
            store,
            keyword_only=bool(options["keyword_only"]),
            accounts=options["accounts"],
            schedule=bool(options["schedule"]),
            close_store=True,
        )
    except BaseException:
        store.close()
        raise


def run_workers(
    settings: Settings,
    *,
    workers: int,
    host: str,
    port: int,
    keyword_only: bool = False,
    access_log: bool = True,
    accounts: bool | None = None,
    schedule: bool = True,
) -> None:
    """Serve with ``workers`` processes sharing one PostgreSQL store until Ctrl-C."""
    import uvicorn

    if not settings.database_url:
        raise PaperfeedError(
            "--workers above 1 needs a PostgreSQL store (PAPERFEED_DATABASE_URL): a SQLite "
            "store keeps its vectors in files that each process would load and rewrite on "
            "its own, and its writes queue behind one lock; one process already serves "
            "requests concurrently (see docs/postgres.md)"
        )
    check_port(host, port)
    open_store(settings, create=False).close()  # a missing store fails here, once
    os.environ[WORKER_OPTIONS_ENV] = json.dumps(
        {
            "data_dir": str(settings.data_dir),
            "database_url": settings.database_url,
            "keyword_only": keyword_only,
            "accounts": accounts,
            "schedule": schedule,
        }
    )
    _banner(settings, host, port, accounts, f"; {workers} workers")
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            "paperfeed.cli.serve:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info" if access_log else "warning",
            access_log=access_log,
            server_header=False,
        )
    out.print("Stopped.")


def _catch_up(store: Store) -> None:
    """Papers written but not yet in the keyword index (an interrupted ingest, an index
    rebuilt after an upgrade) become searchable before the first request."""
    with progress_bar(quiet=False) as progress:
        catch_up_keyword_index(store, progress)


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
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the store (above 1: PostgreSQL stores only); the "
    "scheduled jobs run in one of them.",
)
@data_dir_option
def serve(
    host: str,
    port: int,
    keyword_only: bool,
    access_log: bool,
    accounts: bool | None,
    no_schedule: bool,
    workers: int,
    data_dir: Path | None,
) -> None:
    """Run the web app: feeds, search, paper pages, RSS / Atom, accounts, votes,
    collections and digest subscriptions, the JSON API (/api/v1, documented at /docs) and
    the Hugging Face-compatible papers API; plus the scheduled fetch and digests."""
    settings = cli_settings(data_dir)
    if workers > 1:
        with open_cli_store(data_dir) as store:
            _catch_up(store)
        run_workers(
            settings,
            workers=workers,
            host=host,
            port=port,
            keyword_only=keyword_only,
            access_log=access_log,
            accounts=accounts,
            schedule=not no_schedule,
        )
        return
    with open_cli_store(data_dir) as store:
        _catch_up(store)
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
