"""One error contract for the whole app (after datasette's handle_exception).

API paths (``/api/...``) answer ``{"ok": false, "error": "...", "status": N}``; every other
path answers an HTML error page with the same message. Bad input is 400 with the reason,
an unknown id or path 404; anything unexpected is logged with its traceback and answered
with a plain 500 page that shows none of it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperfeed.errors import PaperfeedError
from paperfeed.web.auth import LoginRequired, login_url, safe_next

log = logging.getLogger("paperfeed.web")

TITLES = {
    400: "Bad request",
    401: "Log in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Already taken",
    429: "Too many attempts",
    500: "Internal error",
    501: "Not available",
    502: "Could not reach the source",
    503: "Not available",
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def wants_xml(request: Request) -> bool:
    return request.url.path.startswith("/feeds/")


def error_response(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "error": message, "status": status}, status_code=status)
    if wants_xml(request):
        return PlainTextResponse(f"{status} {TITLES.get(status, 'Error')}: {message}\n", status)
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:  # pragma: no cover - the app is always built with a context
        return PlainTextResponse(message, status_code=status)
    html: HTMLResponse = ctx.templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "title": TITLES.get(status, "Error"),
            "message": message,
            "ctx": ctx,
        },
        status_code=status,
    )
    return html


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def paperfeed_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PaperfeedError)
        if isinstance(exc, LoginRequired) and not wants_json(request):
            # A page that needs a user: log in, then come back (to the page, or for a
            # form post to the page the form was on).
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                referer = request.headers.get("referer", "")
                origin = f"{request.url.scheme}://{request.url.netloc}"
                here = safe_next(referer[len(origin) :] if referer.startswith(origin) else "")
            return RedirectResponse(login_url(here), status_code=303)
        if exc.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(request, exc.status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        return error_response(request, exc.status_code, message)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 400, _validation_message(exc))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "an unexpected error happened; it has been logged")

    app.add_exception_handler(PaperfeedError, paperfeed_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
