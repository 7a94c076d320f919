"""The Hugging Face-compatible papers API, so ``huggingface_hub`` clients work unchanged.

``HfApi(endpoint="http://host:port")`` then ``list_daily_papers``, ``list_papers``,
``paper_info`` and ``read_paper`` (``/papers/{id}.md`` lives with the pages). The JSON
shapes are those of huggingface.co: a daily entry is ``{paper: {...}, title, summary,
publishedAt, ...}`` and a paper ``{id, title, summary, authors: [{name}], publishedAt,
upvotes, ...}``. Fields this instance has no data for (submitters, comments, thumbnails,
AI summaries) are left out or empty. Errors keep the app's contract (``{"error": ...}`` is
also what the client reads).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.feeds import FeedSort, Period, feed, parse_period, range_period
from paperfeed.model import Paper
from paperfeed.search import SearchOptions
from paperfeed.web import params
from paperfeed.web.context import WebContext, get_context

router = APIRouter(prefix="/api", tags=["hugging face compatible"])
Ctx = Annotated[WebContext, Depends(get_context)]
MAX_HF_LIMIT = 100

_SORTS = {"publishedAt": FeedSort.DATE, "trending": FeedSort.TRENDING}


def _timestamp(day: dt.date | None) -> str | None:
    return None if day is None else f"{day.isoformat()}T00:00:00.000Z"


def hf_paper(paper: Paper, listed: dt.date | None, votes: int | None = None) -> dict[str, Any]:
    """``votes``: the feed's count (imported upvotes + local votes) when known."""
    data: dict[str, Any] = {
        "id": paper.arxiv_id or paper.id,
        "title": paper.title,
        "summary": paper.abstract,
        "authors": [{"name": a, "hidden": False} for a in paper.authors],
        "publishedAt": _timestamp(paper.published or listed),
        "upvotes": votes if votes is not None else (paper.upvotes or 0),
    }
    if listed is not None:
        data["submittedOnDailyAt"] = _timestamp(listed)
    if paper.links.project:
        data["projectPage"] = paper.links.project
    if paper.links.code and "github.com" in paper.links.code:
        data["githubRepo"] = paper.links.code
    return data


def hf_entry(paper: Paper, listed: dt.date | None, votes: int | None = None) -> dict[str, Any]:
    return {
        "paper": hf_paper(paper, listed, votes),
        "title": paper.title,
        "summary": paper.abstract,
        "publishedAt": _timestamp(listed or paper.published),
        "numComments": 0,
        "mediaUrls": [],
        "isAuthorParticipating": False,
    }


def _period(ctx: WebContext, date: str | None, week: str | None, month: str | None) -> Period:
    if date or week or month:
        return parse_period(ctx.store, date=date, week=week, month=month)
    # No period: the most recent papers across every feed day, as on huggingface.co.
    latest = ctx.store.latest_feed_day() or dt.date.today()
    return range_period(dt.date(1, 1, 1), latest)


@router.get("/daily_papers", summary="Daily papers (huggingface.co shape)")
def daily_papers(
    ctx: Ctx,
    date: Annotated[str | None, Query(description="A feed day, YYYY-MM-DD.")] = None,
    week: Annotated[str | None, Query(description="An ISO week, YYYY-Www.")] = None,
    month: Annotated[str | None, Query(description="A month, YYYY-MM.")] = None,
    submitter: Annotated[
        str | None,
        Query(description="Submitter user name (this instance has none: an empty list)."),
    ] = None,
    sort: Annotated[str, Query(description="`publishedAt` (default) or `trending`.")] = (
        "publishedAt"
    ),
    p: Annotated[int, Query(ge=0, description="Page number, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_HF_LIMIT)] = 50,
) -> JSONResponse:
    chosen = _SORTS.get(sort)
    if chosen is None:
        raise PaperfeedError(f"sort: {sort!r} is not one of {', '.join(_SORTS)}")
    period = _period(ctx, date, week, month)
    if submitter:
        return JSONResponse([])
    page = feed(ctx.store, period, sort=chosen, limit=limit, offset=p * limit, navigation=False)
    return JSONResponse([hf_entry(e.paper, e.day, e.votes) for e in page.entries])


@router.get("/papers/search", summary="Search papers (huggingface.co shape)")
def papers_search(
    ctx: Ctx,
    q: Annotated[str | None, Query(description="The query.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HF_LIMIT)] = 50,
) -> JSONResponse:
    text = params.query_text(q)
    if not text:
        period = _period(ctx, None, None, None)
        page = feed(ctx.store, period, sort=FeedSort.DATE, limit=limit, navigation=False)
        return JSONResponse([hf_entry(e.paper, e.day, e.votes) for e in page.entries])
    engine = ctx.engine
    options = SearchOptions(mode=params.search_mode(None, engine), limit=limit)
    hits = engine.search(text, options).hits
    return JSONResponse([hf_entry(h.paper, _first_listed(ctx, h.paper)) for h in hits])


def _first_listed(ctx: WebContext, paper: Paper) -> dt.date | None:
    days = [a.feed_date for a in ctx.store.appearances(paper.id) if a.feed_date]
    return min(days) if days else None


@router.get("/papers/{paper_id:path}", summary="One paper (huggingface.co shape)")
def paper_info(ctx: Ctx, paper_id: str) -> JSONResponse:
    paper = ctx.store.get_paper(paper_id)
    if paper is None:
        raise NotFoundError(f"no paper with id {paper_id!r}")
    return JSONResponse(hf_paper(paper, _first_listed(ctx, paper)))
