"""Search for long-running processes (``paperfeed serve``): always the current index.

A web server keeps one :class:`LiveSearch` for its whole life while other things change
under it: ``paperfeed ingest`` in another process adds papers and saves new vector files,
``paperfeed index --model X`` builds a second model's index and then makes it active, or
the server itself re-embeds with another model (:meth:`LiveSearch.reembed`). Searches must
keep answering through all of it and move to the new state atomically.

So every few seconds (never per query) it looks at two cheap things: the store's active
model setting and the generation number in the active index's ``index.json`` (a small
file, rewritten last by every save: the commit point of a generation). A model's papers
have a vector per view (title, abstract), each view an index of its own; the abstract
view is the one watched, because an update saves it after the others. A new generation of
the same model is reopened on the spot (memory-mapped files: milliseconds). A new model
needs its encoder loaded (seconds): that happens in a background thread while the old
engine keeps answering, then one assignment switches every later query to the new engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from paperfeed.errors import PaperfeedError
from paperfeed.index import semantic
from paperfeed.index.encoder import Encoder
from paperfeed.index.vectors import read_meta
from paperfeed.search import SearchEngine, SearchHit, SearchOptions, SearchResults
from paperfeed.settings import Settings
from paperfeed.store import SearchFilters, Store

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 2.0
IN_STORE = -1  # the "generation" of vectors the store itself keeps (PostgreSQL)


@dataclass(frozen=True, slots=True)
class IndexState:
    """What identifies the index a search engine was opened on."""

    model: str
    model_id: str | None
    generation: int | None  # the vector index's generation (IN_STORE, or None: none yet)


@dataclass(frozen=True, slots=True)
class ReembedResult:
    """How a background re-embedding ended."""

    model: str
    embedded: int
    error: str | None


class LiveSearch:
    """A search engine that follows the store's active model and its index files."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        semantic_search: bool = True,
        check_every: float = CHECK_EVERY_SECONDS,
        prepare: Callable[[SearchEngine], SearchEngine] | None = None,
    ) -> None:
        """``prepare`` is applied to every engine before it answers (the web app wraps the
        query encoder in a cache there); reopening keeps the bare encoder underneath."""
        self.settings = settings
        self.store = store
        self.semantic_search = semantic_search
        self.check_every = check_every
        self._prepare = prepare
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._reembedding: threading.Thread | None = None
        self.last_reembed: ReembedResult | None = None
        self._state = self._read_state()
        self._engine = self._open(self._state)
        self._checked = time.monotonic()

    # -- what callers use -------------------------------------------------------------

    def current(self) -> SearchEngine:
        """The engine to use now (checks for a newer index at most every few seconds)."""
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self.refresh()
        return self._engine

    @property
    def semantic_available(self) -> bool:
        return self.current().semantic_available

    @property
    def switching(self) -> bool:
        """True while a new model's engine is being loaded in the background."""
        thread = self._loading
        return thread is not None and thread.is_alive()

    @property
    def reembedding(self) -> bool:
        thread = self._reembedding
        return thread is not None and thread.is_alive()

    def search(self, text: str, options: SearchOptions | None = None) -> SearchResults:
        return self.current().search(text, options)

    def similar(
        self, paper_id: str, *, limit: int = 10, filters: SearchFilters | None = None
    ) -> list[SearchHit]:
        return self.current().similar(paper_id, limit=limit, filters=filters)

    def refresh(self, *, wait: bool = False) -> None:
        """Look for a newer index now; ``wait`` blocks until a model switch is complete."""
        if not self.semantic_search:
            return
        state = self._read_state()
        with self._lock:
            if state == self._state or self.switching:
                loading = self._loading
            else:
                same_model = (
                    state.model == self._state.model
                    and state.model_id == self._state.model_id
                    and self._encoder is not None
                )
                if same_model:
                    # New vectors of the same model: reopening memory-mapped files is cheap.
                    self._engine = self._reopen(state)
                    self._state = state
                    loading = None
                else:
                    loading = threading.Thread(
                        target=self._switch, args=(state,), name="paperfeed-engine-switch"
                    )
                    self._loading = loading
                    loading.start()
        if wait and loading is not None:
            loading.join()

    def reembed(
        self,
        model: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        on_done: Callable[[ReembedResult], None] | None = None,
    ) -> threading.Thread:
        """Embed the corpus with ``model`` in the background, then make it the active model.

        The current model keeps answering searches until the new index is complete; the
        switch then happens on the next check. Only one re-embedding runs at a time.
        """
        with self._lock:
            if self.reembedding:
                raise PaperfeedError("a re-embedding is already running")
            thread = threading.Thread(
                target=self._reembed,
                args=(model, progress, on_done),
                name="paperfeed-reembed",
                daemon=True,
            )
            self._reembedding = thread
            thread.start()
        return thread

    def close(self) -> None:
        for thread in (self._loading, self._reembedding):
            if thread is not None and thread.is_alive():
                thread.join()

    # -- internals ----------------------------------------------------------------------

    def _read_state(self) -> IndexState:
        model = semantic.active_model(self.store)
        model_id = self.store.get_setting(f"semantic.model_id:{model}")
        generation = None
        if model_id is not None:
            try:
                meta = read_meta(semantic.vectors_dir(self.settings, model_id))
            except PaperfeedError:
                meta = None  # mid-replacement or damaged: keep what we have, look again later
            if meta is not None:
                generation = meta.generation
            elif self.store.count_embeddings(model_id) > 0:
                # Vectors kept inside the store (PostgreSQL) are read live by every query:
                # there is no newer generation to reopen, only a model to switch to.
                generation = IN_STORE
        return IndexState(model, model_id, generation)

    def _ready(self, engine: SearchEngine) -> SearchEngine:
        return engine if self._prepare is None else self._prepare(engine)

    def _build(self, state: IndexState) -> tuple[SearchEngine, Encoder | None]:
        """A new engine for ``state`` and its bare encoder (None: keyword search only)."""
        if not self.semantic_search or state.generation is None:
            return SearchEngine(self.store), None
        engine = semantic.open_engine(self.settings, self.store)
        encoder = engine.encoder if isinstance(engine.encoder, Encoder) else None
        return self._ready(engine), encoder

    def _open(self, state: IndexState) -> SearchEngine:
        engine, self._encoder = self._build(state)
        return engine

    def _reopen(self, state: IndexState) -> SearchEngine:
        encoder = self._encoder
        if state.generation is None or encoder is None:
            return self._open(state)
        views = semantic.open_views(self.settings, encoder, self.store)
        return self._ready(
            SearchEngine(self.store, encoder=encoder, views=semantic.paper_views(views))
        )

    def _switch(self, state: IndexState) -> None:
        try:
            engine, encoder = self._build(state)
        except Exception:  # the old engine keeps answering; the next check retries
            log.exception("could not open the search index of model %s", state.model)
            return
        with self._lock:
            self._engine = engine
            self._encoder = encoder
            self._state = state

    def _reembed(
        self,
        model: str,
        progress: Callable[[int, int], None] | None,
        on_done: Callable[[ReembedResult], None] | None,
    ) -> None:
        try:
            _, _, n = semantic.build(self.settings, self.store, model=model, progress=progress)
            result = ReembedResult(model, n, None)
        except Exception as exc:
            log.exception("re-embedding with model %s failed", model)
            result = ReembedResult(model, 0, str(exc))
        self.last_reembed = result
        if result.error is None:
            self.refresh(wait=True)
        if on_done is not None:
            on_done(result)
