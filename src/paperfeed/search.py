"""Search: keyword (BM25), semantic (embeddings) and hybrid ranking, and similar papers.

Every face (CLI, web pages, APIs, digests, evaluation) ranks through :class:`SearchEngine`,
so a query never gives different lists in different places.

Hybrid ranking fuses the two candidate lists. Two fusions are offered:

- ``score`` (default): each side's scores are normalized over its candidate list and
  combined as ``w * keyword + (1 - w) * semantic`` (a paper missing from one side gets 0
  there);
- ``rrf``: reciprocal-rank fusion, ``sum(1 / (k + rank))``.

Ties are broken by paper key so rankings repeat. A relevance floor on the semantic side
keeps nonsense queries from returning noise: papers found by meaning alone whose cosine
similarity to the query is below it are dropped (a keyword match is kept), and a search
left with nothing says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.index.keyword_query import parse_query
from paperfeed.index.vectors import VectorHit
from paperfeed.model import Paper
from paperfeed.snippets import make_snippet
from paperfeed.store import SearchFilters, Store

DEFAULT_KEYWORD_WEIGHT = 0.5


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


@dataclass(frozen=True, slots=True)
class SearchOptions:
    mode: SearchMode = SearchMode.HYBRID
    limit: int = 10
    offset: int = 0
    filters: SearchFilters = field(default_factory=SearchFilters)
    fusion: Fusion = Fusion.SCORE
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    rrf_k: int = 60
    # How deep each side looks before fusion; pagination works within it.
    candidates: int = 100
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


@dataclass(frozen=True, slots=True)
class RankedKey:
    """One fused result before papers are loaded: what evaluation consumes."""

    pk: int
    score: float
    keyword_score: float | None
    semantic_score: float | None


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


def _normalize(scores: dict[int, float]) -> dict[int, float]:
    """Min-max over the candidate list; a single candidate (or all equal) counts as 1."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if math.isclose(high, low):
        return dict.fromkeys(scores, 1.0)
    span = high - low
    return {k: (v - low) / span for k, v in scores.items()}


def fuse(
    keyword: dict[int, float],
    semantic: dict[int, float],
    *,
    fusion: Fusion,
    keyword_weight: float,
    rrf_k: int,
) -> list[RankedKey]:
    """Combine the two sides; ordered by fused score, then by key."""
    keys = set(keyword) | set(semantic)
    fused: dict[int, float] = {}
    if fusion is Fusion.RRF:
        for side, weight in ((keyword, keyword_weight), (semantic, 1.0 - keyword_weight)):
            ranked = sorted(side.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (key, _) in enumerate(ranked, start=1):
                # Weights of 0.5/0.5 give the classic RRF up to a constant factor.
                fused[key] = fused.get(key, 0.0) + 2.0 * weight / (rrf_k + rank)
    else:
        nk, ns = _normalize(keyword), _normalize(semantic)
        for key in keys:
            fused[key] = keyword_weight * nk.get(key, 0.0) + (1.0 - keyword_weight) * ns.get(
                key, 0.0
            )
    ranked = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
    return [RankedKey(k, s, keyword.get(k), semantic.get(k)) for k, s in ranked]


class SearchEngine:
    """Ranks papers of one store with its keyword index and (optionally) vectors."""

    def __init__(
        self,
        store: Store,
        *,
        encoder: QueryEncoder | None = None,
        vectors: VectorSearcher | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder
        self.vectors = vectors

    @property
    def semantic_available(self) -> bool:
        return self.encoder is not None and self.vectors is not None and len(self.vectors) > 0

    def _check_mode(self, mode: SearchMode) -> None:
        if mode is not SearchMode.KEYWORD and not self.semantic_available:
            raise PaperfeedError(
                f"{mode.value} search needs the embedding index: run 'paperfeed index' first "
                "(or use --mode keyword)"
            )

    def _semantic_parts(self) -> tuple[QueryEncoder, VectorSearcher]:
        if self.encoder is None or self.vectors is None:
            raise PaperfeedError("semantic search is not available: run 'paperfeed index'")
        return self.encoder, self.vectors

    def _allowed(self, filters: SearchFilters) -> npt.NDArray[np.int64] | None:
        if not filters.active:
            return None
        return np.asarray(self.store.filter_pks(filters), dtype=np.int64)

    def _semantic(
        self, vector: npt.NDArray[np.float32], depth: int, filters: SearchFilters
    ) -> dict[int, float]:
        _, vectors = self._semantic_parts()
        allowed = self._allowed(filters)
        if allowed is not None and allowed.size == 0:
            return {}
        hits = vectors.search(vector, depth, allowed=allowed)
        return {h.key: h.score for h in hits}

    def rank(self, text: str, options: SearchOptions) -> list[RankedKey]:
        """The fused ranking (keys and scores only), floor applied."""
        self._check_mode(options.mode)
        parsed = parse_query(text)
        depth = max(options.candidates, options.offset + options.limit)
        keyword: dict[int, float] = {}
        semantic: dict[int, float] = {}
        if options.mode is not SearchMode.SEMANTIC:
            keyword = dict(self.store.keyword_search(parsed, limit=depth, filters=options.filters))
        # A query of filters only (cat:cs.CL) has no meaning to embed: keyword side alone.
        if options.mode is not SearchMode.KEYWORD and parsed.semantic_text.strip():
            encoder, _ = self._semantic_parts()
            vector = encoder.encode_queries([parsed.semantic_text])[0]
            semantic = self._semantic(vector, depth, options.filters)
            if options.mode is SearchMode.HYBRID:
                if parsed.required or parsed.excluded:
                    # Required terms, phrases and exclusions hold on both sides.
                    semantic = {k: v for k, v in semantic.items() if k in keyword}
                # Keyword candidates the vector side did not reach still have a similarity
                # to the query: use it, rather than counting them as 0 on that side.
                missing = [k for k in keyword if k not in semantic]
                if missing:
                    semantic.update(self._similarities(vector, missing))
        if options.mode is SearchMode.KEYWORD:
            ranked = [RankedKey(k, s, s, None) for k, s in keyword.items()]
            ranked.sort(key=lambda r: (-r.score, r.pk))
            return ranked
        if options.mode is SearchMode.SEMANTIC:
            ranked = [RankedKey(k, s, None, s) for k, s in semantic.items()]
            ranked.sort(key=lambda r: (-r.score, r.pk))
            return [r for r in ranked if r.score >= options.semantic_floor]
        fused = fuse(
            keyword,
            semantic,
            fusion=options.fusion,
            keyword_weight=options.keyword_weight,
            rrf_k=options.rrf_k,
        )
        # A keyword match is evidence of relevance by itself; a paper found by meaning
        # alone must be close enough to the query to be worth showing.
        floor = options.semantic_floor
        return [
            r
            for r in fused
            if r.keyword_score is not None
            or (r.semantic_score is not None and r.semantic_score >= floor)
        ]

    def _similarities(self, vector: npt.NDArray[np.float32], keys: list[int]) -> dict[int, float]:
        _, vectors = self._semantic_parts()
        wanted = np.asarray(keys, dtype=np.int64)
        present = wanted[vectors.contains(wanted)]
        if present.size == 0:
            return {}
        scores = vectors.get(present) @ vector
        return {int(k): float(s) for k, s in zip(present, scores, strict=True)}

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
        _, vectors = self._semantic_parts()
        key = np.asarray([pk], dtype=np.int64)
        if not vectors.contains(key)[0]:
            raise PaperfeedError(
                f"paper {paper_id!r} is not embedded yet: run 'paperfeed index' to catch up"
            )
        scores = self._semantic(vectors.get(key)[0], limit + 1, filters or SearchFilters())
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
