"""Votes, collections, submitting a paper and digest subscriptions through the real app;
mail goes through a real SMTP server on loopback (aiosmtpd), arXiv is a recorded server on
loopback."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

from paperfeed.cli.serve import background_services, digest_runner
from paperfeed.digest.schedule import DueRun
from paperfeed.digest.setup import build_mailer, build_sender
from paperfeed.search import SearchEngine
from paperfeed.sources import get_parser
from paperfeed.sources.base import ParseContext, Parsed
from tests.fetch.conftest import write_settings
from tests.fetch.recorded import RecordedUpstream, serve, week_of_papers
from tests.smtp_server import Mailbox, free_port, smtp_server
from tests.web.people import HF_DAY, client, first_paper_id, sign_up, site, submit

BASE = "http://paperfeed.test"


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    with smtp_server() as (box, port):
        monkeypatch.setenv("PAPERFEED_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PAPERFEED_SMTP_PORT", str(port))
        monkeypatch.setenv("PAPERFEED_SMTP_SECURITY", "none")
        monkeypatch.setenv("PAPERFEED_SMTP_FROM", "paperfeed <digest@example.org>")
        monkeypatch.setenv("PAPERFEED_BASE_URL", BASE)
        yield box


def wait_for_mail(box: Mailbox, to: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + 10
    while len(box.to(to)) < count:
        assert time.monotonic() < deadline, f"no mail to {to}"
        time.sleep(0.02)
    return box.to(to)


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(msg: EmailMessage, path: str) -> str:
    """The path and query of the link to ``path`` in the plain-text part."""
    found = re.search(re.escape(BASE + path) + r"\?token=\S+", body(msg, "plain"))
    assert found, body(msg, "plain")
    parts = urlsplit(found[0])
    return f"{parts.path}?{parts.query}"


def test_votes_add_to_the_feed_everywhere(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as a, client(s.app) as b:
        sign_up(a, "ada")
        sign_up(b, "bob")
        day = f"/papers/date/{HF_DAY}"
        before = a.get("/api/v1/feed", params={"date": HF_DAY, "sort": "date"}).json()
        last = before["results"][-1]
        pid, votes = last["paper"]["id"], last["votes"]
        for c in (a, b):
            r = submit(c, day, "/vote", {"paper_id": pid, "next": day})
            assert r.status_code == 200
            assert str(r.url).endswith(day)
        # Voting twice is still one vote per user.
        submit(a, day, "/vote", {"paper_id": pid, "next": day})

        after = a.get("/api/v1/feed", params={"date": HF_DAY, "sort": "date"}).json()
        entry = next(e for e in after["results"] if e["paper"]["id"] == pid)
        assert entry["votes"] == votes + 2
        hf = a.get("/api/daily_papers", params={"date": HF_DAY}).json()
        assert next(e for e in hf if e["paper"]["id"] == pid)["paper"]["upvotes"] == votes + 2
        page = a.get(day).text
        assert f'▲</span> {votes + 2}<span class="visually-hidden"> upvotes, voted' in page
        assert f"Voted ({votes + 2}) · undo" in b.get(f"/papers/{pid}").text
        assert f"<dt>Upvotes</dt><dd>{votes + 2}</dd>" in b.get(f"/papers/{pid}").text
        # The feed, the RSS feed and the digest rank with the same count.
        trending = a.get("/api/v1/feed", params={"date": HF_DAY}).json()["results"]
        rss = feedparser.parse(a.get("/feeds/papers.rss", params={"date": HF_DAY}).content)
        assert [e.title for e in rss.entries] == [e["paper"]["title"] for e in trending]

        # Undo: back to the imported count.
        r = submit(b, day, "/vote", {"paper_id": pid, "action": "undo", "next": day})
        assert r.status_code == 200
        undone = a.get("/api/v1/feed", params={"date": HF_DAY, "sort": "date"}).json()
        assert next(e for e in undone["results"] if e["paper"]["id"] == pid)["votes"] == votes + 1
        bad = submit(a, day, "/vote", {"paper_id": "9999.99999"})
        assert bad.status_code == 400
        assert "no paper with id" in bad.text

        # The API's votes.
        me = a.get("/api/v1/me").json()
        h = {"X-CSRF-Token": me["csrf_token"]}
        assert a.get("/api/v1/votes", params={"id": pid}).json()["voted"] == [pid]
        r = a.delete(f"/api/v1/votes/{pid}", headers=h)
        assert r.json() == {"ok": True, "paper_id": pid, "voted": False, "local_votes": 0}
        assert a.post("/api/v1/votes", json={"paper_id": pid}, headers=h).json()["local_votes"] == 1


def _parse(fmt: str, data: bytes) -> list[str]:
    items = get_parser(fmt)(io.BytesIO(data), ParseContext(source=fmt, listing="export"))
    return [i.paper.title for i in items if isinstance(i, Parsed)]


def test_collections_pages_and_exports(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        first = first_paper_id(c)
        paper_page = f"/papers/{first}"
        r = submit(
            c,
            paper_page,
            "/collections",
            {"name": "To <read>", "paper_id": first, "note": "method & <b>data</b>"},
        )
        assert r.status_code == 200
        cid = int(str(r.url).rsplit("/", 1)[1])
        assert "<h1>To &lt;read&gt;</h1>" in r.text
        assert '<p class="note">method &amp; &lt;b&gt;data&lt;/b&gt;</p>' in r.text
        # From another paper page, into the existing collection, with a note.
        others = re.findall(
            r'name="paper_id" value="([^"]+)"', c.get(f"/papers/date/{HF_DAY}").text
        )
        second = next(p for p in others if p != first)
        page = c.get(f"/papers/{second}").text
        assert f'<option value="{cid}">To &lt;read&gt;</option>' in page
        r = submit(
            c,
            f"/papers/{second}",
            "/collections/add",
            {
                "collection_id": str(cid),
                "paper_id": second,
                "note": "second",
                "next": "//evil.example",
            },
        )
        assert urlsplit(str(r.url)).netloc == "testserver"  # "next" never leaves the site
        assert urlsplit(str(r.url)).path == f"/collections/{cid}"
        items = s.store.collection_items(cid)
        assert [i.paper.id for i in items] == [second, first]
        assert [i.note for i in items] == ["second", "method & <b>data</b>"]

        listing = c.get("/collections").text
        assert "To &lt;read&gt;" in listing
        assert "2 papers · private" in listing
        titles = [i.paper.title for i in items]
        for fmt in ("bibtex", "ris", "csv"):
            r = c.get(f"/collections/{cid}/export", params={"format": fmt})
            assert r.status_code == 200
            assert "attachment" in r.headers["content-disposition"]
            assert _parse(fmt, r.content) == titles, fmt
        assert c.get(f"/collections/{cid}/export?format=xml").status_code == 400

        r = submit(
            c, f"/collections/{cid}", f"/collections/{cid}/edit", {"name": "Read", "public": "1"}
        )
        assert "<h1>Read</h1>" in r.text
        assert "public" in r.text
        with client(s.app) as anonymous:
            assert anonymous.get(f"/collections/{cid}").status_code == 200
            api = anonymous.get(f"/api/v1/collections/{cid}").json()
            assert [i["paper"]["id"] for i in api["items"]] == [second, first]
        r = submit(c, f"/collections/{cid}", f"/collections/{cid}/remove", {"paper_id": second})
        assert [i.paper.id for i in s.store.collection_items(cid)] == [first]
        r = submit(c, f"/collections/{cid}", f"/collections/{cid}/edit", {"name": "Read"})
        assert s.store.get_collection(cid).is_public is False  # type: ignore[union-attr]
        dup = submit(c, "/collections", "/collections", {"name": "Read"})
        assert dup.status_code == 400
        r = submit(c, f"/collections/{cid}", f"/collections/{cid}/delete", {})
        assert str(r.url).endswith("/collections")
        assert s.store.get_collection(cid) is None


def test_collections_api(tmp_path: Path) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        pid = first_paper_id(c)
        token = submit(c, "/account", "/account/tokens", {"name": "t"}).text
        secret = re.search(r'<code id="new-token">(pf_[^<]+)</code>', token)[1]  # type: ignore[index]
        h = {"Authorization": f"Bearer {secret}"}
        with client(s.app) as api:
            made = api.post("/api/v1/collections", json={"name": "Reading"}, headers=h)
            assert made.status_code == 201
            cid = made.json()["collection"]["id"]
            r = api.post(
                f"/api/v1/collections/{cid}/items", json={"paper_id": pid, "note": "n"}, headers=h
            )
            assert r.status_code == 201
            got = api.get(f"/api/v1/collections/{cid}", headers=h).json()
            assert got["owner"] is True
            assert [(i["paper"]["id"], i["note"]) for i in got["items"]] == [(pid, "n")]
            r = api.patch(f"/api/v1/collections/{cid}", json={"public": True}, headers=h)
            assert r.json()["collection"]["public"] is True
            export = api.get(f"/api/v1/collections/{cid}/export?format=ris", headers=h)
            assert _parse("ris", export.content) == [got["items"][0]["paper"]["title"]]
            bad = api.post("/api/v1/collections", json={"name": "x", "colour": 1}, headers=h)
            assert bad.status_code == 400
            assert bad.json()["ok"] is False
            assert "colour" in bad.json()["error"]
            missing = api.post(
                f"/api/v1/collections/{cid}/items", json={"paper_id": "nope"}, headers=h
            )
            assert missing.status_code == 400
            r = api.delete(f"/api/v1/collections/{cid}/items/{pid}", headers=h)
            assert r.json()["ok"] is True
            assert (
                api.delete(f"/api/v1/collections/{cid}/items/{pid}", headers=h).status_code == 404
            )
            assert api.delete(f"/api/v1/collections/{cid}", headers=h).json()["deleted"] == cid
            assert api.get(f"/api/v1/collections/{cid}", headers=h).status_code == 404


# -- submit ----------------------------------------------------------------------------------
def test_submit_fetches_from_arxiv_and_lists_it_today(tmp_path: Path) -> None:
    upstream = RecordedUpstream()
    upstream.arxiv = week_of_papers("cs.CL", dt.date(2024, 3, 11), days=1, per_day=3)
    server = serve(upstream)
    try:
        write_settings(tmp_path / "d", server.url)
        with site(tmp_path / "d") as s, client(s.app) as c:
            sign_up(c, "ada")
            r = submit(c, "/submit", "/submit", {"ref": "arXiv:2403.00002v1"})
            assert r.status_code == 200
            assert urlsplit(str(r.url)).path == "/papers/2403.00002"
            assert "Fetched and added to today&#39;s feed." in r.text
            assert upstream.seen[0].query["id_list"] == "2403.00002"
            today = dt.date.today().isoformat()
            listed = [(a.listing, a.feed_date) for a in s.store.appearances("2403.00002")]
            assert ("submitted", dt.date.today()) in listed
            feed_today = c.get("/api/v1/feed", params={"date": today}).json()
            assert [e["paper"]["id"] for e in feed_today["results"]] == ["2403.00002"]

            # A paper the store has is listed without asking arXiv.
            known = first_paper_id(c)
            r = submit(c, "/submit", "/submit", {"ref": f"https://arxiv.org/abs/{known}v2"})
            assert "Already here" in r.text
            assert len(upstream.seen) == 1
            assert len(c.get("/api/v1/feed", params={"date": today}).json()["results"]) == 2

            bad = submit(c, "/submit", "/submit", {"ref": "not a paper"})
            assert bad.status_code == 400
            assert "is not an arXiv id" in bad.text
    finally:
        server.stop()


def test_submit_without_a_network_says_so(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: like no network
    write_settings(tmp_path / "d", dead)
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        r = submit(c, "/submit", "/submit", {"ref": "2403.00009"})
        assert r.status_code == 503
        assert "could not fetch arXiv 2403.00009" in r.text
        assert "Is this machine online?" in r.text
        assert s.store.get_paper("2403.00009") is None


# -- subscriptions and the digest ---------------------------------------------------------------
def test_anonymous_subscribe_confirm_and_one_click_unsubscribe(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        r = submit(c, f"/papers/date/{HF_DAY}", "/subscribe", {"email": "reader@example.org"})
        assert r.status_code == 200
        assert "Check your inbox" in r.text
        sub = s.store.subscription_by_email("reader@example.org")
        assert sub is not None
        assert not sub.confirmed
        assert sub.user_id is None
        (mail,) = wait_for_mail(mailbox, "reader@example.org")
        assert "Confirm" in mail["Subject"]
        confirm = link_in(mail, "/subscribe/confirm")
        assert confirm in body(mail, "html").replace("&amp;", "&")

        ok = c.get(confirm)
        assert ok.status_code == 200
        assert "Subscription confirmed" in ok.text
        assert s.store.get_subscription(sub.id).active  # type: ignore[union-attr]
        assert c.get(confirm).status_code == 200  # a second click changes nothing
        damaged = c.get(confirm[:-3] + "xyz")
        assert damaged.status_code == 400
        assert "not valid" in damaged.text

        # Subscribing an active address again: the same answer, no new mail, no change.
        submit(c, "/", "/subscribe", {"email": "reader@example.org"})
        assert len(mailbox.to("reader@example.org")) == 1

        # The digest, through the library and the real SMTP server.
        sender = build_sender(s.settings, s.store, searcher=SearchEngine(s.store))
        mailer = build_mailer()
        assert mailer is not None
        with mailer:
            report = sender.run(mailer, day=dt.date.fromisoformat(HF_DAY))
        assert report.count("sent") == 1
        digest = wait_for_mail(mailbox, "reader@example.org", 2)[1]
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        one_click = re.search(r"<(http[^>]+)>", digest["List-Unsubscribe"])[1]  # type: ignore[index]
        parts = urlsplit(one_click)
        assert parts.path == "/unsubscribe"

        # A GET (a mail scanner) only shows the button.
        page = c.get(f"{parts.path}?{parts.query}")
        assert page.status_code == 200
        assert "reader@example.org" in page.text
        assert s.store.get_subscription(sub.id).active  # type: ignore[union-attr]
        # RFC 8058: a POST with List-Unsubscribe=One-Click, no cookie, no CSRF token.
        with client(s.app) as mail_client:
            r = mail_client.post(
                f"{parts.path}?{parts.query}",
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        assert r.status_code == 200
        assert "Unsubscribed" in r.text
        assert not s.store.get_subscription(sub.id).active  # type: ignore[union-attr]
        forged = c.post("/unsubscribe?token=" + parts.query.split("=", 1)[1][:-4] + "AAAA")
        assert forged.status_code == 400

        # Asking again from the box mails a new confirmation; following it resubscribes.
        submit(c, "/", "/subscribe", {"email": "reader@example.org"})
        again = wait_for_mail(mailbox, "reader@example.org", 3)[2]
        assert c.get(link_in(again, "/subscribe/confirm")).status_code == 200
        assert s.store.get_subscription(sub.id).active  # type: ignore[union-attr]


def test_account_subscription_settings_and_preview(tmp_path: Path, mailbox: Mailbox) -> None:
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        r = submit(
            c,
            "/account",
            "/account/subscriptions",
            {
                "email": "ada@example.org",
                "frequency": "weekly",
                "trending": "1",
                "searches": "multimodal pre-training\n\n",
                "authors": "Zhe Gan",
                "categories": "cs.CV, cs.CL",
                "max_items": "5",
            },
        )
        assert r.status_code == 200
        assert "A confirmation link was mailed to ada@example.org" in r.text
        sub = s.store.subscription_by_email("ada@example.org")
        assert sub is not None
        assert sub.user_id == 1
        assert sub.frequency == "weekly"
        assert sub.max_items == 5
        assert sub.contents.searches == ("multimodal pre-training",)
        assert sub.contents.authors == ("Zhe Gan",)
        assert sub.contents.categories == ("cs.CV", "cs.CL")
        assert sub.contents.for_you is False
        (mail,) = wait_for_mail(mailbox, "ada@example.org")
        assert c.get(link_in(mail, "/subscribe/confirm")).status_code == 200
        assert "active" in c.get("/account").text

        # Change it: no new confirmation needed for the same address.
        r = submit(
            c,
            "/account",
            "/account/subscriptions",
            {
                "subscription_id": str(sub.id),
                "frequency": "daily",
                "trending": "1",
                "max_items": "3",
            },
        )
        assert "Your subscription settings were saved" in r.text
        changed = s.store.get_subscription(sub.id)
        assert changed is not None
        assert changed.frequency == "daily"
        assert changed.max_items == 3
        assert len(mailbox.to("ada@example.org")) == 1
        bad = submit(c, "/account", "/account/subscriptions", {"email": "x", "max_items": "99"})
        assert bad.status_code == 400
        assert "max items must be between 1 and 50" in bad.text

        preview = c.get(f"/digest/preview?date={HF_DAY}")
        assert preview.status_code == 200
        assert "Why: trending" in preview.text
        assert s.store.digest_runs(subscription_id=sub.id) == []  # nothing recorded
        assert len(mailbox.to("ada@example.org")) == 1  # nothing sent

        # The API sees and changes the same subscription.
        h = {"X-CSRF-Token": c.get("/api/v1/me").json()["csrf_token"]}
        listed = c.get("/api/v1/subscriptions").json()["subscriptions"]
        assert [(x["id"], x["state"]) for x in listed] == [(sub.id, "active")]
        r = c.patch(f"/api/v1/subscriptions/{sub.id}", json={"max_items": 7}, headers=h)
        assert r.json()["subscription"]["max_items"] == 7
        r = c.post("/api/v1/subscriptions", json={"email": "ada2@example.org"}, headers=h)
        assert r.status_code == 201
        assert r.json()["confirmation_mailed"] is True
        wait_for_mail(mailbox, "ada2@example.org")
        r = submit(c, "/account", f"/account/subscriptions/{sub.id}/unsubscribe", {})
        assert "That subscription will send nothing more" in r.text
        assert not s.store.get_subscription(sub.id).active  # type: ignore[union-attr]


def test_subscribing_without_smtp_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAPERFEED_SMTP_HOST", raising=False)
    with site(tmp_path / "d") as s, client(s.app) as c:
        sign_up(c, "ada")
        r = submit(c, "/account", "/account/subscriptions", {"email": "ada@example.org"})
        assert r.status_code == 503
        assert "none is configured" in r.text
        h = {"X-CSRF-Token": c.get("/api/v1/me").json()["csrf_token"]}
        r = c.post("/api/v1/subscriptions", json={"email": "ada@example.org"}, headers=h)
        assert r.status_code == 503
        assert s.store.list_subscriptions() == []


# -- serve's background jobs ---------------------------------------------------------------------
def test_serve_runs_the_digest_schedule_and_stops_its_jobs(
    tmp_path: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paperfeed.digest import subscriptions as subs

    with site(tmp_path / "d") as s:
        sub = subs.subscribe(s.store, "reader@example.org")
        s.store.update_subscription(sub.id, confirmed_at=dt.datetime.now(dt.UTC))
        run = digest_runner(s.settings, s.store, lambda: SearchEngine(s.store))
        report = run(DueRun("daily", dt.date.fromisoformat(HF_DAY)))
        assert report.count("sent") == 1
        wait_for_mail(mailbox, "reader@example.org")
        assert run(DueRun("daily", dt.date.fromisoformat(HF_DAY))).count("already-sent") == 1

        monkeypatch.delenv("PAPERFEED_SMTP_HOST")
        quiet = digest_runner(s.settings, s.store, lambda: SearchEngine(s.store))
        assert quiet(DueRun("daily", dt.date.fromisoformat(HF_DAY))).outcomes == []

        services = background_services(s.settings, s.store, lambda: SearchEngine(s.store))
        # Each runs where its job lease is held (one process of several workers).
        assert [type(x.service).__name__ for x in services] == [
            "FetchScheduler",
            "DigestScheduler",
            "Trainer",
        ]
        before = {t.name for t in threading.enumerate()}
        for service in services:
            service.start()
        # Each lease thread starts its service once it holds the job's lock.
        wanted = {"paperfeed-fetch-scheduler", "paperfeed-digests", "paperfeed-trainer"}
        deadline = time.monotonic() + 10
        names = {t.name for t in threading.enumerate()} - before
        while not wanted <= names and time.monotonic() < deadline:
            time.sleep(0.05)
            names = {t.name for t in threading.enumerate()} - before
        assert wanted <= names
        started = time.monotonic()
        for service in reversed(services):
            service.stop()
        assert time.monotonic() - started < 10
        alive = {t.name for t in threading.enumerate() if t.is_alive()}
        assert not names & alive
