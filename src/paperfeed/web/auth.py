"""Who is asking, and whether a write really comes from this site's own pages.

- **Who**: a ``Authorization: Bearer pf_...`` API token, else the session cookie, else (in
  single-user mode) the instance's local user, who needs no log-in.
- **Sessions**: the ``pf_session`` cookie holds the session secret (the store keeps only its
  hash); ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` when the request came over https
  (uvicorn reads ``X-Forwarded-Proto`` from a trusted proxy) or ``[web] secure_cookies``.
- **CSRF**: every unsafe request (POST, PUT, PATCH, DELETE) must carry a token, in the
  ``csrf_token`` form field or the ``X-CSRF-Token`` header, equal to an HMAC of the
  ``pf_csrf`` cookie and the session with the instance secret. A cross-site page can
  neither read the cookie nor compute the HMAC. Requests with a Bearer token are exempt
  (browsers never add that header by themselves), and so is the RFC 8058 one-click
  unsubscribe, whose signed link is its own authorization.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from urllib.parse import quote

from fastapi import Request, Response
from markupsafe import Markup, escape
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperfeed.accounts import Accounts, AuthError, ForbiddenError
from paperfeed.accounts.community import Community
from paperfeed.accounts.service import local_user
from paperfeed.accounts.signing import instance_secret
from paperfeed.errors import PaperfeedError
from paperfeed.model import User
from paperfeed.store import Store
from paperfeed.web.config import WebConfig

SESSION_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The signed token in the URL authorizes these; RFC 8058 clients post no CSRF token.
CSRF_EXEMPT = frozenset({"/unsubscribe"})
# Paths whose pages hold forms (everything but the APIs, feeds and static files).
_NO_CSRF_COOKIE = ("/api/", "/static/", "/feeds/", "/openapi.json")


class LoginRequired(PaperfeedError):
    """A page that needs a logged-in user; pages answer with a redirect to /login."""

    status = 401


class Auth:
    """Accounts, votes and collections, and the request-level rules of the web app."""

    def __init__(self, store: Store, config: WebConfig) -> None:
        self.store = store
        self.config = config
        self.accounts = Accounts(store)
        self.community = Community(store)
        self._secret = instance_secret(store)
        self._local: User | None = None
        self._lock = threading.Lock()

    @property
    def single_user(self) -> bool:
        return not self.config.accounts

    def local_user(self) -> User:
        """The laptop user of single-user mode (see :func:`paperfeed.accounts.service.local_user`;
        ``paperfeed user set-password local`` gives it a password, e.g. before turning
        accounts on)."""
        if self._local is None:
            with self._lock:
                if self._local is None:
                    self._local = local_user(self.store)
        return self._local

    # -- CSRF --------------------------------------------------------------------------
    def csrf_token(self, csrf_cookie: str, session: str | None) -> str:
        message = f"csrf\n{csrf_cookie}\n{session or ''}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def csrf_valid(self, csrf_cookie: str | None, session: str | None, token: str | None) -> bool:
        if not csrf_cookie or not token:
            return False
        return hmac.compare_digest(self.csrf_token(csrf_cookie, session), token)


def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.ctx.auth
    return auth


def secure_request(request: Request, config: WebConfig) -> bool:
    return config.secure_cookies or request.url.scheme == "https"


# -- the CSRF cookie ------------------------------------------------------------------------
class CsrfCookie:
    """Gives every browser a ``pf_csrf`` cookie on its first page (pure ASGI: no body
    buffering). The value of a new cookie is put in ``scope['state']`` so the very page
    that sets it can already render forms with a valid token."""

    def __init__(self, app: ASGIApp, config: WebConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_NO_CSRF_COOKIE):
            await self.app(scope, receive, send)
            return
        cookies: dict[str, str] = {}
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies.update(cookie_parser(value.decode("latin-1")))
        if cookies.get(CSRF_COOKIE):
            await self.app(scope, receive, send)
            return
        value = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["new_csrf_cookie"] = value
        secure = self.config.secure_cookies or scope.get("scheme") == "https"
        header = f"{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if secure else ""
        )

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"set-cookie", header.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_cookie)


def csrf_cookie_of(request: Request) -> str | None:
    return request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)


def csrf_token_for(request: Request) -> str:
    cookie = csrf_cookie_of(request)
    if cookie is None:  # an API or feed path: no forms there
        return ""
    return get_auth(request).csrf_token(cookie, request.cookies.get(SESSION_COOKIE))


def csrf_field(request: Request) -> Markup:
    """The hidden input every form of every template carries."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, escape(csrf_token_for(request))
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("Authorization: use 'Bearer <API token>'")
    return value.strip()


async def csrf_guard(request: Request) -> None:
    """An app-wide dependency: refuse unsafe requests without a valid CSRF token."""
    if request.method in SAFE_METHODS or request.url.path in CSRF_EXEMPT:
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # token-authenticated (checked by the route's user lookup); no cookie at play
    token = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if token is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    auth = get_auth(request)
    if not auth.csrf_valid(
        request.cookies.get(CSRF_COOKIE), request.cookies.get(SESSION_COOKIE), token
    ):
        raise ForbiddenError(
            "this form is missing its CSRF token or the token is stale: "
            "reload the page and try again"
        )


# -- who is asking ---------------------------------------------------------------------------
_UNSET = object()  # "not looked up yet" (None means: looked up, nobody)


def current_user(request: Request) -> User | None:
    """The user of this request (token, session, or the local user), cached per request."""
    cached = getattr(request.state, "pf_user", _UNSET)
    if cached is None or isinstance(cached, User):
        return cached
    auth = get_auth(request)
    user: User | None
    token = _bearer(request)
    if token is not None:
        user = auth.accounts.api_token_user(token)
        if user is None:
            raise AuthError("the API token is not valid (revoked or mistyped)")
        request.state.pf_via_token = True
    else:
        user = auth.accounts.session_user(request.cookies.get(SESSION_COOKIE))
        if user is None and auth.single_user:
            user = auth.local_user()
    request.state.pf_user = user
    return user


def page_user(request: Request) -> User:
    """The user a page acts for; a LoginRequired (a redirect to /login) otherwise."""
    user = current_user(request)
    if user is None:
        raise LoginRequired("log in first")
    return user


def api_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise AuthError("log in or send 'Authorization: Bearer <API token>'")
    return user


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to (never another site: no scheme, no '//')."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_request(request, get_auth(request).config),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_request(request, get_auth(request).config),
    )


def nav_user(request: Request) -> User | None:
    """The user shown in the header (None when logged out; never raises)."""
    try:
        return current_user(request)
    except PaperfeedError:
        return None


def accounts_enabled(request: Request) -> bool:
    return not get_auth(request).single_user
