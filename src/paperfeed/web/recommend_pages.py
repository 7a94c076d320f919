"""The recommender's pages: "for you", feedback forms, topics and topic feeds, the map.

Forms are plain POSTs with the CSRF field that redirect back (they work without
JavaScript). Every list comes from the library functions the CLI, the API, the RSS feeds
and the digest call: :func:`~paperfeed.recommend.for_you.for_you`, :func:`~paperfeed.
feeds.feed` with a topic filter, :func:`~paperfeed.recommend.map_image.map_points`.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.feeds import FeedPage, FeedSort, Period, feed, parse_period, parse_sort, range_period
from paperfeed.model import User
from paperfeed.recommend import feedback as fb
from paperfeed.recommend import topics as tp
from paperfeed.recommend.for_you import DEFAULT_DAYS, ForYou, default_period, for_you
from paperfeed.recommend.map_image import render_png
from paperfeed.recommend.projection import current_layout
from paperfeed.store import SearchFilters
from paperfeed.store.recommend import StoredTopic
from paperfeed.web.auth import current_user, nav_user, page_user, safe_next
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.pages import render
from paperfeed.web.recommend_state import (
    active_vectors,
    entry_marks,
    feed_token,
    query_encoder,
    wake_trainer,
)
from paperfeed.web.urls import query_string

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(get_context)]
Text = Annotated[str, Form()]

FOR_YOU_LIMIT = 30
TOPIC_PAGE_SIZE = 50
MAX_DAYS = 3660
ACTIONS = {
    "like": fb.FeedbackKind.LIKE,
    "dislike": fb.FeedbackKind.DISLIKE,
    "not-interested": fb.FeedbackKind.NOT_INTERESTED,
    "clear": fb.FeedbackKind.CLEAR,
}


# -- "for you" -------------------------------------------------------------------------------
def for_you_of(
    ctx: WebContext, user: User, *, days: int | None, everything: bool, limit: int
) -> ForYou:
    """The user's picks as every face shows them (page, API, RSS)."""
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise PaperfeedError(f"days: between 1 and {MAX_DAYS}, not {days}")
    period = None if everything else default_period(ctx.store, days or DEFAULT_DAYS)
    return for_you(
        ctx.store, active_vectors(ctx), user.id, period=period, everything=everything, limit=limit
    )


def feed_urls(request: Request, ctx: WebContext, user: User, qs: str = "") -> tuple[str, str]:
    """The RSS and Atom URLs of a user's "for you" feed; with accounts they carry the
    user's signed token (feed readers send no cookies)."""
    token = feed_token(ctx, user) if not ctx.auth.single_user else None
    extra = query_string([("token", token)])
    extra = (qs + "&" + extra[1:]) if qs and extra else (qs or extra)
    base = str(request.base_url).rstrip("/")
    return base + "/feeds/for-you.rss" + extra, base + "/feeds/for-you.atom" + extra


def _interests(ctx: WebContext, user: User) -> list[StoredTopic]:
    return [
        t
        for t in ctx.store.topics(owner_id=user.id)
        if t.owner_id == user.id and t.group == tp.INTEREST_GROUP
    ]


@router.get("/for-you", response_class=HTMLResponse, name="for_you")
def for_you_page(
    request: Request,
    ctx: Ctx,
    days: Annotated[int | None, Query(ge=1, le=MAX_DAYS)] = None,
    all: bool = False,
) -> HTMLResponse:
    user = page_user(request)
    result = for_you_of(ctx, user, days=days, everything=all, limit=FOR_YOU_LIMIT)
    qs = query_string([("days", days), ("all", "1" if all else None)])
    rss, atom = feed_urls(request, ctx, user, qs)
    liked = [f for f in ctx.store.feedback(user.id) if f.label > 0]
    return render(
        request,
        ctx,
        "for_you.html",
        {
            "result": result,
            "marks": entry_marks(ctx, user, [p.paper for p in result.picks]),
            "interests": _interests(ctx, user),
            "liked_count": len(liked),
            "days": days or DEFAULT_DAYS,
            "everything": all,
            "rss": rss,
            "atom": atom,
            "here": "/for-you" + qs,
        },
    )


@router.post("/feedback", name="feedback")
def feedback_post(
    request: Request,
    ctx: Ctx,
    paper_id: Text = "",
    action: Text = "like",
    next: Text = "",
) -> Response:
    """Like / dislike / not interested / clear, from any paper entry; back to its page."""
    user = page_user(request)
    kind = ACTIONS.get(action)
    if kind is None:
        raise PaperfeedError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    paper = ctx.store.get_paper(paper_id.strip())
    if paper is None:
        raise PaperfeedError(f"paper_id: no paper with id {paper_id!r}")
    fb.give_feedback(ctx.store, user.id, paper.id, kind)
    wake_trainer(request)
    return RedirectResponse(safe_next(next, "/for-you"), status_code=303)


@router.post("/for-you/interests", name="add_interest")
def add_interest(request: Request, ctx: Ctx, sentence: Text = "", next: Text = "") -> Response:
    """Cold start: an interest described in a sentence is a positive of the user's model."""
    user = page_user(request)
    tp.add_user_topic(ctx.store, user.id, sentence, interest=True)
    wake_trainer(request)
    return RedirectResponse(safe_next(next, "/for-you"), status_code=303)


@router.post("/topics/remove", name="remove_topic")
def remove_topic(request: Request, ctx: Ctx, key: Text = "", next: Text = "") -> Response:
    """Remove one of your topics or interests."""
    user = page_user(request)
    tp.remove_user_topic(ctx.store, user.id, key.strip())
    wake_trainer(request)
    return RedirectResponse(safe_next(next, "/topics"), status_code=303)


# -- topics ----------------------------------------------------------------------------------
@router.get("/topics", response_class=HTMLResponse, name="topics")
def topics_page(request: Request, ctx: Ctx) -> HTMLResponse:
    user = nav_user(request)
    found = tp.topic_summaries(ctx.store, user_id=user.id if user else None)
    groups = [
        ("Your topics", [s for s in found if s.topic.group == tp.USER_GROUP]),
        ("Machine-learning topics", [s for s in found if s.topic.group == tp.ML_GROUP]),
        ("arXiv computer-science categories", [s for s in found if s.topic.group == "arxiv-cs"]),
    ]
    return render(
        request,
        ctx,
        "topics.html",
        {"groups": groups, "labelled": any(s.papers for s in found), "error": None},
    )


@router.post("/topics", name="add_topic")
def add_topic(request: Request, ctx: Ctx, sentence: Text = "", name: Text = "") -> Response:
    """A topic of your own from one sentence: its papers are labelled at once."""
    user = page_user(request)
    encoder = query_encoder(ctx)
    vectors = active_vectors(ctx)
    if vectors is None:
        raise PaperfeedError("sentence: no paper is embedded yet (run 'paperfeed index')")
    topic = tp.add_user_topic(ctx.store, user.id, sentence, name=name.strip() or None)
    tp.label_topic(ctx.store, vectors, encoder, topic)
    return RedirectResponse(topic_path(topic.key), status_code=303)


def topic_path(key: str) -> str:
    return "/topics/" + key


@dataclass(frozen=True, slots=True)
class TopicFeed:
    topic: StoredTopic
    page: FeedPage
    everything: bool  # the period is every feed day (no date / week / month asked for)


def topic_feed(
    ctx: WebContext,
    user: User | None,
    key: str,
    *,
    date: str | None = None,
    week: str | None = None,
    month: str | None = None,
    sort: str | None = None,
    limit: int = TOPIC_PAGE_SIZE,
    offset: int = 0,
) -> TopicFeed:
    """A topic's feed: the papers labelled with it among those listed in a period (every
    feed day unless ``date`` / ``week`` / ``month``), newest first unless ``sort``."""
    topic = tp.find_topic(ctx.store, key, user_id=user.id if user else None)
    if topic.group == tp.INTEREST_GROUP:
        raise NotFoundError(f"no topic {key!r} (an interest labels no papers)")
    everything = not (date or week or month)
    period: Period
    if everything:
        days = ctx.store.feed_dates()
        today = dt.date.today()
        period = range_period(days[0], days[-1]) if days else range_period(today, today)
    else:
        period = parse_period(ctx.store, date=date, week=week, month=month)
    chosen = parse_sort(sort) if sort else FeedSort.DATE
    page = feed(
        ctx.store,
        period,
        sort=chosen,
        filters=SearchFilters(topics=(topic.key,)),
        limit=limit,
        offset=offset,
    )
    return TopicFeed(topic, page, everything)


@router.get("/topics/{key}", response_class=HTMLResponse, name="topic")
def topic_page(
    request: Request,
    ctx: Ctx,
    key: str,
    date: str | None = None,
    week: str | None = None,
    month: str | None = None,
    sort: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    user = nav_user(request)
    found = topic_feed(
        ctx,
        user,
        key,
        date=date,
        week=week,
        month=month,
        sort=sort,
        offset=(page - 1) * TOPIC_PAGE_SIZE,
    )
    keep: list[tuple[str, str | int | None]] = [
        ("date", date),
        ("week", week),
        ("month", month),
        ("sort", sort),
    ]
    path = topic_path(found.topic.key)
    feed_qs = query_string(keep)
    return render(
        request,
        ctx,
        "topic.html",
        {
            "topic": found.topic,
            "feed": found.page,
            "everything": found.everything,
            "marks": entry_marks(ctx, user, [e.paper for e in found.page.entries]),
            "mine": user is not None and found.topic.owner_id == user.id,
            "page": page,
            "pages": max(1, math.ceil(found.page.total / TOPIC_PAGE_SIZE)),
            "page_link": lambda n: path + query_string([*keep, ("page", n if n > 1 else None)]),
            "sort_links": [
                (s.value, path + query_string([*keep[:3], ("sort", s.value)])) for s in FeedSort
            ],
            "rss": f"/feeds/topics/{found.topic.key}.rss" + feed_qs,
            "atom": f"/feeds/topics/{found.topic.key}.atom" + feed_qs,
            "here": path + query_string([*keep, ("page", page if page > 1 else None)]),
        },
    )


# -- the map ---------------------------------------------------------------------------------
_PYPLOT = threading.Lock()  # matplotlib's pyplot keeps global state: one drawing at a time


@router.get("/map", response_class=HTMLResponse, name="map")
def map_page(request: Request, ctx: Ctx) -> HTMLResponse:
    vectors = active_vectors(ctx)
    layout = current_layout(ctx.store, vectors) if vectors is not None else None
    return render(
        request,
        ctx,
        "map.html",
        {
            "embedded": vectors is not None,
            "layout": layout.metadata if layout is not None else None,
            "stale": layout is None and ctx.store.map_layout() is not None,
        },
    )


@router.get("/map.png", name="map_png")
def map_png(request: Request, ctx: Ctx) -> Response:
    """The map as a picture (drawn per request from the stored layout)."""
    vectors = active_vectors(ctx)
    layout = current_layout(ctx.store, vectors) if vectors is not None else None
    if layout is None:
        raise NotFoundError("no current map: run 'paperfeed map' to compute it")
    user = current_user(request)
    liked = [f.paper_pk for f in ctx.store.feedback(user.id) if f.label > 0] if user else []
    points = ctx.maps.points(ctx.store, layout, liked=liked, user_id=user.id if user else None)
    with _PYPLOT, tempfile.TemporaryDirectory(prefix="paperfeed-map-") as tmp:
        out = Path(tmp) / "map.png"
        render_png(points, out, size_inches=10.0, dpi=100)
        data = out.read_bytes()
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})
