"""Helpers for the tests of accounts, votes, collections and subscriptions on the site: a
small real store (the recorded Hugging Face daily papers), the real app, and a way to
fill in forms the way a browser does (the CSRF token read from the page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from paperfeed.ingest import ingest_file
from paperfeed.settings import Settings
from paperfeed.store import Store, open_store
from paperfeed.web import create_app
from paperfeed.web.config import WebConfig
from tests.web.conftest import HF_DAILY

PASSWORD = "correct horse battery"
HF_DAY = "2024-03-15"  # a feed day of the recorded daily papers


@dataclass
class Site:
    settings: Settings
    store: Store
    app: FastAPI


@contextmanager
def site(data_dir: Path, *, accounts: bool = True) -> Iterator[Site]:
    settings = Settings.resolve(data_dir)
    store = open_store(settings)
    try:
        ingest_file(store, HF_DAILY)
        app = create_app(
            settings, store, None, web_config=WebConfig(accounts=accounts), warm_up=False
        )
        yield Site(settings, store, app)
    finally:
        store.close()


def client(app: FastAPI, base_url: str = "http://testserver") -> TestClient:
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found[1]


def submit(c: TestClient, page: str, action: str, data: dict[str, str], **kw: object) -> Response:
    """Open ``page``, then post ``data`` to ``action`` with the page's CSRF token."""
    token = csrf(c.get(page).text)
    return c.post(action, data={**data, "csrf_token": token}, **kw)  # type: ignore[arg-type]


def sign_up(c: TestClient, username: str, email: str | None = None) -> Response:
    r = submit(
        c,
        "/signup",
        "/signup",
        {
            "username": username,
            "email": email or f"{username}@example.org",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return r


def first_paper_id(c: TestClient, day: str = HF_DAY) -> str:
    html = c.get(f"/papers/date/{day}").text
    found = re.findall(r'name="paper_id" value="([^"]+)"', html)
    assert found
    return found[0]


def api_token(c: TestClient, name: str = "script") -> str:
    r = submit(c, "/account", "/account/tokens", {"name": name})
    assert r.status_code == 200
    found = re.search(r'<code id="new-token">(pf_[^<]+)</code>', r.text)
    assert found
    return found[1]
