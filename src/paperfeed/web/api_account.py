"""The JSON API of people: who am I, votes, collections, subscriptions, API tokens.

Authenticate with ``Authorization: Bearer <API token>`` (made on /account or with
``paperfeed user token``); a browser session works too, but then every write needs the
``X-CSRF-Token`` header (its value is in ``GET /api/v1/me``). In single-user mode the
local user needs neither. Errors follow the API contract: 401 without a valid user, 404
for what is not yours (another user's private collection answers exactly like a missing
one), 400 for bad input, 409 for an address subscribed by someone else.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from paperfeed.digest import subscriptions as subs
from paperfeed.errors import PaperfeedError
from paperfeed.model import ApiToken, Collection, CollectionItem, Subscription, User
from paperfeed.model import SubscriptionContents as Contents
from paperfeed.web.auth import api_user, csrf_token_for, current_user
from paperfeed.web.community_pages import EXPORT_FORMATS, export_response
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.subscribe_pages import owned_subscription, save_user_subscription

router = APIRouter(prefix="/api/v1", tags=["accounts"])
Ctx = Annotated[WebContext, Depends(get_context)]


def ok(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"ok": True, **data}, status_code=status)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "is_admin": user.is_admin,
        "created_at": user.created_at.isoformat(),
    }


def collection_json(c: Collection) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "public": c.is_public,
        "size": c.size,
        "created_at": c.created_at.isoformat(),
    }


def item_json(item: CollectionItem) -> dict[str, Any]:
    return {
        "paper": item.paper.to_json(),
        "note": item.note,
        "added_at": item.added_at.isoformat(),
    }


def subscription_json(sub: Subscription) -> dict[str, Any]:
    state = "active" if sub.active else ("unsubscribed" if sub.unsubscribed_at else "unconfirmed")
    return {
        "id": sub.id,
        "email": sub.email,
        "frequency": sub.frequency,
        "contents": sub.contents.to_json(),
        "max_items": sub.max_items,
        "state": state,
        "created_at": sub.created_at.isoformat(),
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VoteIn(Body):
    paper_id: str = Field(description="Any id of the paper.")


class CollectionIn(Body):
    name: str
    public: bool = False


class CollectionPatch(Body):
    name: str | None = None
    public: bool | None = None


class ItemIn(Body):
    paper_id: str
    note: str = ""


class ContentsIn(Body):
    trending: bool = True
    for_you: bool = True
    searches: list[str] = []
    authors: list[str] = []
    categories: list[str] = []

    def contents(self) -> Contents:
        return Contents(
            trending=self.trending,
            for_you=self.for_you,
            searches=tuple(self.searches),
            authors=tuple(self.authors),
            categories=tuple(self.categories),
        )


class SubscriptionIn(Body):
    email: str
    frequency: str = "daily"
    contents: ContentsIn = ContentsIn()
    max_items: int = subs.DEFAULT_MAX_ITEMS


class SubscriptionPatch(Body):
    frequency: str | None = None
    contents: ContentsIn | None = None
    max_items: int | None = None


class TokenIn(Body):
    name: str


def _paper_id(ctx: WebContext, paper_id: str) -> str:
    paper = ctx.store.get_paper(paper_id.strip())
    if paper is None:
        raise PaperfeedError(f"paper_id: no paper with id {paper_id!r}")
    return paper.id


# -- me ------------------------------------------------------------------------------------
@router.get("/me", summary="The user these credentials act for")
def me(request: Request, ctx: Ctx) -> JSONResponse:
    """With a browser session, `csrf_token` is the value every write must send in the
    `X-CSRF-Token` header."""
    user = api_user(request)
    via_token = getattr(request.state, "pf_via_token", False)
    return ok(
        {
            "user": user_json(user),
            "single_user": ctx.auth.single_user,
            "csrf_token": None if via_token else (csrf_token_for(request) or None),
        }
    )


# -- votes -----------------------------------------------------------------------------------
@router.post("/votes", summary="Vote for a paper (one vote per user and paper)")
def vote(request: Request, ctx: Ctx, body: VoteIn) -> JSONResponse:
    user = api_user(request)
    pid = _paper_id(ctx, body.paper_id)
    votes = ctx.auth.community.vote(user, pid, up=True)
    return ok({"paper_id": pid, "voted": True, "local_votes": votes})


@router.delete("/votes/{paper_id:path}", summary="Undo a vote")
def unvote(request: Request, ctx: Ctx, paper_id: str) -> JSONResponse:
    user = api_user(request)
    pid = _paper_id(ctx, paper_id)
    votes = ctx.auth.community.vote(user, pid, up=False)
    return ok({"paper_id": pid, "voted": False, "local_votes": votes})


@router.get("/votes", summary="Which of these papers you voted for")
def voted(
    request: Request,
    ctx: Ctx,
    id: Annotated[list[str] | None, Query(description="Paper ids (repeatable).")] = None,
) -> JSONResponse:
    user = api_user(request)
    ids = [_paper_id(ctx, i) for i in id or []]
    mine = ctx.auth.community.voted(user, ids)
    return ok({"voted": [i for i in ids if i in mine]})


# -- collections -------------------------------------------------------------------------------
@router.get("/collections", summary="Your collections")
def list_collections(request: Request, ctx: Ctx) -> JSONResponse:
    user = api_user(request)
    found = ctx.auth.community.collections(user)
    return ok({"collections": [collection_json(c) for c in found]})


@router.post("/collections", summary="Create a collection", status_code=201)
def create_collection(request: Request, ctx: Ctx, body: CollectionIn) -> JSONResponse:
    user = api_user(request)
    made = ctx.auth.community.create_collection(user, body.name, public=body.public)
    return ok({"collection": collection_json(made)}, status=201)


@router.get("/collections/{collection_id}", summary="A collection and its papers")
def get_collection(request: Request, ctx: Ctx, collection_id: int) -> JSONResponse:
    """Yours, or anyone's public one (no credentials needed for those)."""
    viewer = current_user(request)
    found = ctx.auth.community.collection(viewer, collection_id)
    items = ctx.auth.community.items(viewer, collection_id)
    return ok(
        {
            "collection": collection_json(found),
            "owner": viewer is not None and viewer.id == found.user_id,
            "items": [item_json(i) for i in items],
        }
    )


@router.patch("/collections/{collection_id}", summary="Rename a collection or change who sees it")
def patch_collection(
    request: Request, ctx: Ctx, collection_id: int, body: CollectionPatch
) -> JSONResponse:
    user = api_user(request)
    changed = ctx.auth.community.update_collection(
        user, collection_id, name=body.name, public=body.public
    )
    return ok({"collection": collection_json(changed)})


@router.delete("/collections/{collection_id}", summary="Delete a collection")
def delete_collection(request: Request, ctx: Ctx, collection_id: int) -> JSONResponse:
    user = api_user(request)
    ctx.auth.community.delete_collection(user, collection_id)
    return ok({"deleted": collection_id})


@router.post(
    "/collections/{collection_id}/items",
    summary="Add a paper to a collection (or change its note)",
    status_code=201,
)
def add_item(request: Request, ctx: Ctx, collection_id: int, body: ItemIn) -> JSONResponse:
    user = api_user(request)
    pid = _paper_id(ctx, body.paper_id)
    ctx.auth.community.add(user, collection_id, pid, body.note)
    return ok({"collection_id": collection_id, "paper_id": pid, "note": body.note}, status=201)


@router.delete(
    "/collections/{collection_id}/items/{paper_id:path}",
    summary="Remove a paper from a collection",
)
def remove_item(request: Request, ctx: Ctx, collection_id: int, paper_id: str) -> JSONResponse:
    user = api_user(request)
    ctx.auth.community.remove(user, collection_id, paper_id.strip())
    return ok({"collection_id": collection_id, "removed": paper_id})


@router.get(
    "/collections/{collection_id}/export",
    summary="Export a collection as BibTeX, RIS, CSV, JSON or JSON lines",
    response_class=Response,
)
def export_collection(
    request: Request,
    ctx: Ctx,
    collection_id: int,
    format: Annotated[str, Query(description="One of: " + ", ".join(EXPORT_FORMATS))] = "bibtex",
) -> Response:
    return export_response(ctx, request, collection_id, format)


# -- subscriptions -------------------------------------------------------------------------------
@router.get("/subscriptions", summary="Your digest subscriptions")
def list_subscriptions(request: Request, ctx: Ctx) -> JSONResponse:
    user = api_user(request)
    found = ctx.store.user_subscriptions(user.id)
    return ok({"subscriptions": [subscription_json(s) for s in found]})


@router.post(
    "/subscriptions",
    summary="Subscribe an address to the digest (double opt-in)",
    status_code=201,
)
def create_subscription(request: Request, ctx: Ctx, body: SubscriptionIn) -> JSONResponse:
    """The address gets a confirmation mail; nothing is sent before it is followed. 503
    when the instance has no SMTP server (nothing is recorded then)."""
    user = api_user(request)
    sub, mailed = save_user_subscription(
        ctx,
        user,
        subscription_id=None,
        email=body.email,
        frequency=body.frequency,
        contents=body.contents.contents(),
        max_items=body.max_items,
    )
    return ok({"subscription": subscription_json(sub), "confirmation_mailed": mailed}, status=201)


@router.get("/subscriptions/{subscription_id}", summary="One of your subscriptions")
def get_subscription(request: Request, ctx: Ctx, subscription_id: int) -> JSONResponse:
    user = api_user(request)
    return ok({"subscription": subscription_json(owned_subscription(ctx, user, subscription_id))})


@router.patch("/subscriptions/{subscription_id}", summary="Change what a subscription gets")
def patch_subscription(
    request: Request, ctx: Ctx, subscription_id: int, body: SubscriptionPatch
) -> JSONResponse:
    user = api_user(request)
    sub = owned_subscription(ctx, user, subscription_id)
    changed, _ = save_user_subscription(
        ctx,
        user,
        subscription_id=sub.id,
        email=sub.email,
        frequency=body.frequency or sub.frequency,
        contents=body.contents.contents() if body.contents else sub.contents,
        max_items=body.max_items if body.max_items is not None else sub.max_items,
    )
    return ok({"subscription": subscription_json(changed)})


@router.delete("/subscriptions/{subscription_id}", summary="Unsubscribe")
def delete_subscription(request: Request, ctx: Ctx, subscription_id: int) -> JSONResponse:
    user = api_user(request)
    sub = owned_subscription(ctx, user, subscription_id)
    if sub.unsubscribed_at is None:
        sub = ctx.store.update_subscription(sub.id, unsubscribed_at=dt.datetime.now(dt.UTC))
    return ok({"subscription": subscription_json(sub)})


# -- API tokens ----------------------------------------------------------------------------------
@router.get("/tokens", summary="Your API tokens (never their secrets)")
def list_tokens(request: Request, ctx: Ctx) -> JSONResponse:
    user = api_user(request)
    return ok({"tokens": [token_json(t) for t in ctx.store.api_tokens(user.id)]})


@router.post("/tokens", summary="Create an API token; its secret is shown once", status_code=201)
def create_token(request: Request, ctx: Ctx, body: TokenIn) -> JSONResponse:
    user = api_user(request)
    made = ctx.auth.accounts.create_api_token(user, body.name)
    return ok({"token": token_json(made.token), "secret": made.secret}, status=201)


@router.delete("/tokens/{token_id}", summary="Revoke one of your API tokens")
def revoke_token(request: Request, ctx: Ctx, token_id: int) -> JSONResponse:
    user = api_user(request)
    ctx.auth.accounts.revoke_api_token(user, token_id)
    return ok({"revoked": token_id})
