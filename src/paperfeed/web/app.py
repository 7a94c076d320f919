"""The app factory: everything an app uses is passed in, nothing is global."""

from __future__ import annotations

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
from paperfeed.web.urls import paper_path, period_path


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` (time spent in the app up to the response
    start), which the load benchmark reads to report server-side latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.2f}".encode()))
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
) -> FastAPI:
    """The web app over one store.

    ``engine`` is a ready :class:`SearchEngine`, or a function building one (called once,
    in a background thread at startup when ``warm_up``, else on first use), or None for
    keyword search only. The caller owns the store and closes it.
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
    env.globals.update(paper_path=paper_path, period_path=period_path, site_name=site_name)

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
    app.add_middleware(ServerTiming)
    return app
