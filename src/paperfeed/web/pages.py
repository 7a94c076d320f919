"""The HTML pages: feeds, search, paper pages, the subscribe answer, the API reference.

Routes are plain ``def``: they run in the server's thread pool, where each thread has its
own store reader connection.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.feeds import (
    FeedSort,
    Period,
    PeriodKind,
    day_period,
    feed,
    month_period,
    parse_day,
    parse_month,
    parse_period,
    parse_sort,
    parse_week,
    week_period,
)
from paperfeed.search import SearchHit, SearchMode, SearchOptions
from paperfeed.web import params
from paperfeed.web.auth import nav_user
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.markdown import paper_markdown
from paperfeed.web.recommend_state import entry_marks, topic_keys
from paperfeed.web.urls import period_params, period_path, query_string

FEED_PAGE_SIZE = 50
SEARCH_PAGE_SIZE = 20
SIMILAR = 8

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(get_context)]
Categories = Annotated[list[str] | None, Query()]
Topics = Annotated[list[str] | None, Query()]
Page = Annotated[int, Query(ge=1, le=100_000)]


def render(
    request: Request, ctx: WebContext, name: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    response: HTMLResponse = ctx.templates.TemplateResponse(
        request, name, {"ctx": ctx, **context}, status_code=status
    )
    return response


def _feed_page(
    request: Request,
    ctx: WebContext,
    period: Period,
    sort: str | None,
    category: list[str] | None,
    source: str | None,
    page: int,
) -> HTMLResponse:
    chosen_sort = parse_sort(sort)
    filters = params.search_filters(category, source)
    result = feed(
        ctx.store,
        period,
        sort=chosen_sort,
        filters=filters,
        limit=FEED_PAGE_SIZE,
        offset=(page - 1) * FEED_PAGE_SIZE,
    )
    keep = [
        ("sort", chosen_sort.value if chosen_sort is not FeedSort.TRENDING else None),
        *(("category", c) for c in filters.categories),
        ("source", filters.source),
    ]
    kinds = [
        ("Day", day_period(period.end if period.kind is not PeriodKind.DAY else period.start)),
        ("Week", week_period(period.start)),
        ("Month", month_period(period.start)),
    ]
    feed_qs = query_string([*period_params(period), *keep])
    pages = max(1, math.ceil(result.total / FEED_PAGE_SIZE))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        ctx,
        "feed.html",
        {
            "feed": result,
            "period": period,
            "keep_qs": query_string(keep),
            "sort_links": [
                (
                    s.value,
                    period_path(period)
                    + query_string(
                        [("sort", s.value if s is not FeedSort.TRENDING else None), *keep[1:]]
                    ),
                )
                for s in FeedSort
            ],
            "kinds": [(label, p, p.kind is period.kind) for label, p in kinds],
            "rss": "/feeds/papers.rss" + feed_qs,
            "atom": "/feeds/papers.atom" + feed_qs,
            "page": page,
            "pages": pages,
            "page_link": lambda n: (
                period_path(period) + query_string([*keep, ("page", n if n > 1 else None)])
            ),
            "category_value": ", ".join(filters.categories),
            "voted": _voted(request, ctx, [e.paper.id for e in result.entries]),
            "marks": entry_marks(ctx, nav_user(request), [e.paper for e in result.entries]),
            "here": here,
        },
    )


def _voted(request: Request, ctx: WebContext, paper_ids: list[str]) -> set[str]:
    user = nav_user(request)
    return ctx.auth.community.voted(user, paper_ids) if user is not None else set()


@router.get("/", response_class=HTMLResponse, name="home")
def home(
    request: Request,
    ctx: Ctx,
    sort: str | None = None,
    category: Categories = None,
    source: str | None = None,
    page: Page = 1,
) -> HTMLResponse:
    period = parse_period(ctx.store)
    return _feed_page(request, ctx, period, sort, category, source, page)


@router.get("/papers", name="papers_redirect")
def papers_redirect(
    request: Request,
    ctx: Ctx,
    date: str | None = None,
    week: str | None = None,
    month: str | None = None,
) -> Response:
    """The date picker's target: redirect to the canonical URL of the period."""
    period = parse_period(ctx.store, date=date, week=week, month=month)
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in {"date", "week", "month", "page"}
    ]
    return RedirectResponse(period_path(period) + query_string(kept), status_code=303)


@router.get("/papers/date/{day}", response_class=HTMLResponse, name="feed_day")
def feed_day(
    request: Request,
    ctx: Ctx,
    day: str,
    sort: str | None = None,
    category: Categories = None,
    source: str | None = None,
    page: Page = 1,
) -> HTMLResponse:
    period = day_period(parse_day(day))
    return _feed_page(request, ctx, period, sort, category, source, page)


@router.get("/papers/week/{week}", response_class=HTMLResponse, name="feed_week")
def feed_week(
    request: Request,
    ctx: Ctx,
    week: str,
    sort: str | None = None,
    category: Categories = None,
    source: str | None = None,
    page: Page = 1,
) -> HTMLResponse:
    return _feed_page(request, ctx, parse_week(week), sort, category, source, page)


@router.get("/papers/month/{month}", response_class=HTMLResponse, name="feed_month")
def feed_month(
    request: Request,
    ctx: Ctx,
    month: str,
    sort: str | None = None,
    category: Categories = None,
    source: str | None = None,
    page: Page = 1,
) -> HTMLResponse:
    return _feed_page(request, ctx, parse_month(month), sort, category, source, page)


@router.get("/search", response_class=HTMLResponse, name="search")
def search_page(
    request: Request,
    ctx: Ctx,
    q: str | None = None,
    mode: str | None = None,
    category: Categories = None,
    source: str | None = None,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
    topic: Topics = None,
    page: Page = 1,
) -> HTMLResponse:
    engine = ctx.engine
    text = params.query_text(q)
    chosen = params.search_mode(mode, engine)
    user = nav_user(request)
    topics = topic_keys(ctx, user, topic)
    filters = params.search_filters(category, source, date_from, date_to, topics)
    results = None
    if text:
        options = SearchOptions(
            mode=chosen,
            limit=SEARCH_PAGE_SIZE,
            offset=(page - 1) * SEARCH_PAGE_SIZE,
            filters=filters,
        )
        results = engine.search(text, options)
    keep = [
        ("q", text),
        ("mode", mode),
        *(("category", c) for c in filters.categories),
        ("source", filters.source),
        ("from", filters.date_from.isoformat() if filters.date_from else None),
        ("to", filters.date_to.isoformat() if filters.date_to else None),
        *(("topic", t) for t in filters.topics),
    ]
    pages = max(1, math.ceil(results.total / SEARCH_PAGE_SIZE)) if results else 1
    shown = [h.paper for h in results.hits] if results else []
    return render(
        request,
        ctx,
        "search.html",
        {
            "q": text,
            "mode": chosen,
            "modes": list(SearchMode),
            "semantic": engine.semantic_available,
            "engine_note": ctx.engines.note,
            "filters": filters,
            "category_value": ", ".join(filters.categories),
            "results": results,
            "page": page,
            "pages": pages,
            "page_link": lambda n: (
                "/search" + query_string([*keep, ("page", n if n > 1 else None)])
            ),
            "rss": "/feeds/search.rss" + query_string(keep) if text else None,
            "atom": "/feeds/search.atom" + query_string(keep) if text else None,
            "topic_value": ", ".join(filters.topics),
            "marks": entry_marks(ctx, user, shown),
            "here": "/search" + query_string([*keep, ("page", page if page > 1 else None)]),
        },
    )


def _similar(ctx: WebContext, paper_id: str) -> tuple[list[SearchHit], str | None]:
    engine = ctx.engine
    if not engine.semantic_available:
        return [], ctx.engines.note or (
            "Similar papers need the embedding index: run 'paperfeed index'."
        )
    try:
        return engine.similar(paper_id, limit=SIMILAR), None
    except NotFoundError:
        raise
    except PaperfeedError as exc:
        return [], str(exc)


@router.get("/papers/{paper_id:path}", name="paper")
def paper_page(request: Request, ctx: Ctx, paper_id: str) -> Response:
    markdown = paper_id.endswith(".md")
    wanted = paper_id[:-3] if markdown else paper_id
    paper = ctx.store.get_paper(wanted)
    if paper is None:
        raise NotFoundError(f"no paper with id {wanted!r}")
    appearances = ctx.store.appearances(paper.id)
    if markdown:
        return PlainTextResponse(
            paper_markdown(paper, appearances), media_type="text/markdown; charset=utf-8"
        )
    similar, similar_note = _similar(ctx, paper.id)
    user = nav_user(request)
    local_votes = ctx.store.vote_counts([paper.id]).get(paper.id, 0)
    return render(
        request,
        ctx,
        "paper.html",
        {
            "paper": paper,
            "appearances": appearances,
            "similar": similar,
            "similar_note": similar_note,
            "export_qs": query_string([("id", paper.id)]),
            "votes": (paper.upvotes or 0) + local_votes,
            "voted": _voted(request, ctx, [paper.id]),
            "collections": ctx.auth.community.collections(user) if user else [],
            "marks": entry_marks(ctx, user, [paper]),
            "submitted": request.query_params.get("submitted"),
        },
    )


@router.get("/favicon.ico", name="favicon")
def favicon() -> Response:
    """Browsers ask for it on pages without a <link rel="icon"> (the digest preview)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/docs", response_class=HTMLResponse, name="api_docs")
def api_docs(request: Request, ctx: Ctx) -> HTMLResponse:
    """The OpenAPI description rendered as a page (no Swagger UI: nothing from a CDN)."""
    schema = request.app.openapi()
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tag": (op.get("tags") or ["other"])[0],
                    "parameters": op.get("parameters", []),
                }
            )
    return render(request, ctx, "api_docs.html", {"schema": schema, "operations": operations})
