"""The JSON API under ``/api/v1`` (documented by OpenAPI at ``/openapi.json`` and ``/docs``).

Every answer has ``ok``; errors are ``{"ok": false, "error": "...", "status": N}`` with the
same HTTP status. Papers have the shape of ``paperfeed ... --json`` (``Paper.to_json``).
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.export import EXPORTERS, get_exporter
from paperfeed.feeds import MAX_LIMIT, FeedPage, feed
from paperfeed.model import Paper
from paperfeed.search import SearchHit, SearchOptions
from paperfeed.store import PaperQuery
from paperfeed.web import params
from paperfeed.web.auth import nav_user
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.recommend_state import topic_keys

router = APIRouter(prefix="/api/v1", tags=["api v1"])
Ctx = Annotated[WebContext, Depends(get_context)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Results per page.")]
Offset = Annotated[int, Query(ge=0, description="Results to skip (pagination).")]
Categories = Annotated[
    list[str] | None,
    Query(description="Only papers in this category (repeatable; `cs.*` for an archive)."),
]
Source = Annotated[str | None, Query(description="Only papers from this source (format name).")]
DateQ = Annotated[str | None, Query(description="A feed day (YYYY-MM-DD, `latest`, `today`).")]
WeekQ = Annotated[str | None, Query(description="An ISO week (YYYY-Www).")]
MonthQ = Annotated[str | None, Query(description="A month (YYYY-MM).")]
SortQ = Annotated[
    str | None, Query(description="`trending` (votes with time decay, default) or `date`.")
]


def ok(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"ok": True, **data}, status_code=status)


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 6),
        "semantic_score": None if hit.semantic_score is None else round(hit.semantic_score, 6),
        "snippet": hit.snippet,
        "paper": hit.paper.to_json(),
    }


def feed_json(page: FeedPage) -> dict[str, Any]:
    def period(p: Any) -> dict[str, Any] | None:
        if p is None:
            return None
        return {
            "kind": p.kind.value,
            "key": p.key,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "label": p.label,
        }

    return {
        "period": period(page.period),
        "previous": period(page.previous),
        "next": period(page.next),
        "sort": page.sort.value,
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "results": [
            {
                "day": e.day.isoformat(),
                "rank": e.rank,
                "votes": e.votes,
                "score": round(e.score, 6),
                "paper": e.paper.to_json(),
            }
            for e in page.entries
        ],
    }


@router.get("/feed", summary="A feed: the papers of a day, a week or a month")
def get_feed(
    ctx: Ctx,
    date: DateQ = None,
    week: WeekQ = None,
    month: MonthQ = None,
    sort: SortQ = None,
    category: Categories = None,
    source: Source = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JSONResponse:
    """Give at most one of `date`, `week`, `month`; none means the latest feed day.
    `previous` / `next` name the neighbouring periods with papers."""
    p = params.feed_params(
        ctx.store, date=date, week=week, month=month, sort=sort, category=category, source=source
    )
    page = feed(ctx.store, p.period, sort=p.sort, filters=p.filters, limit=limit, offset=offset)
    return ok(feed_json(page))


@router.get("/feed-days", summary="Every feed day that has papers")
def get_feed_days(ctx: Ctx) -> JSONResponse:
    return ok({"days": [d.isoformat() for d in ctx.store.feed_dates()]})


@router.get("/papers", summary="All papers, newest publication first")
def list_papers(
    ctx: Ctx,
    source: Source = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JSONResponse:
    query = PaperQuery(source=source or None, limit=limit, offset=offset)
    papers = ctx.store.query_papers(query)
    return ok(
        {
            "total": ctx.store.count_papers(query),
            "offset": offset,
            "limit": limit,
            "papers": [p.to_json() for p in papers],
        }
    )


def _paper(ctx: WebContext, paper_id: str) -> Paper:
    paper = ctx.store.get_paper(paper_id)
    if paper is None:
        raise NotFoundError(f"no paper with id {paper_id!r}")
    return paper


@router.get("/papers/{paper_id:path}", summary="One paper, by any of its ids")
def get_paper(ctx: Ctx, paper_id: str) -> JSONResponse:
    """Any id works: the paper id, an arXiv id (any version or URL), a DOI."""
    paper = _paper(ctx, paper_id)
    appearances = [
        {
            "listing": a.listing,
            "feed_date": a.feed_date.isoformat() if a.feed_date else None,
            "rank": a.rank,
            "source": a.source,
        }
        for a in ctx.store.appearances(paper.id)
    ]
    return ok({"paper": paper.to_json(), "appearances": appearances})


@router.get("/search", summary="Search by keywords and by meaning")
def search(
    request: Request,
    ctx: Ctx,
    q: Annotated[str, Query(description="Words, query syntax, or a pasted abstract.")],
    mode: Annotated[
        str | None, Query(description="`keyword`, `semantic` or `hybrid` (default if embedded).")
    ] = None,
    category: Categories = None,
    source: Source = None,
    date_from: Annotated[
        str | None, Query(alias="from", description="Published on or after (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, Query(alias="to", description="Published on or before (YYYY-MM-DD).")
    ] = None,
    topic: Annotated[
        list[str] | None,
        Query(description="Only papers with this topic (key or name, repeatable; see /topics)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> JSONResponse:
    """The ranking of `paperfeed search`. `nothing_relevant` is true when no paper passes
    the relevance floor."""
    text = params.query_text(q)
    if not text:
        raise PaperfeedError("q: the query is empty")
    engine = ctx.engine
    topics = topic_keys(ctx, nav_user(request), topic)
    options = SearchOptions(
        mode=params.search_mode(mode, engine),
        limit=limit,
        offset=offset,
        filters=params.search_filters(category, source, date_from, date_to, topics),
    )
    results = engine.search(text, options)
    return ok(
        {
            "query": text,
            "mode": results.mode.value,
            "total": results.total,
            "offset": results.offset,
            "limit": results.limit,
            "nothing_relevant": results.nothing_relevant,
            "took_ms": round(results.took_ms, 2),
            "results": [hit_json(h) for h in results.hits],
        }
    )


@router.get("/similar", summary="Papers closest in meaning to one paper")
def similar(
    ctx: Ctx,
    id: Annotated[str, Query(description="Any id of the paper.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSONResponse:
    paper = _paper(ctx, id)
    hits = ctx.engine.similar(paper.id, limit=limit)
    return ok({"paper_id": paper.id, "results": [hit_json(h) for h in hits]})


@router.get(
    "/export",
    summary="Export papers as BibTeX, RIS, CSV, JSON or JSON lines",
    response_class=Response,
)
def export(
    ctx: Ctx,
    format: Annotated[str, Query(description="One of: " + ", ".join(EXPORTERS))] = "bibtex",
    id: Annotated[list[str] | None, Query(description="Paper ids (repeatable).")] = None,
    q: Annotated[str | None, Query(description="Export the results of this search.")] = None,
    date: DateQ = None,
    week: WeekQ = None,
    month: MonthQ = None,
    sort: SortQ = None,
    category: Categories = None,
    source: Source = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
) -> Response:
    """Select papers by `id`, by a search (`q`), or by a feed period (`date` / `week` /
    `month`, the default being the latest feed day), in that order of precedence."""
    info = EXPORTERS.get(format)
    if info is None:
        raise PaperfeedError(f"format: {format!r} is not one of {', '.join(EXPORTERS)}")
    writer = get_exporter(format)
    papers: list[Paper]
    if id:
        papers = [_paper(ctx, i) for i in id]
        name = papers[0].id if len(papers) == 1 else "papers"
    elif q:
        engine = ctx.engine
        options = SearchOptions(
            mode=params.search_mode(None, engine),
            limit=min(limit, 100),
            filters=params.search_filters(category, source),
        )
        papers = [h.paper for h in engine.search(params.query_text(q), options).hits]
        name = "search"
    else:
        p = params.feed_params(
            ctx.store,
            date=date,
            week=week,
            month=month,
            sort=sort,
            category=category,
            source=source,
        )
        page = feed(ctx.store, p.period, sort=p.sort, filters=p.filters, limit=limit)
        papers = [e.paper for e in page.entries]
        name = p.period.key
    out = io.StringIO()
    writer(papers, out)
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
    return Response(
        out.getvalue(),
        media_type=f"{info.media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}{info.extension}"'},
    )
