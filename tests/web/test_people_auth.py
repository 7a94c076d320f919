"""Accounts on the site: sign up, log in (rate limited), log out, cookies and their flags,
CSRF on every form, single-user mode, password change, deleting an account, and that one
user can never read or change what is another's, through pages or the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperfeed.digest import subscriptions as subs
from paperfeed.model import SubscriptionContents
from tests.web.people import (
    HF_DAY,
    PASSWORD,
    api_token,
    client,
    csrf,
    first_paper_id,
    sign_up,
    site,
    submit,
)


def _set_cookies(r: object) -> dict[str, str]:
    headers = r.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h for h in headers}


def test_sign_up_log_out_log_in_and_cookie_flags(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        first = c.get("/")
        csrf_cookie = _set_cookies(first)["pf_csrf"]
        assert "HttpOnly" in csrf_cookie
        assert "SameSite=Lax" in csrf_cookie
        assert "Secure" not in csrf_cookie  # plain http on loopback
        assert 'href="/login"' in first.text
        assert 'href="/signup"' in first.text

        r = sign_up(c, "ada")
        assert r.headers["location"] == "/account"
        session = _set_cookies(r)["pf_session"]
        assert "HttpOnly" in session
        assert "samesite=lax" in session.lower()
        assert "Secure" not in session
        account = c.get("/account")
        assert account.status_code == 200
        assert "Logged in as <strong>ada</strong>" in account.text
        assert "administrator" in account.text  # the first account
        # The store keeps a hash of the session, never the cookie's value.
        value = session.split("=", 1)[1].split(";", 1)[0]
        assert value not in (s.settings.data_dir / "paperfeed.db").read_bytes().decode("latin-1")

        r = submit(c, "/account", "/logout", {}, follow_redirects=False)
        assert r.status_code == 303
        assert 'pf_session=""' in _set_cookies(r)["pf_session"]
        c.cookies.delete("pf_session")
        assert c.get("/account", follow_redirects=False).headers["location"] == (
            "/login?next=/account"
        )
        # The old session cookie opens nothing any more.
        c.cookies.set("pf_session", value)
        assert c.get("/account", follow_redirects=False).status_code == 303
        c.cookies.delete("pf_session")

        wrong = submit(c, "/login", "/login", {"username": "ada", "password": "nope nope nope"})
        assert wrong.status_code == 401
        assert "wrong username or password" in wrong.text
        ok = submit(
            c,
            "/login?next=/collections",
            "/login",
            {"username": "ada@example.org", "password": PASSWORD, "next": "/collections"},
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/collections"
        # "next" never leads to another site.
        away = submit(
            c,
            "/login",
            "/login",
            {"username": "ada", "password": PASSWORD, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert away.headers["location"] == "/account"


def test_cookies_are_secure_over_https(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app, base_url="https://testserver") as c:
        r = sign_up(c, "ada")
        assert "Secure" in _set_cookies(r)["pf_session"]
        with client(s.app, base_url="https://testserver") as fresh:
            assert "Secure" in _set_cookies(fresh.get("/"))["pf_csrf"]


def test_sign_up_errors_are_shown_on_the_form(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        submit(c, "/account", "/logout", {})
        c.cookies.delete("pf_session")
        cases = [
            ({"username": "ada", "password": PASSWORD, "password2": PASSWORD}, "taken"),
            ({"username": "bob", "password": "short", "password2": "short"}, "at least 10"),
            ({"username": "bob", "password": PASSWORD, "password2": PASSWORD + "x"}, "differ"),
            ({"username": "b<o>b", "password": PASSWORD, "password2": PASSWORD}, "username"),
        ]
        for data, reason in cases:
            r = submit(c, "/signup", "/signup", data)
            assert r.status_code == 400, data
            assert reason in r.text.lower() or reason in r.text, (reason, r.text[-2000:])
            assert "b&lt;o&gt;b" in r.text or "<o>" not in r.text


def test_forms_and_cookie_api_writes_without_csrf_are_refused(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        pid = first_paper_id(c)
        token = csrf(c.get("/account").text)
        posts = {
            "/vote": {"paper_id": pid},
            "/collections": {"name": "x"},
            "/account/tokens": {"name": "x"},
            "/account/password": {"old_password": PASSWORD, "new_password": "x" * 12},
            "/account/delete": {"password": PASSWORD},
            "/account/subscriptions": {"email": "ada@example.org"},
            "/submit": {"ref": "2403.00001"},
            "/subscribe": {"email": "ada@example.org"},
            "/logout": {},
        }
        for path, data in posts.items():
            assert c.post(path, data=data).status_code == 403, path
            bad = c.post(path, data={**data, "csrf_token": token[:-2] + "00"})
            assert bad.status_code == 403, path
            assert "CSRF" in bad.text
        # A token of another browser (another pf_csrf cookie) does not fit this one.
        with client(s.app) as other:
            foreign = csrf(other.get("/").text)
        assert c.post("/vote", data={"paper_id": pid, "csrf_token": foreign}).status_code == 403
        assert s.store.collections(1) == []
        assert s.store.api_tokens(1) == []

        # The JSON API with the session cookie: writes need the X-CSRF-Token header.
        assert c.post("/api/v1/votes", json={"paper_id": pid}).status_code == 403
        me = c.get("/api/v1/me").json()
        header = {"X-CSRF-Token": me["csrf_token"]}
        assert c.post("/api/v1/votes", json={"paper_id": pid}, headers=header).status_code == 200
        # A Bearer API token needs no CSRF token (no browser sends one by itself).
        bearer = {"Authorization": f"Bearer {api_token(c)}"}
        with client(s.app) as script:
            r = script.post("/api/v1/collections", json={"name": "from a script"}, headers=bearer)
            assert r.status_code == 201
            assert script.get("/api/v1/me", headers=bearer).json()["csrf_token"] is None
            bogus = {"Authorization": "Bearer pf_not-a-token"}
            r = script.post("/api/v1/collections", json={"name": "y"}, headers=bogus)
            assert r.status_code == 401
            assert r.json() == {
                "ok": False,
                "error": "the API token is not valid (revoked or mistyped)",
                "status": 401,
            }


def test_wrong_passwords_are_rate_limited(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        submit(c, "/account", "/logout", {})
        c.cookies.delete("pf_session")
        for _ in range(5):
            r = submit(c, "/login", "/login", {"username": "ada", "password": "wrong password"})
            assert r.status_code == 401
        # The sixth attempt is refused even with the right password: a 429 page.
        r = submit(c, "/login", "/login", {"username": "ada", "password": PASSWORD})
        assert r.status_code == 429
        assert "<h1>Too many attempts</h1>" in r.text
        assert "too many failed log-ins" in r.text
        assert "pf_session" not in _set_cookies(r)


def test_single_user_mode_needs_no_login(tmp_path: Path) -> None:
    with site(tmp_path / "d", accounts=False) as s, client(s.app) as c:
        home = c.get(f"/papers/date/{HF_DAY}")
        assert 'href="/login"' not in home.text
        assert 'href="/account">Account</a>' in home.text
        assert c.get("/login").status_code == 404
        assert "single-user mode" in c.get("/signup").text
        pid = first_paper_id(c)
        r = submit(c, "/", "/vote", {"paper_id": pid, "next": f"/papers/date/{HF_DAY}"})
        assert r.status_code == 200
        local = s.store.user_credentials("local")
        assert local is not None
        assert s.store.voted(local[0].id, [pid]) == {pid}
        # The API acts for the local user too (writes still need the CSRF header or a
        # token, so that no other site can make this browser vote).
        assert c.get("/api/v1/me").json()["user"]["username"] == "local"
        assert c.get("/api/v1/collections").status_code == 200
        assert c.post("/api/v1/collections", json={"name": "x"}).status_code == 403
        account = c.get("/account")
        assert "single-user mode" in account.text
        assert "Change password" not in account.text
        assert api_token(c).startswith("pf_")


def test_logged_out_visitors_are_sent_to_log_in(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        for path in ("/account", "/collections", "/submit", "/digest/preview"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next=")
        pid = first_paper_id(c)
        r = submit(
            c,
            f"/papers/date/{HF_DAY}",
            "/vote",
            {"paper_id": pid},
            follow_redirects=False,
            headers={"referer": f"http://testserver/papers/date/{HF_DAY}"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"/login?next=/papers/date/{HF_DAY}"
        for method, path in [
            ("GET", "/api/v1/me"),
            ("GET", "/api/v1/collections"),
            ("GET", "/api/v1/subscriptions"),
            ("GET", "/api/v1/tokens"),
        ]:
            r = c.request(method, path)
            assert r.status_code == 401
            assert r.json()["ok"] is False
            assert r.json()["status"] == 401


def test_change_password_and_delete_account(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c, client(s.app) as elsewhere:
        sign_up(c, "ada")
        r = submit(
            elsewhere,
            "/login",
            "/login",
            {"username": "ada", "password": PASSWORD},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert elsewhere.get("/account").status_code == 200
        new = "a much better passphrase"
        wrong = submit(
            c,
            "/account",
            "/account/password",
            {"old_password": "not it at all", "new_password": new, "new_password2": new},
        )
        assert wrong.status_code == 400
        assert "wrong password" in wrong.text
        r = submit(
            c,
            "/account",
            "/account/password",
            {"old_password": PASSWORD, "new_password": new, "new_password2": new},
        )
        assert r.status_code == 200
        assert "Your password was changed" in r.text
        # The other session is over; this one got a fresh session.
        assert elsewhere.get("/account", follow_redirects=False).status_code == 303

        pid = first_paper_id(c)
        submit(c, "/", "/vote", {"paper_id": pid})
        submit(c, "/collections", "/collections", {"name": "Mine", "paper_id": pid})
        api_token(c)
        user = s.store.user_credentials("ada")
        assert user is not None
        uid = user[0].id
        refused = submit(c, "/account", "/account/delete", {"password": PASSWORD})
        assert refused.status_code == 401  # the old password no longer works
        r = submit(c, "/account", "/account/delete", {"password": new})
        assert r.status_code == 200
        assert "Your account is deleted" in r.text
        assert s.store.user_credentials("ada") is None
        assert s.store.collections(uid) == []
        assert s.store.api_tokens(uid) == []
        assert s.store.vote_counts([pid]) == {}


def _collection_id(url: str) -> int:
    found = re.search(r"/collections/(\d+)$", url)
    assert found, url
    return int(found[1])


@pytest.fixture
def two_users(tmp_path: Path):  # type: ignore[no-untyped-def]
    with site(tmp_path / "d") as s, client(s.app) as a, client(s.app) as b:
        sign_up(a, "ada")
        sign_up(b, "bob")
        yield s, a, b


def test_another_users_things_are_out_of_reach(two_users) -> None:  # type: ignore[no-untyped-def]
    s, a, b = two_users
    pid = first_paper_id(a)
    made = submit(a, "/collections", "/collections", {"name": "Secret", "paper_id": pid})
    secret = _collection_id(str(made.url))
    made = submit(a, "/collections", "/collections", {"name": "Shared", "public": "1"})
    shared = _collection_id(str(made.url))
    a_token = api_token(a, "ada's")
    a_token_id = s.store.api_tokens(1)[0].id
    sub = s.store.create_subscription(
        "ada@example.org",
        user_id=1,
        frequency="daily",
        contents=SubscriptionContents(),
        max_items=10,
    )
    bob = {"Authorization": f"Bearer {api_token(b, 'bob')}"}

    # Pages: a private collection is a 404 (like a missing one); a public one is readable
    # but every change is a 404 too.
    assert b.get(f"/collections/{secret}").status_code == 404
    assert b.get(f"/collections/{secret}/export?format=bibtex").status_code == 404
    missing = b.get("/collections/9999")
    assert b.get(f"/collections/{secret}").text.count("no collection") == missing.text.count(
        "no collection"
    )
    assert b.get(f"/collections/{shared}").status_code == 200
    assert "Delete this collection" not in b.get(f"/collections/{shared}").text
    for cid in (secret, shared):
        for action, data in [
            ("edit", {"name": "mine now", "public": "1"}),
            ("add", {"paper_id": pid}),
            ("remove", {"paper_id": pid}),
            ("delete", {}),
        ]:
            r = submit(b, "/collections", f"/collections/{cid}/{action}", data)
            assert r.status_code == 404, (cid, action)
        r = submit(
            b, "/collections", "/collections/add", {"collection_id": str(cid), "paper_id": pid}
        )
        assert r.status_code == 404
    # ... tokens, subscriptions, previews
    assert submit(b, "/account", f"/account/tokens/{a_token_id}/revoke", {}).status_code == 404
    assert a_token not in b.get("/account").text
    r = submit(
        b,
        "/account",
        "/account/subscriptions",
        {"subscription_id": str(sub.id), "email": "", "frequency": "weekly"},
    )
    assert r.status_code == 404
    r = submit(b, "/account", f"/account/subscriptions/{sub.id}/unsubscribe", {})
    assert r.status_code == 404
    r = submit(b, "/account", "/account/subscriptions", {"email": "ada@example.org"})
    assert r.status_code == 409  # an address someone else subscribed is not taken over
    assert b.get(f"/digest/preview?subscription={sub.id}").status_code == 404

    # The API, with bob's token.
    api = [
        ("GET", f"/api/v1/collections/{secret}", None),
        ("GET", f"/api/v1/collections/{secret}/export", None),
        ("PATCH", f"/api/v1/collections/{secret}", {"public": True}),
        ("PATCH", f"/api/v1/collections/{shared}", {"name": "bob's"}),
        ("DELETE", f"/api/v1/collections/{shared}", None),
        ("POST", f"/api/v1/collections/{shared}/items", {"paper_id": pid}),
        ("DELETE", f"/api/v1/collections/{secret}/items/{pid}", None),
        ("DELETE", f"/api/v1/tokens/{a_token_id}", None),
        ("GET", f"/api/v1/subscriptions/{sub.id}", None),
        ("PATCH", f"/api/v1/subscriptions/{sub.id}", {"frequency": "weekly"}),
        ("DELETE", f"/api/v1/subscriptions/{sub.id}", None),
    ]
    for method, path, body in api:
        r = b.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["ok"] is False
        assert r.json()["status"] == 404
    assert b.get(f"/api/v1/collections/{shared}", headers=bob).json()["owner"] is False
    assert b.get("/api/v1/collections", headers=bob).json()["collections"] == []
    assert [t["name"] for t in b.get("/api/v1/tokens", headers=bob).json()["tokens"]] == ["bob"]
    assert b.get("/api/v1/subscriptions", headers=bob).json()["subscriptions"] == []

    # Nothing of ada's changed.
    secret_now = s.store.get_collection(secret)
    assert secret_now is not None
    assert secret_now.name == "Secret"
    assert not secret_now.is_public
    assert [i.paper.id for i in s.store.collection_items(secret)] == [pid]
    assert s.store.get_collection(shared) is not None
    assert len(s.store.api_tokens(1)) == 1
    after = s.store.get_subscription(sub.id)
    assert after is not None
    assert after.frequency == "daily"
    assert after.unsubscribed_at is None
    # And ada still reaches all of it with her own token.
    ada = {"Authorization": f"Bearer {a_token}"}
    assert a.get(f"/api/v1/collections/{secret}", headers=ada).json()["owner"] is True
    # Anyone, logged in or not, reads a public collection; nobody reads a private one.
    with client(s.app) as anonymous:
        assert anonymous.get(f"/collections/{shared}").status_code == 200
        assert anonymous.get(f"/api/v1/collections/{shared}").status_code == 200
        assert anonymous.get(f"/api/v1/collections/{secret}").status_code == 404


def test_admins_preview_any_subscription(two_users) -> None:  # type: ignore[no-untyped-def]
    s, a, b = two_users
    ada_sub = subs.subscribe(s.store, "ada@example.org", user_id=1)
    sub = subs.subscribe(s.store, "bob@example.org", user_id=2)
    # bob previews his own; ada, the administrator (the first account), anyone's.
    r = b.get(f"/digest/preview?subscription={sub.id}&date={HF_DAY}")
    assert r.status_code == 200
    assert "Trending" in r.text
    assert "bob@example.org" in r.text
    assert a.get(f"/digest/preview?subscription={sub.id}&date={HF_DAY}").status_code == 200
    assert b.get(f"/digest/preview?subscription={ada_sub.id}").status_code == 404
    text = b.get(f"/digest/preview?date={HF_DAY}&format=text")
    assert text.headers["content-type"].startswith("text/plain")
    assert "Why: trending" in text.text
    assert "<html" not in text.text


def test_account_page_api_tokens(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        r = submit(c, "/account", "/account/tokens", {"name": "laptop"})
        secret = re.search(r'<code id="new-token">(pf_[^<]+)</code>', r.text)
        assert secret
        assert r.headers["cache-control"] == "no-store"
        # Shown once: the next page lists the token by name, never its secret.
        page = c.get("/account").text
        assert "laptop" in page
        assert secret[1] not in page
        headers = {"Authorization": f"Bearer {secret[1]}"}
        with client(s.app) as script:
            assert script.get("/api/v1/me", headers=headers).json()["user"]["username"] == "ada"
            listed = script.get("/api/v1/tokens", headers=headers).json()["tokens"]
            assert listed[0]["name"] == "laptop"
            assert listed[0]["last_used_at"]
            made = script.post("/api/v1/tokens", json={"name": "ci"}, headers=headers).json()
            assert made["secret"].startswith("pf_")
        token_id = s.store.api_tokens(1)[0].id
        r = submit(c, "/account", f"/account/tokens/{token_id}/revoke", {})
        assert r.status_code == 200
        assert "The token was revoked" in r.text
        with client(s.app) as script:
            assert script.get("/api/v1/me", headers=headers).status_code == 401
        empty = submit(c, "/account", "/account/tokens", {"name": "  "})
        assert empty.status_code == 400
        assert "a token needs a name" in empty.text
