"""The recommender's JSON API: "for you", feedback, topics and topic feeds, the map.

Same contract as the rest of ``/api/v1``: ``ok`` in every answer, errors as
``{"ok": false, "error": "...", "status": N}``. "You" is the API token's account, the
session's, or the local user in single-user mode.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.feeds import MAX_LIMIT
from paperfeed.recommend import feedback as fb
from paperfeed.recommend import topics as tp
from paperfeed.recommend.map_image import OTHER_COLOUR, coloured_topics
from paperfeed.recommend.projection import current_layout
from paperfeed.web.api_v1 import feed_json, ok
from paperfeed.web.auth import api_user, nav_user
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.recommend_pages import ACTIONS, MAX_DAYS, for_you_of, topic_feed
from paperfeed.web.recommend_state import active_vectors, wake_trainer

router = APIRouter(prefix="/api/v1", tags=["recommendations"])
Ctx = Annotated[WebContext, Depends(get_context)]


@router.get("/for-you", summary="Your picks among the new papers, each with its reason")
def get_for_you(
    request: Request,
    ctx: Ctx,
    days: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_DAYS,
            description="Papers of the last N days up to the latest feed day (default 7).",
        ),
    ] = None,
    all: Annotated[bool, Query(description="Rank every embedded paper instead.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> JSONResponse:
    """`status` is `ok`, `no-feedback` (like papers or add an interest first), `training`
    (the first model is being trained), `no-vectors` or `stale`. Each pick has `reason`
    ("close to “A” (0.71) · model 0.93") and `because`: the liked papers (or interest
    sentences) it is closest to, with their cosine similarities."""
    user = api_user(request)
    result = for_you_of(ctx, user, days=days, everything=all, limit=limit)
    return ok(result.to_json())


class FeedbackIn(BaseModel):
    paper_id: str = Field(description="Any id of the paper (arXiv id, DOI, paperfeed id).")
    action: str = Field(
        "like", description="`like`, `dislike`, `not-interested` (a dislike) or `clear`."
    )
    tag: str | None = Field(None, description="Save to / judge within this tag instead.")


@router.post("/feedback", summary="Like, dislike or clear a paper (teaches your model)")
def post_feedback(request: Request, ctx: Ctx, body: FeedbackIn) -> JSONResponse:
    """Models are retrained in the background: `/for-you` follows within seconds. With a
    session cookie instead of a token, send the page's CSRF token as `X-CSRF-Token`."""
    user = api_user(request)
    kind = ACTIONS.get(body.action)
    if kind is None:
        raise PaperfeedError(f"action: {body.action!r} is not one of {', '.join(ACTIONS)}")
    paper = ctx.store.get_paper(body.paper_id.strip())
    if paper is None:
        raise NotFoundError(f"no paper with id {body.paper_id!r}")
    if kind is fb.FeedbackKind.LIKE and body.tag:
        kind = fb.FeedbackKind.SAVE
    fb.give_feedback(ctx.store, user.id, paper.id, kind, body.tag)
    wake_trainer(request)
    return ok({"paper_id": paper.id, "action": body.action, "tag": body.tag or ""})


@router.get("/topics", summary="Every topic (default taxonomy and yours) with its papers")
def get_topics(request: Request, ctx: Ctx) -> JSONResponse:
    user = nav_user(request)
    found = tp.topic_summaries(ctx.store, user_id=user.id if user else None)
    return ok({"topics": [s.to_json() for s in found]})


@router.get("/topics/{key}", summary="A topic feed: the papers labelled with a topic")
def get_topic(
    request: Request,
    ctx: Ctx,
    key: str,
    date: Annotated[str | None, Query(description="A feed day (YYYY-MM-DD, `latest`).")] = None,
    week: Annotated[str | None, Query(description="An ISO week (YYYY-Www).")] = None,
    month: Annotated[str | None, Query(description="A month (YYYY-MM).")] = None,
    sort: Annotated[
        str | None, Query(description="`date` (newest first, default) or `trending`.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    """The papers listed on any feed day (or in `date` / `week` / `month`) that carry the
    topic `key` (`cs.CL`, `ml.diffusion-models`, or its exact name)."""
    user = nav_user(request)
    found = topic_feed(
        ctx, user, key, date=date, week=week, month=month, sort=sort, limit=limit, offset=offset
    )
    t = found.topic
    topic = {"key": t.key, "name": t.name, "description": t.description, "group": t.group}
    return ok({"topic": topic, **feed_json(found.page)})


@router.get("/map", summary="The 2-D map of the corpus: positions, topics, your likes")
def get_map(request: Request, ctx: Ctx) -> JSONResponse:
    """Columns of equal length (`x`, `y` in [-1, 1], `topic` an index into `topics` or -1,
    `liked`, `id`, `title`). `available` is false, with a `hint`, while no current map is
    stored (`paperfeed map` computes it)."""
    vectors = active_vectors(ctx)
    layout = current_layout(ctx.store, vectors) if vectors is not None else None
    if layout is None:
        hint = (
            "nothing is embedded yet: run 'paperfeed index', then 'paperfeed map'"
            if vectors is None
            else "no map of the current papers yet: run 'paperfeed map'"
        )
        return ok({"available": False, "hint": hint})
    user = nav_user(request)
    liked = [f.paper_pk for f in ctx.store.feedback(user.id) if f.label > 0] if user else []
    points = ctx.maps.points(ctx.store, layout, liked=liked, user_id=user.id if user else None)
    legend = coloured_topics(points)
    index = {name: i for i, (name, _, _) in enumerate(legend)}
    data: dict[str, Any] = {
        "available": True,
        "method": layout.metadata.get("method"),
        "computed_at": layout.metadata.get("computed_at"),
        "papers": len(points),
        "topics": [{"name": n, "papers": c, "colour": colour} for n, c, colour in legend],
        "other_colour": OTHER_COLOUR,
        "x": [round(p.x, 4) for p in points],
        "y": [round(p.y, 4) for p in points],
        "topic": [index.get(p.topic, -1) for p in points],
        "liked": [p.liked for p in points],
        "id": [p.paper_id for p in points],
        "title": [p.title for p in points],
    }
    return ok(data)
