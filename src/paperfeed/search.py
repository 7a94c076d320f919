"""Search: keyword (BM25), semantic (embeddings) and hybrid ranking, and similar papers.

Every face (CLI, web pages, APIs, digests, evaluation) ranks through :class:`SearchEngine`,
so a query never gives different lists in different places.

A paper has one vector per *view* (its title, its abstract: :class:`PaperViews`). The
semantic side scores a paper by its best view, after putting the views on one scale: each
view's cosines are z-normalized with the mean and spread of that view's own top list for
the query (a title and an abstract are not equally close to any query, so raw cosines of
two views do not compare). See docs/search.md for the measurements behind it.

Hybrid ranking fuses the keyword and the semantic lists. Two fusions are offered:

- ``score`` (default): each side's scores are z-normalized over its own top list and
  combined as ``w * keyword + (1 - w) * semantic``; a paper missing from the keyword list
  gets that list's lowest z, one missing from the semantic list its exact score;
- ``rrf``: reciprocal-rank fusion, ``sum(1 / (k + rank))``.

Ties are broken by paper key so rankings repeat. A relevance floor on the semantic side
keeps nonsense queries from returning noise: papers found by meaning alone whose best
view's cosine similarity to the query is below it are dropped (a keyword match is kept),
and a search left with nothing says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index.keyword_query import KeywordQuery, parse_query
from paperfeed.index.vectors import VectorHit
from paperfeed.model import Paper
from paperfeed.snippets import make_snippet
from paperfeed.store import SearchFilters, Store

# Chosen by 5-fold cross-validation on BEIR SciFact (docs/search.md): 0.55 won every fold.
DEFAULT_KEYWORD_WEIGHT = 0.55
# How deep each side looks: the lists the z-scores are computed over. On SciFact 300 and
# 1,000 rank within 0.001 nDCG@10 (100 loses 0.006), while the vector index's work grows
# with the depth (docs/search.md).
DEFAULT_CANDIDATES = 300


class SearchMode(StrEnum):
    KEYWORD = "keyword"
    SEMANTIC = "semantic"
    HYBRID = "hybrid"


class Fusion(StrEnum):
    SCORE = "score"
    RRF = "rrf"


class QueryEncoder(Protocol):
    model_id: str

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class VectorSearcher(Protocol):
    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        *,
        allowed: npt.NDArray[np.int64] | None = None,
    ) -> Sequence[VectorHit]: ...

    def get(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]: ...

    def contains(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]: ...

    def __len__(self) -> int: ...


SINGLE_VIEW = "document"


@dataclass(frozen=True, slots=True)
class PaperViews:
    """The vector indexes of one model, one per view of a paper (title, abstract).

    ``main`` is the view that stands for the paper alone: similar papers are found with
    it, and an empty ``main`` index means nothing is embedded yet.
    """

    indexes: Mapping[str, VectorSearcher]
    main: str

    def __post_init__(self) -> None:
        if self.main not in self.indexes:
            raise PaperfeedError(f"the main view {self.main!r} has no vector index")

    @classmethod
    def single(cls, index: VectorSearcher) -> PaperViews:
        """One vector per paper (what an index built by other means holds)."""
        return cls({SINGLE_VIEW: index}, SINGLE_VIEW)

    @property
    def primary(self) -> VectorSearcher:
        return self.indexes[self.main]


@dataclass(frozen=True, slots=True)
class SearchOptions:
    mode: SearchMode = SearchMode.HYBRID
    limit: int = 10
    offset: int = 0
    filters: SearchFilters = field(default_factory=SearchFilters)
    fusion: Fusion = Fusion.SCORE
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    rrf_k: int = 60
    # How deep each side looks before fusion (its z statistics come from that list);
    # pagination works within it.
    candidates: int = DEFAULT_CANDIDATES
    semantic_floor: float = 0.2

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 1000:
            raise PaperfeedError(f"limit must be between 1 and 1000, not {self.limit}")
        if self.offset < 0:
            raise PaperfeedError(f"offset must be 0 or more, not {self.offset}")
        if not 0.0 <= self.keyword_weight <= 1.0:
            raise PaperfeedError(f"keyword weight must be within [0, 1], not {self.keyword_weight}")
        if self.rrf_k < 1:
            raise PaperfeedError(f"rrf k must be at least 1, not {self.rrf_k}")
        if self.candidates < 1:
            raise PaperfeedError(f"candidates must be at least 1, not {self.candidates}")


@dataclass(frozen=True, slots=True)
class RankedKey:
    """One fused result before papers are loaded: what evaluation consumes."""

    pk: int
    score: float
    keyword_score: float | None  # BM25
    semantic_score: float | None  # cosine similarity of the paper's closest view


@dataclass(frozen=True, slots=True)
class SearchHit:
    paper: Paper
    rank: int
    score: float
    keyword_score: float | None
    semantic_score: float | None
    snippet: str  # HTML-escaped text with <mark> around matched words


@dataclass(frozen=True, slots=True)
class SearchResults:
    query: str
    mode: SearchMode
    hits: list[SearchHit]
    total: int  # fused candidates passing the floor (pagination works within these)
    offset: int
    limit: int
    took_ms: float

    @property
    def nothing_relevant(self) -> bool:
        return self.total == 0


@dataclass(frozen=True, slots=True)
class ZScale:
    """Mean and (population) standard deviation of one list of scores."""

    mean: float
    sd: float

    @classmethod
    def of(cls, values: Iterable[float]) -> ZScale:
        arr = np.fromiter(values, dtype=np.float64)
        if arr.size == 0:
            return cls(0.0, 1.0)
        sd = float(arr.std())
        # All equal (or one value): every listed score is the mean, z = 0.
        return cls(float(arr.mean()), sd if sd > 1e-9 else 1.0)

    def z(self, value: float) -> float:
        return (value - self.mean) / self.sd


def fuse(
    keyword: Mapping[int, float],
    semantic: Mapping[int, float],
    *,
    fusion: Fusion,
    keyword_weight: float,
    rrf_k: int,
    semantic_outside: Mapping[int, float] | None = None,
    keyword_complete: bool = False,
) -> list[tuple[int, float]]:
    """Combine the two lists into (key, fused score), best first, ties by key.

    ``keyword`` and ``semantic`` are each side's own top list: their z statistics come from
    them. ``semantic_outside`` holds the exact semantic scores of keyword candidates the
    semantic list did not reach (scaled with the list's statistics, not counted as 0). A
    candidate missing from the keyword list gets its lowest z: outside the list there is
    nothing to tell it from the least matching paper. When the list is ``keyword_complete``
    (it holds every matching paper), a paper outside it matches nothing: its BM25 is 0,
    and that is what it gets, below every match.
    """
    outside = semantic_outside or {}
    if fusion is Fusion.RRF:
        keys = set(keyword) | set(semantic)
        fused: dict[int, float] = {}
        dense = {**outside, **semantic}
        for side, weight in ((keyword, keyword_weight), (dense, 1.0 - keyword_weight)):
            ranked = sorted(side.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (key, _) in enumerate(ranked, start=1):
                # Weights of 0.5/0.5 give the classic RRF up to a constant factor.
                fused[key] = fused.get(key, 0.0) + 2.0 * weight / (rrf_k + rank)
        return sorted(((k, fused[k]) for k in keys), key=lambda kv: (-kv[1], kv[0]))
    return _z_fusion(keyword, semantic, outside, keyword_weight, keyword_complete)


def _as_arrays(
    scores: Mapping[int, float],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    keys = np.fromiter(scores.keys(), dtype=np.int64, count=len(scores))
    return keys, np.fromiter(scores.values(), dtype=np.float64, count=len(scores))


def _find(
    sorted_keys: npt.NDArray[np.int64], wanted: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """For each wanted key: its position in ``sorted_keys`` and whether it is there (the
    position is only meaningful where it is)."""
    if not len(sorted_keys):
        return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    return pos, sorted_keys[pos] == wanted


def _z_fusion(
    keyword: Mapping[int, float],
    semantic: Mapping[int, float],
    outside: Mapping[int, float],
    keyword_weight: float,
    keyword_complete: bool,
) -> list[tuple[int, float]]:
    """Score fusion of z-scores, in numpy: the same arithmetic, element by element, as
    the scalar form in :meth:`ZScale.z` (so the same floats), a few ms less per search."""
    kkeys, kvalues = _as_arrays(keyword)
    skeys, svalues = _as_arrays(semantic)
    kscale, sscale = ZScale.of(kvalues), ZScale.of(svalues)
    kz = (kvalues - kscale.mean) / kscale.sd
    sz = (svalues - sscale.mean) / sscale.sd
    kz_floor = float(kz.min()) if kz.size else 0.0
    if keyword_complete and kz.size:
        kz_floor = min(kz_floor, kscale.z(0.0))
    sz_floor = float(sz.min()) if sz.size else 0.0
    keys = np.union1d(kkeys, skeys)
    keyword_side = np.full(len(keys), kz_floor)
    keyword_side[np.searchsorted(keys, kkeys)] = kz
    semantic_side = np.full(len(keys), sz_floor)
    if outside:
        okeys, ovalues = _as_arrays(outside)
        pos, listed = _find(keys, okeys)
        semantic_side[pos[listed]] = (ovalues[listed] - sscale.mean) / sscale.sd
    semantic_side[np.searchsorted(keys, skeys)] = sz
    fused = keyword_weight * keyword_side + (1.0 - keyword_weight) * semantic_side
    order = np.lexsort((keys, -fused))
    return list(zip(keys[order].tolist(), fused[order].tolist(), strict=True))


class DenseScorer:
    """The semantic side of one query: a paper's score is its best view's z-score.

    Each view is searched for its top ``depth`` papers; the mean and spread of those
    cosines put that view on a common scale. Any other paper is scored from its stored
    vectors, exactly, with the same statistics.
    """

    def __init__(
        self,
        views: PaperViews,
        query: npt.NDArray[np.float32],
        depth: int,
        allowed: npt.NDArray[np.int64] | None,
    ) -> None:
        self.query = query
        self.floor_cosine: dict[int, float] = {}
        self._views: list[_ViewList] = []
        for index in views.indexes.values():
            if len(index) == 0:  # a view not built yet counts for nothing
                continue
            hits = index.search(query, depth, allowed=allowed)
            keys = np.fromiter((h.key for h in hits), dtype=np.int64, count=len(hits))
            cosines = np.fromiter((h.score for h in hits), dtype=np.float64, count=len(hits))
            order = np.argsort(keys)
            self._views.append(_ViewList(index, keys[order], cosines[order], ZScale.of(cosines)))

    def listed(self) -> set[int]:
        """Every paper on some view's top list."""
        keys: set[int] = set()
        for view in self._views:
            keys.update(view.keys.tolist())
        return keys

    def score(self, keys: Iterable[int]) -> dict[int, tuple[float, float]]:
        """key -> (best z over the views, best cosine over the views); papers no view has
        a vector for are left out. Also records in :attr:`floor_cosine` each paper's mean
        cosine over its views: the relevance floor judges that, because a title is a few
        words and short texts sit closer to anything (a nonsense query reaches 0.24 against
        some titles of the sample), while a paper whose title is the query still passes."""
        wanted = np.fromiter(dict.fromkeys(keys), dtype=np.int64)
        n = len(wanted)
        best_z = np.full(n, -np.inf)
        best_cosine = np.full(n, -np.inf)
        sums = np.zeros(n)
        counts = np.zeros(n, dtype=np.int64)
        for view in self._views:
            cosine, have = view.cosines_of(wanted, self.query)
            z = (cosine - view.scale.mean) / view.scale.sd
            best_z = np.where(have, np.maximum(best_z, z), best_z)
            best_cosine = np.where(have, np.maximum(best_cosine, cosine), best_cosine)
            sums[have] += cosine[have]
            counts[have] += 1
        scored = counts > 0
        keys_out = wanted[scored].tolist()
        self.floor_cosine.update(
            zip(keys_out, (sums[scored] / counts[scored]).tolist(), strict=True)
        )
        pairs = zip(best_z[scored].tolist(), best_cosine[scored].tolist(), strict=True)
        return dict(zip(keys_out, pairs, strict=True))


@dataclass(frozen=True, slots=True)
class _ViewList:
    """One view's top list for a query, by key, and the scale of its cosines."""

    index: VectorSearcher
    keys: npt.NDArray[np.int64]  # ascending
    cosines: npt.NDArray[np.float64]
    scale: ZScale

    def cosines_of(
        self, wanted: npt.NDArray[np.int64], query: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """The cosine of each wanted paper in this view (from the list, else from its
        stored vector), and whether it has one."""
        cosine = np.zeros(len(wanted))
        pos, listed = _find(self.keys, wanted)
        cosine[listed] = self.cosines[pos[listed]]
        have = listed.copy()
        rows = np.flatnonzero(~listed)
        if rows.size:
            stored = self.index.contains(wanted[rows])
            rows = rows[stored]
            if rows.size:
                sims = self.index.get(wanted[rows]) @ query
                cosine[rows] = sims.astype(np.float64)
                have[rows] = True
        return cosine, have


# The threads hybrid searches run their keyword side on. Two, so that a search never
# queues behind the previous one's keyword side; threads start only when first used.
_KEYWORD_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="paperfeed-keyword")


class _Searches:
    """How many searches this process is ranking right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    def __enter__(self) -> None:
        with self._lock:
            self._running += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._running -= 1

    def alone(self) -> bool:
        with self._lock:
            return self._running <= 1


_busy = _Searches()


class SearchEngine:
    """Ranks papers of one store with its keyword index and (optionally) vectors.

    ``views`` are the paper vectors, one index per view; ``vectors`` (one index) is the
    same as a single view.
    """

    def __init__(
        self,
        store: Store,
        *,
        encoder: QueryEncoder | None = None,
        vectors: VectorSearcher | None = None,
        views: PaperViews | None = None,
    ) -> None:
        if vectors is not None and views is not None:
            raise PaperfeedError("give the search engine either vectors or views, not both")
        self.store = store
        self.encoder = encoder
        self.views = views if vectors is None else PaperViews.single(vectors)

    @property
    def vectors(self) -> VectorSearcher | None:
        """The main view's index (what stands for a paper alone)."""
        return None if self.views is None else self.views.primary

    @property
    def semantic_available(self) -> bool:
        return self.encoder is not None and self.views is not None and len(self.views.primary) > 0

    def _check_mode(self, mode: SearchMode) -> None:
        if mode is not SearchMode.KEYWORD and not self.semantic_available:
            raise PaperfeedError(
                f"{mode.value} search needs the embedding index: run 'paperfeed index' first "
                "(or use --mode keyword)"
            )

    def _semantic_parts(self) -> tuple[QueryEncoder, PaperViews]:
        if self.encoder is None or self.views is None:
            raise PaperfeedError("semantic search is not available: run 'paperfeed index'")
        return self.encoder, self.views

    def _allowed(self, filters: SearchFilters) -> npt.NDArray[np.int64] | None:
        if not filters.active:
            return None
        return np.asarray(self.store.filter_pks(filters), dtype=np.int64)

    def rank(self, text: str, options: SearchOptions) -> list[RankedKey]:
        """The fused ranking (keys and scores only), floor applied."""
        self._check_mode(options.mode)
        parsed = parse_query(text)
        depth = max(options.candidates, options.offset + options.limit)
        if options.mode is SearchMode.KEYWORD:
            found = self.store.keyword_search(parsed, limit=depth, filters=options.filters)
            ranked = [RankedKey(k, s, s, None) for k, s in dict(found).items()]
            ranked.sort(key=lambda r: (-r.score, r.pk))
            return ranked
        with _busy:
            return self._rank_semantic(parsed, options, depth)

    def _rank_semantic(
        self, parsed: KeywordQuery, options: SearchOptions, depth: int
    ) -> list[RankedKey]:
        keyword: dict[int, float] = {}
        pending: Future[list[tuple[int, float]]] | None = None
        if options.mode is SearchMode.HYBRID:
            if _busy.alone():
                # The keyword side runs beside the query embedding and the vector search
                # (all three leave Python's lock while they work): the search then takes
                # about as long as its slower side instead of both. Only when no other
                # search is running: under load the other core is busy anyway.
                pending = _KEYWORD_POOL.submit(
                    self.store.keyword_search, parsed, limit=depth, filters=options.filters
                )
            else:
                keyword = dict(
                    self.store.keyword_search(parsed, limit=depth, filters=options.filters)
                )
        # key -> (best z, best cosine): the semantic list, best first.
        semantic: dict[int, tuple[float, float]] = {}
        outside: dict[int, tuple[float, float]] = {}
        floor_cosine: dict[int, float] = {}
        # A query of filters only (cat:cs.CL) has no meaning to embed: keyword side alone.
        if parsed.semantic_text.strip():
            encoder, views = self._semantic_parts()
            allowed = self._allowed(options.filters)
            if allowed is None or allowed.size > 0:
                vector = encoder.encode_queries([parsed.semantic_text])[0]
                scorer = DenseScorer(views, vector, depth, allowed)
                if pending is not None:
                    keyword = dict(pending.result())
                    pending = None
                pool = scorer.listed()
                if options.mode is SearchMode.HYBRID and (parsed.required or parsed.excluded):
                    # Required terms, phrases and exclusions hold on both sides.
                    pool &= keyword.keys()
                scored = sorted(scorer.score(pool).items(), key=lambda kv: (-kv[1][0], kv[0]))
                semantic = dict(scored[:depth])
                if options.mode is SearchMode.HYBRID:
                    # Keyword candidates the semantic list did not reach still have a
                    # similarity to the query: use it, rather than the list's worst.
                    outside = scorer.score(k for k in keyword if k not in semantic)
                floor_cosine = scorer.floor_cosine
        if pending is not None:  # no semantic side to wait for (a query of filters only)
            keyword = dict(pending.result())
        floor = options.semantic_floor

        def passes(key: int) -> bool:
            return floor_cosine.get(key, -1.0) >= floor

        if options.mode is SearchMode.SEMANTIC:
            return [RankedKey(k, z, None, c) for k, (z, c) in semantic.items() if passes(k)]
        fused = fuse(
            keyword,
            {k: z for k, (z, _) in semantic.items()},
            fusion=options.fusion,
            keyword_weight=options.keyword_weight,
            rrf_k=options.rrf_k,
            semantic_outside={k: z for k, (z, _) in outside.items()},
            keyword_complete=len(keyword) < depth,
        )
        cosine = {k: c for k, (_, c) in (semantic | outside).items()}
        # A keyword match is evidence of relevance by itself; a paper found by meaning
        # alone must be close enough to the query to be worth showing.
        return [
            RankedKey(k, s, keyword.get(k), cosine.get(k))
            for k, s in fused
            if k in keyword or passes(k)
        ]

    def search(self, text: str, options: SearchOptions | None = None) -> SearchResults:
        options = options or SearchOptions()
        started = time.perf_counter()
        if not text.strip():
            raise PaperfeedError("the query is empty")
        ranked = self.rank(text, options)
        page = ranked[options.offset : options.offset + options.limit]
        papers = self.store.papers_by_pk([r.pk for r in page])
        terms = parse_query(text).highlight_terms
        hits = []
        for i, r in enumerate(page, start=options.offset + 1):
            paper = papers.get(r.pk)
            if paper is None:  # deleted between ranking and loading
                continue
            hits.append(
                SearchHit(
                    paper=paper,
                    rank=i,
                    score=r.score,
                    keyword_score=r.keyword_score,
                    semantic_score=r.semantic_score,
                    snippet=make_snippet(paper.abstract or paper.title, terms),
                )
            )
        return SearchResults(
            query=text,
            mode=options.mode,
            hits=hits,
            total=len(ranked),
            offset=options.offset,
            limit=options.limit,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def similar(
        self, paper_id: str, *, limit: int = 10, filters: SearchFilters | None = None
    ) -> list[SearchHit]:
        """Papers closest to one paper by embedding (the paper itself excluded)."""
        pk = self.store.paper_pk(paper_id)
        if pk is None:
            raise NotFoundError(f"no paper with id {paper_id!r}")
        if not self.semantic_available:
            raise PaperfeedError("similar papers need the embedding index: run 'paperfeed index'")
        # The main view (the abstract) against its own index: what a paper is about.
        vectors = self._semantic_parts()[1].primary
        key = np.asarray([pk], dtype=np.int64)
        if not vectors.contains(key)[0]:
            raise PaperfeedError(
                f"paper {paper_id!r} is not embedded yet: run 'paperfeed index' to catch up"
            )
        allowed = self._allowed(filters or SearchFilters())
        scores: dict[int, float] = {}
        if allowed is None or allowed.size > 0:
            hits = vectors.search(vectors.get(key)[0], limit + 1, allowed=allowed)
            scores = {h.key: h.score for h in hits}
        scores.pop(pk, None)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        papers = self.store.papers_by_pk([k for k, _ in ranked])
        source = self.store.papers_by_pk([pk])[pk]
        terms = [w for w in source.title.split() if len(w) > 3]
        return [
            SearchHit(
                paper=papers[k],
                rank=i,
                score=s,
                keyword_score=None,
                semantic_score=s,
                snippet=make_snippet(papers[k].abstract or papers[k].title, terms),
            )
            for i, (k, s) in enumerate(ranked, start=1)
            if k in papers
        ]
