"""The URLs a digest links to. The web app serves exactly these paths; keeping them here
means an e-mail and the routes cannot drift apart."""

from __future__ import annotations

from urllib.parse import quote, urlencode

DEFAULT_BASE_URL = "http://127.0.0.1:8000"

CONFIRM_PATH = "/subscribe/confirm"
UNSUBSCRIBE_PATH = "/unsubscribe"
PREVIEW_PATH = "/digest/preview"


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def paper_url(base_url: str, paper_id: str) -> str:
    return f"{_base(base_url)}/papers/{quote(paper_id, safe=':')}"


def confirm_url(base_url: str, token: str) -> str:
    return f"{_base(base_url)}{CONFIRM_PATH}?{urlencode({'token': token})}"


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{_base(base_url)}{UNSUBSCRIBE_PATH}?{urlencode({'token': token})}"


def settings_url(base_url: str) -> str:
    return f"{_base(base_url)}/account"
