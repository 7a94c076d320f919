"""The app factory: everything an app uses is passed in, nothing is global."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperfeed import __version__
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.web import api_v1, feeds_xml, hf_api, pages
from paperfeed.web.context import STATIC_DIR, EngineProvider, WebContext, make_templates
from paperfeed.web.errors import install_error_handlers
from paperfeed.web.present import authors_text, day_text
from paperfeed.web.urls import paper_path, period_path


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
    engine: SearchEngine | Callable[[], SearchEngine] | None = None,
    *,
    site_name: str = "paperfeed",
    warm_up: bool = True,
    concurrency: int | None = None,
) -> FastAPI:
    """The web app over one store.

    ``engine`` is a ready :class:`SearchEngine`, or a function building one (called once,
    in a background thread at startup when ``warm_up``, else on first use), or None for
    keyword search only. ``concurrency`` is how many requests are worked on at once
    (default: the number of CPUs). The caller owns the store and closes it.
    """
    engines = EngineProvider(store, engine)
    templates = make_templates()
    ctx = WebContext(
        settings=settings,
        store=store,
        engines=engines,
        templates=templates,
        site_name=site_name,
    )
    env = templates.env
    env.globals.update(
        paper_path=paper_path,
        period_path=period_path,
        site_name=site_name,
        authors_text=authors_text,
        day_text=day_text,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm_up and not engines.ready:
            engines.warm_up()
        yield

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
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.include_router(api_v1.router)
    app.include_router(hf_api.router)
    app.include_router(feeds_xml.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(Admission, limit=max(1, concurrency or os.cpu_count() or 2))
    return app
