"""What every route of one app shares: the store, the search engine, settings, templates."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import numpy.typing as npt
from fastapi import Request
from starlette.templating import Jinja2Templates

from paperfeed.errors import PaperfeedError
from paperfeed.index.live import LiveSearch
from paperfeed.search import QueryEncoder, SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import Store
from paperfeed.web.auth import Auth
from paperfeed.web.map_cache import MapCache

log = logging.getLogger("paperfeed.web")

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


class CachedQueryEncoder:
    """Remembers the embeddings of recent queries: the next page of results, the RSS
    feed of a search and popular queries then cost no model call (the model's answer for
    a text never changes)."""

    def __init__(self, inner: QueryEncoder, size: int = 1024) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.size = size
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows: list[npt.NDArray[np.float32] | None] = []
        with self._lock:
            for text in texts:
                row = self._cache.get(text)
                if row is not None:
                    self._cache.move_to_end(text)
                rows.append(row)
        missing = [t for t, r in zip(texts, rows, strict=True) if r is None]
        if missing:
            fresh = self.inner.encode_queries(missing)
            found = dict(zip(missing, fresh, strict=True))
            with self._lock:
                for text, row in found.items():
                    self._cache[text] = row
                    self._cache.move_to_end(text)
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            rows = [found[t] if r is None else r for t, r in zip(texts, rows, strict=True)]
        return np.stack([r for r in rows if r is not None])


def with_query_cache(engine: SearchEngine) -> SearchEngine:
    if engine.encoder is not None and not isinstance(engine.encoder, CachedQueryEncoder):
        engine.encoder = CachedQueryEncoder(engine.encoder)
    return engine


class EngineProvider:
    """The app's one search engine, built once (loading a model takes seconds).

    Built on first use or by :meth:`warm_up` at startup, under a lock so concurrent first
    requests do not load the model twice. If building fails (no embeddings, a model that
    no longer matches its index), search falls back to keywords and :attr:`note` says why.
    """

    def __init__(
        self,
        store: Store,
        factory: Callable[[], SearchEngine | LiveSearch] | SearchEngine | None = None,
    ) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._engine: SearchEngine | None = None
        # A LiveSearch (what `serve` builds) follows new vectors and model switches.
        self._live: LiveSearch | None = None
        self._factory: Callable[[], SearchEngine | LiveSearch] | None = None
        self.note: str | None = None
        if isinstance(factory, SearchEngine):
            self._engine = with_query_cache(factory)
        elif factory is None:
            self._engine = SearchEngine(store)
        else:
            self._factory = factory

    @property
    def ready(self) -> bool:
        return self._engine is not None

    def get(self) -> SearchEngine:
        live = self._live
        if live is not None:
            return live.current()
        engine = self._engine
        if engine is not None:
            return engine
        with self._lock:
            if self._live is not None:
                return self._live.current()
            if self._engine is None:
                assert self._factory is not None
                try:
                    built = self._factory()
                    if isinstance(built, LiveSearch):
                        self._live = built
                        return built.current()
                    self._engine = with_query_cache(built)
                except PaperfeedError as exc:
                    log.warning("search by meaning is off: %s", exc)
                    self.note = f"Search by meaning is off: {exc}"
                    self._engine = SearchEngine(self._store)
            return self._engine

    def warm_up(self) -> threading.Thread:
        """Build the engine in a background thread (so startup is not delayed), and encode
        one query: that makes the query encoder ready (its session, or its first-use
        export) before a visitor waits for it."""
        thread = threading.Thread(target=self._warm, name="paperfeed-engine", daemon=True)
        thread.start()
        return thread

    def _warm(self) -> None:
        engine = self.get()
        if engine.encoder is None:
            return
        try:
            engine.encoder.encode_queries(["paperfeed warm-up query"])
        except PaperfeedError as exc:
            log.warning("the query encoder failed to warm up: %s", exc)


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    store: Store
    engines: EngineProvider
    templates: Jinja2Templates
    auth: Auth
    site_name: str = "paperfeed"
    maps: MapCache = field(default_factory=MapCache)

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
