"""Account pages: sign up, log in, log out, and /account (password, API tokens, the
digest subscriptions, deleting the account). The library (:class:`Accounts`) does the
work; these routes read forms, call it, and set or clear the session cookie."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperfeed.accounts import AuthError, LoginResult, NewToken
from paperfeed.accounts.service import SESSION_LIFETIME
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import User
from paperfeed.web.auth import (
    SESSION_COOKIE,
    clear_session_cookie,
    page_user,
    safe_next,
    set_session_cookie,
)
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.pages import render

router = APIRouter(include_in_schema=False)
Ctx = Annotated[WebContext, Depends(get_context)]
Text = Annotated[str, Form()]


def _accounts_on(ctx: WebContext) -> None:
    if ctx.auth.single_user:
        raise NotFoundError(
            "this instance runs in single-user mode: there are no accounts to sign up or "
            "log in to (start it with 'paperfeed serve --accounts' for a shared instance)"
        )


def _logged_in(request: Request, result: LoginResult, next_path: str) -> Response:
    response = RedirectResponse(safe_next(next_path, "/account"), status_code=303)
    max_age = int(SESSION_LIFETIME.total_seconds())
    set_session_cookie(response, request, result.session_token, max_age)
    return response


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/signup", response_class=HTMLResponse, name="signup")
def signup_page(request: Request, ctx: Ctx, next: str | None = None) -> HTMLResponse:
    _accounts_on(ctx)
    return render(request, ctx, "signup.html", {"next": safe_next(next, "/account")})


@router.post("/signup", name="signup_post")
def signup(
    request: Request,
    ctx: Ctx,
    username: Text = "",
    password: Text = "",
    password2: Text = "",
    email: Text = "",
    next: Text = "",
) -> Response:
    _accounts_on(ctx)
    values = {"username": username, "email": email, "next": safe_next(next, "/account")}
    try:
        if password != password2:
            raise PaperfeedError("the two passwords differ")
        user = ctx.auth.accounts.sign_up(username, password, email=email.strip() or None)
    except PaperfeedError as exc:
        return render(request, ctx, "signup.html", {**values, "error": str(exc)}, status=400)
    return _logged_in(request, ctx.auth.accounts.start_session(user), next)


@router.get("/login", response_class=HTMLResponse, name="login")
def login_page(request: Request, ctx: Ctx, next: str | None = None) -> HTMLResponse:
    _accounts_on(ctx)
    return render(request, ctx, "login.html", {"next": safe_next(next, "/")})


@router.post("/login", name="login_post")
def login(
    request: Request,
    ctx: Ctx,
    username: Text = "",
    password: Text = "",
    next: Text = "",
) -> Response:
    _accounts_on(ctx)
    try:
        result = ctx.auth.accounts.log_in(username, password, client=_client(request))
    except AuthError as exc:  # a wrong password: the form again (429 goes to the error page)
        values = {"username": username, "next": safe_next(next, "/"), "error": str(exc)}
        return render(request, ctx, "login.html", values, status=401)
    return _logged_in(request, result, next)


@router.post("/logout", name="logout")
def logout(request: Request, ctx: Ctx) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        ctx.auth.accounts.log_out(token)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response, request)
    return response


# -- /account --------------------------------------------------------------------------------
def account_page(
    request: Request,
    ctx: Ctx,
    user: User,
    *,
    status: int = 200,
    new_token: NewToken | None = None,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "user": user,
        "tokens": ctx.store.api_tokens(user.id),
        "subscriptions": ctx.store.user_subscriptions(user.id),
        "collections": ctx.store.collections(user.id),
        "new_token": new_token,
        "notice": notice,
        "error": error,
        "single_user": ctx.auth.single_user,
    }
    return render(request, ctx, "account.html", values, status=status)


@router.get("/account", response_class=HTMLResponse, name="account")
def account(request: Request, ctx: Ctx, notice: str | None = None) -> HTMLResponse:
    notices = {
        "password": "Your password was changed; other sessions were logged out.",
        "revoked": "The token was revoked.",
        "subscription": "Your subscription settings were saved.",
        "unsubscribed": "That subscription will send nothing more.",
    }
    return account_page(request, ctx, page_user(request), notice=notices.get(notice or ""))


@router.post("/account/password", name="change_password")
def change_password(
    request: Request,
    ctx: Ctx,
    old_password: Text = "",
    new_password: Text = "",
    new_password2: Text = "",
) -> Response:
    user = page_user(request)
    _accounts_on(ctx)
    try:
        if new_password != new_password2:
            raise PaperfeedError("the two new passwords differ")
        result = ctx.auth.accounts.change_password(user, old_password, new_password)
    except PaperfeedError as exc:
        return account_page(request, ctx, user, status=400, error=f"Password: {exc}")
    return _logged_in(request, result, "/account?notice=password")


@router.post("/account/tokens", response_class=HTMLResponse, name="create_token")
def create_token(request: Request, ctx: Ctx, name: Text = "") -> HTMLResponse:
    user = page_user(request)
    try:
        created = ctx.auth.accounts.create_api_token(user, name)
    except PaperfeedError as exc:
        return account_page(request, ctx, user, status=400, error=f"API token: {exc}")
    # Shown on this answer only: the store keeps the token's hash, never the token.
    response = account_page(request, ctx, user, new_token=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/tokens/{token_id}/revoke", name="revoke_token")
def revoke_token(request: Request, ctx: Ctx, token_id: int) -> Response:
    user = page_user(request)
    ctx.auth.accounts.revoke_api_token(user, token_id)
    return RedirectResponse("/account?notice=revoked", status_code=303)


@router.post("/account/delete", name="delete_account")
def delete_account(request: Request, ctx: Ctx, password: Text = "") -> Response:
    user = page_user(request)
    _accounts_on(ctx)
    try:
        ctx.auth.accounts.delete_account(user, password)
    except AuthError as exc:
        return account_page(request, ctx, user, status=401, error=f"Delete account: {exc}")
    response = render(
        request,
        ctx,
        "message.html",
        {
            "title": "Your account is deleted",
            "message": f"The account {user.username} and everything that was yours "
            "(votes, collections, API tokens, subscriptions) are gone.",
        },
    )
    clear_session_cookie(response, request)
    return response
