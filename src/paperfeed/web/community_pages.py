"""Votes, collections and submitting a paper: the pages and their forms.

Who may see or change a collection is decided by :class:`~paperfeed.accounts.community.
Community`: another user's private collection is a 404, exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperfeed.errors import PaperfeedError
from paperfeed.export import EXPORTERS
from paperfeed.web.auth import current_user, page_user, safe_next
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.pages import render
from paperfeed.web.submit import submit_paper
from paperfeed.web.urls import paper_path

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(get_context)]
Text = Annotated[str, Form()]
EXPORT_FORMATS = ("bibtex", "ris", "csv", "json", "jsonl")


def _known_paper(ctx: WebContext, paper_id: str) -> str:
    paper = ctx.store.get_paper(paper_id.strip())
    if paper is None:
        raise PaperfeedError(f"paper_id: no paper with id {paper_id!r}")
    return paper.id


@router.post("/vote", name="vote")
def vote(
    request: Request,
    ctx: Ctx,
    paper_id: Text = "",
    action: Text = "up",
    next: Text = "",
) -> Response:
    """Vote for a paper, or undo the vote (``action=undo``); back to the page it was on."""
    user = page_user(request)
    if action not in ("up", "undo"):
        raise PaperfeedError(f"action: {action!r} is not 'up' or 'undo'")
    pid = _known_paper(ctx, paper_id)
    ctx.auth.community.vote(user, pid, up=action == "up")
    return RedirectResponse(safe_next(next, "/"), status_code=303)


# -- collections ---------------------------------------------------------------------------
@router.get("/collections", response_class=HTMLResponse, name="collections")
def collections(request: Request, ctx: Ctx) -> HTMLResponse:
    user = page_user(request)
    return render(
        request, ctx, "collections.html", {"collections": ctx.auth.community.collections(user)}
    )


@router.post("/collections", name="create_collection")
def create_collection(
    request: Request,
    ctx: Ctx,
    name: Text = "",
    public: Text = "",
    paper_id: Text = "",
    note: Text = "",
) -> Response:
    """A new collection (from the collections page, or from a paper page with a paper)."""
    user = page_user(request)
    pid = _known_paper(ctx, paper_id) if paper_id.strip() else None
    made = ctx.auth.community.create_collection(user, name, public=bool(public))
    if pid is not None:
        ctx.auth.community.add(user, made.id, pid, note)
    return RedirectResponse(f"/collections/{made.id}", status_code=303)


@router.get("/collections/{collection_id}", response_class=HTMLResponse, name="collection")
def collection(request: Request, ctx: Ctx, collection_id: int) -> HTMLResponse:
    viewer = current_user(request)
    found = ctx.auth.community.collection(viewer, collection_id)
    items = ctx.auth.community.items(viewer, collection_id)
    owner = viewer is not None and viewer.id == found.user_id
    return render(
        request,
        ctx,
        "collection.html",
        {
            "collection": found,
            "items": items,
            "owner": owner,
            "formats": EXPORT_FORMATS,
        },
    )


@router.post("/collections/{collection_id}/edit", name="edit_collection")
def edit_collection(
    request: Request, ctx: Ctx, collection_id: int, name: Text = "", public: Text = ""
) -> Response:
    user = page_user(request)
    ctx.auth.community.update_collection(
        user, collection_id, name=name if name.strip() else None, public=bool(public)
    )
    return RedirectResponse(f"/collections/{collection_id}", status_code=303)


@router.post("/collections/{collection_id}/delete", name="delete_collection")
def delete_collection(request: Request, ctx: Ctx, collection_id: int) -> Response:
    user = page_user(request)
    ctx.auth.community.delete_collection(user, collection_id)
    return RedirectResponse("/collections", status_code=303)


@router.post("/collections/{collection_id}/add", name="add_to_collection")
def add_to_collection(
    request: Request,
    ctx: Ctx,
    collection_id: int,
    paper_id: Text = "",
    note: Text = "",
    next: Text = "",
) -> Response:
    user = page_user(request)
    pid = _known_paper(ctx, paper_id)
    ctx.auth.community.add(user, collection_id, pid, note)
    return RedirectResponse(safe_next(next, f"/collections/{collection_id}"), status_code=303)


@router.post("/collections/add", name="add_to_chosen_collection")
def add_to_chosen_collection(
    request: Request,
    ctx: Ctx,
    collection_id: Annotated[int, Form()],
    paper_id: Text = "",
    note: Text = "",
    next: Text = "",
) -> Response:
    """The paper page's form, where the collection is picked from a list."""
    return add_to_collection(request, ctx, collection_id, paper_id, note, next)


@router.post("/collections/{collection_id}/remove", name="remove_from_collection")
def remove_from_collection(
    request: Request, ctx: Ctx, collection_id: int, paper_id: Text = ""
) -> Response:
    user = page_user(request)
    ctx.auth.community.remove(user, collection_id, paper_id.strip())
    return RedirectResponse(f"/collections/{collection_id}", status_code=303)


def export_response(ctx: WebContext, request: Request, collection_id: int, fmt: str) -> Response:
    info = EXPORTERS.get(fmt)
    if info is None or fmt not in EXPORT_FORMATS:
        raise PaperfeedError(f"format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    viewer = current_user(request)
    found = ctx.auth.community.collection(viewer, collection_id)
    out = io.StringIO()
    ctx.auth.community.export(viewer, collection_id, fmt, out)
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in found.name) or "collection"
    return Response(
        out.getvalue(),
        media_type=f"{info.media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{safe}{info.extension}"'},
    )


@router.get("/collections/{collection_id}/export", name="export_collection")
def export_collection(
    request: Request,
    ctx: Ctx,
    collection_id: int,
    format: Annotated[str, Query()] = "bibtex",
) -> Response:
    return export_response(ctx, request, collection_id, format)


# -- submit a paper ----------------------------------------------------------------------------
@router.get("/submit", response_class=HTMLResponse, name="submit")
def submit_page(request: Request, ctx: Ctx) -> HTMLResponse:
    page_user(request)
    return render(request, ctx, "submit.html", {"ref": ""})


@router.post("/submit", name="submit_post")
def submit(request: Request, ctx: Ctx, ref: Text = "") -> Response:
    """An arXiv id or URL: fetched (when there is a network), then listed on today's feed."""
    page_user(request)
    try:
        result = submit_paper(ctx.settings, ctx.store, ref, today=dt.date.today())
    except PaperfeedError as exc:
        return render(
            request, ctx, "submit.html", {"ref": ref, "error": str(exc)}, status=exc.status
        )
    return RedirectResponse(
        paper_path(result.paper_id) + f"?submitted={'new' if result.fetched else 'known'}",
        status_code=303,
    )
