"""What every route of one app shares: the store, the search engine, settings, templates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from fastapi import Request
from starlette.templating import Jinja2Templates

from paperfeed.errors import PaperfeedError
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store

log = logging.getLogger("paperfeed.web")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


class EngineProvider:
    """The app's one search engine, built once (loading a model takes seconds).

    Built on first use or by :meth:`warm_up` at startup, under a lock so concurrent first
    requests do not load the model twice. If building fails (no embeddings, a model that
    no longer matches its index), search falls back to keywords and :attr:`note` says why.
    """

    def __init__(
        self,
        store: Store,
        factory: Callable[[], SearchEngine] | SearchEngine | None = None,
    ) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._engine: SearchEngine | None = None
        self._factory: Callable[[], SearchEngine] | None = None
        self.note: str | None = None
        if isinstance(factory, SearchEngine):
            self._engine = factory
        elif factory is None:
            self._engine = SearchEngine(store)
        else:
            self._factory = factory

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def get(self) -> SearchEngine:
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._engine is None:
                assert self._factory is not None
                try:
                    self._engine = self._factory()
                except PaperfeedError as exc:
                    log.warning("search by meaning is off: %s", exc)
                    self.note = f"Search by meaning is off: {exc}"
                    self._engine = SearchEngine(self._store)
            return self._engine

    def warm_up(self) -> threading.Thread:
        """Build the engine in a background thread (so startup is not delayed)."""
        thread = threading.Thread(target=self.get, name="paperfeed-engine", daemon=True)
        thread.start()
        return thread


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    store: Store
    engines: EngineProvider
    templates: Jinja2Templates
    site_name: str = "paperfeed"

    @property
    def engine(self) -> SearchEngine:
        return self.engines.get()


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    return Jinja2Templates(env=env)


def get_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx
