"""The app factory: everything an app uses is passed in, nothing is global."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperfeed import __version__
from paperfeed.index.live import LiveSearch
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.web import (
    account_pages,
    api_account,
    api_recommend,
    api_v1,
    community_pages,
    feeds_xml,
    hf_api,
    pages,
    recommend_pages,
    subscribe_pages,
)
from paperfeed.web.auth import (
    Auth,
    CsrfCookie,
    accounts_enabled,
    csrf_field,
    csrf_guard,
    nav_user,
)
from paperfeed.web.config import WebConfig
from paperfeed.web.context import STATIC_DIR, EngineProvider, WebContext, make_templates
from paperfeed.web.errors import install_error_handlers
from paperfeed.web.present import authors_text, day_text
from paperfeed.web.urls import paper_path, period_path

log = logging.getLogger("paperfeed.web")


class Service(Protocol):
    """Something the server runs beside the app (a scheduler, a trainer)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Admission:
    """At most ``limit`` requests inside the app at once; the others wait their turn.

    Pages are CPU-bound Python: twenty requests run at once in twenty threads each take
    twenty times longer (they share the GIL and two cores), so every client waits for
    the slowest. Admitting a few at a time keeps each request's own time short and the
    waiting in a queue, first come first served. ``Server-Timing`` reports both:
    ``queue;dur=`` (waiting) and ``app;dur=`` (working, up to the response start).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # created in the server's event loop
            self._semaphore = asyncio.Semaphore(self.limit)
        arrived = time.perf_counter()
        async with self._semaphore:
            started = time.perf_counter()

            async def timed_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    now = time.perf_counter()
                    timing = (
                        f"queue;dur={(started - arrived) * 1000:.2f}, "
                        f"app;dur={(now - started) * 1000:.2f}"
                    )
                    headers = [*message.get("headers", []), (b"server-timing", timing.encode())]
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, timed_send)


def create_app(
    settings: Settings,
    store: Store,
    engine: SearchEngine | Callable[[], SearchEngine | LiveSearch] | None = None,
    *,
    site_name: str = "paperfeed",
    warm_up: bool = True,
    concurrency: int | None = None,
    web_config: WebConfig | None = None,
    services: Sequence[Service] = (),
) -> FastAPI:
    """The web app over one store.

    ``engine`` is a ready :class:`SearchEngine`, or a function building one — or building
    a :class:`~paperfeed.index.live.LiveSearch`, which then follows new vectors and model
    switches (what ``serve`` does) — called once, in a background thread at startup when
    ``warm_up``, else on first use; or None for keyword search only. ``concurrency`` is
    how many requests are worked on at once (default: the number of CPUs).
    ``web_config`` says whether people have accounts (default: single-user mode).
    ``services`` are started with the app and stopped, in reverse order, when it shuts
    down. The caller owns the store and closes it.
    """
    config = web_config or WebConfig()
    engines = EngineProvider(store, engine)
    templates = make_templates()
    ctx = WebContext(
        settings=settings,
        store=store,
        engines=engines,
        templates=templates,
        auth=Auth(store, config),
        site_name=site_name,
    )
    env = templates.env
    env.globals.update(
        paper_path=paper_path,
        period_path=period_path,
        site_name=site_name,
        authors_text=authors_text,
        day_text=day_text,
        csrf_field=csrf_field,
        nav_user=nav_user,
        accounts_enabled=accounts_enabled,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm_up and not engines.ready:
            engines.warm_up()
        started: list[Service] = []
        try:
            for service in services:
                service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                try:
                    service.stop()
                except Exception:  # stop the others all the same
                    log.exception("stopping %r failed", service)

    app = FastAPI(
        title=f"{site_name} API",
        version=__version__,
        description=(
            "The JSON API of a paperfeed instance (`/api/v1`) and its Hugging Face-"
            "compatible papers API (`/api/daily_papers`, `/api/papers/...`). Errors are "
            '`{"ok": false, "error": "...", "status": N}`.'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(csrf_guard)],
    )
    app.state.ctx = ctx
    app.state.services = tuple(services)  # feedback wakes the trainer among them
    install_error_handlers(app)
    app.include_router(api_recommend.router)
    app.include_router(api_v1.router)
    app.include_router(api_account.router)
    app.include_router(hf_api.router)
    app.include_router(feeds_xml.router)
    app.include_router(account_pages.router)
    app.include_router(community_pages.router)
    app.include_router(subscribe_pages.router)
    app.include_router(recommend_pages.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(CsrfCookie, config=config)
    app.add_middleware(Admission, limit=max(1, concurrency or os.cpu_count() or 2))
    return app
