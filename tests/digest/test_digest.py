"""The digest end to end: subscriptions, composition with reasons, real SMTP on loopback,
exactly-once delivery through failures, re-runs and a kill mid-batch."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

from paperfeed.accounts.signing import SignatureError, Signer
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.compose import compose, period_for
from paperfeed.digest.mailer import MailError, SmtpMailer, SmtpSettings
from paperfeed.digest.render import MailContext
from paperfeed.digest.runner import DigestSender
from paperfeed.digest.schedule import DigestConfig, DigestScheduler, DueRun, due_runs
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import ListingEntry, Subscription, SubscriptionContents, new_paper
from paperfeed.search import SearchEngine
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, PaperQuery, Store, open_store
from tests.smtp_server import Mailbox, free_port

DAY = dt.date(2026, 3, 13)  # a Friday
BASE = "https://papers.example.org"
PAPERS = [
    # title, authors, categories, upvotes, feed day
    ("Diffusion personalization with few images", ["Ada Lovelace"], ["cs.CV"], 14, DAY),
    ("Speech recognition with LLM correction", ["Alan Turing"], ["cs.CL"], 3, DAY),
    ("<script>alert('x')</script> & Tom's \"robust\" parser", ["Grace Hopper"], ["cs.PL"], 7, DAY),
    ("Graph networks for molecules", ["Marie Curie"], ["q-bio.BM"], 0, DAY),
    ("An older paper from Monday", ["Ada Lovelace"], ["cs.LG"], 30, DAY - dt.timedelta(days=4)),
]


def fill(store: Store) -> None:
    records = []
    for rank, (title, authors, cats, votes, day) in enumerate(PAPERS, start=1):
        paper = new_paper(
            title=title,
            abstract=f"We study {title.lower()} in depth. " * 3,
            authors=authors,
            categories=cats,
            upvotes=votes,
            source="hf-daily",
        )
        records.append(IncomingRecord(paper, ListingEntry("daily", day, rank)))
    store.write_batch(records, [])
    store.refresh_keyword_index()


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store)
    return store


def active(store: Store, email: str, **kw: object) -> Subscription:
    sub = subs.subscribe(store, email, **kw)  # type: ignore[arg-type]
    return store.update_subscription(sub.id, confirmed_at=dt.datetime.now(dt.UTC))


def sender(store: Store, **kw: object) -> DigestSender:
    return DigestSender(
        store=store,
        ctx=MailContext(base_url=BASE, sender="paperfeed <digest@example.org>"),
        signer=Signer.for_store(store),
        searcher=SearchEngine(store),
        clock=lambda: dt.datetime(2026, 3, 13, 8, 0, tzinfo=dt.UTC),
        sleep=lambda s: None,
        **kw,  # type: ignore[arg-type]
    )


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(
        SmtpSettings(
            host="127.0.0.1", port=port, security="none", sender="paperfeed <digest@example.org>"
        )
    )


# -- subscriptions ---------------------------------------------------------------------------


def test_double_opt_in_and_signed_links(filled: Store) -> None:
    signer = Signer.for_store(filled)
    sub = subs.subscribe(filled, "reader@example.org", frequency="weekly")
    assert not sub.confirmed
    assert filled.active_subscriptions() == []
    token = subs.confirm_token(signer, sub)
    with pytest.raises(SignatureError):
        subs.confirm(filled, signer, subs.unsubscribe_token(signer, sub))  # wrong purpose
    confirmed = subs.confirm(filled, signer, token)
    assert confirmed.active
    assert [s.id for s in filled.active_subscriptions("weekly")] == [sub.id]
    gone = subs.unsubscribe(filled, signer, subs.unsubscribe_token(signer, sub))
    assert not gone.active
    assert subs.unsubscribe(filled, signer, subs.unsubscribe_token(signer, sub)) == gone
    # Subscribing again after unsubscribing works, without a second opt-in.
    again = subs.subscribe(filled, "Reader@example.org", frequency="daily")
    assert again.id == sub.id
    assert again.active
    with pytest.raises(PaperfeedError, match="not an e-mail address"):
        subs.subscribe(filled, "not-an-address")
    with pytest.raises(PaperfeedError, match="frequency"):
        subs.subscribe(filled, "x@example.org", frequency="hourly")


def test_an_unsubscribe_link_names_its_own_subscription(filled: Store) -> None:
    signer = Signer.for_store(filled)
    one = active(filled, "one@example.org")
    active(filled, "two@example.org")
    filled.delete_subscription(one.id)
    with pytest.raises(NotFoundError):
        subs.unsubscribe(filled, signer, subs.unsubscribe_token(signer, one))
    assert len(filled.active_subscriptions()) == 1


# -- composition ---------------------------------------------------------------------------


def test_digest_sections_reasons_and_no_duplicates(filled: Store) -> None:
    sub = active(
        filled,
        "reader@example.org",
        contents=SubscriptionContents(
            searches=("speech recognition",), authors=("ada lovelace",), categories=("cs.*",)
        ),
        max_items=5,
    )
    digest = compose(filled, sub, period_for("daily", DAY), searcher=SearchEngine(filled))
    reasons = {p.paper.title: p.reason for p in digest.picks}
    assert len(digest.picks) == 4  # only the four papers of that day exist
    assert len(reasons) == 4  # and none twice
    assert reasons["Diffusion personalization with few images"] == "trending: 14 votes"
    assert reasons["Speech recognition with LLM correction"] in {
        "trending: 3 votes",
        "matches your saved search 'speech recognition'",
    }
    assert digest.sections[0].key == "trending"
    # The Monday paper belongs to the week, not to Friday's digest.
    assert "An older paper from Monday" not in reasons
    weekly = compose(filled, sub, period_for("weekly", DAY), searcher=SearchEngine(filled))
    weekly_titles = [p.paper.title for p in weekly.picks]
    assert len(weekly_titles) == 5
    # Trending decays with age: 30 votes four days old rank below 14 votes today.
    assert weekly_titles[0] == "Diffusion personalization with few images"
    assert "An older paper from Monday" in weekly_titles


def test_round_robin_gives_every_interest_a_place(filled: Store) -> None:
    sub = active(
        filled,
        "reader@example.org",
        contents=SubscriptionContents(authors=("Marie Curie",)),
        max_items=2,
    )
    digest = compose(filled, sub, period_for("daily", DAY))
    titles = [p.paper.title for p in digest.picks]
    assert titles == ["Diffusion personalization with few images", "Graph networks for molecules"]
    assert digest.picks[1].reason == "by Marie Curie, whom you follow"


# -- sending -----------------------------------------------------------------------------------


def test_digest_mail_parsed_back(filled: Store, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    active(filled, "reader@example.org", max_items=10)
    s = sender(filled)
    with mailer(port) as m:
        report = s.run(m, day=DAY)
    assert [o.status for o in report.outcomes] == ["sent"]
    (msg,) = box.to("reader@example.org")
    assert msg["Subject"] == "Papers of Friday 13 March 2026: 4 picks"
    assert msg["From"] == "paperfeed <digest@example.org>"
    assert msg["Message-ID"] == f"<digest.1.{DAY.isoformat()}@papers.example.org>"
    unsubscribe = msg["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{BASE}/unsubscribe?token=")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.is_multipart()
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    text = text_part.get_content()
    html = html_part.get_content()
    # The plain part holds the raw title; the HTML part only its escaped form.
    assert "<script>alert('x')</script> & Tom's \"robust\" parser" in text
    assert "<script>" not in html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Tom&#39;s &#34;robust&#34;" in html
    )
    assert "Why: trending: 14 votes" in text
    for paper in filled.query_papers(PaperQuery(feed_date=DAY)):
        assert f"{BASE}/papers/{paper.id}" in text
    # The unsubscribe link in the header really unsubscribes this subscription.
    token = unsubscribe[1:-1].split("token=")[1]
    subs.unsubscribe(filled, Signer.for_store(filled), unquote(token))
    assert filled.active_subscriptions() == []


def test_rerun_sends_nothing_twice(filled: Store, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    for i in range(3):
        active(filled, f"r{i}@example.org")
    s = sender(filled)
    with mailer(port) as m:
        first = s.run(m, day=DAY)
        second = s.run(m, day=DAY)
    assert first.count("sent") == 3
    assert second.count("already-sent") == 3
    assert len(box.messages) == 3
    runs = filled.digest_runs(period=DAY.isoformat())
    assert [r.status for r in runs] == ["sent"] * 3
    assert all(r.attempts == 1 for r in runs)


def test_dry_run_sends_and_records_nothing(filled: Store, mailbox: tuple[Mailbox, int]) -> None:
    box, _ = mailbox
    active(filled, "reader@example.org")
    report = sender(filled).run(None, day=DAY, dry_run=True)
    assert [(o.status, o.items) for o in report.outcomes] == [("would-send", 4)]
    assert box.messages == []
    assert filled.digest_runs() == []
    with pytest.raises(MailError, match="no SMTP server configured"):
        sender(filled).run(None, day=DAY)


def test_failures_are_retried_later_and_others_still_get_theirs(
    filled: Store, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    for name in ("ok1", "flaky", "gone", "ok2"):
        active(filled, f"{name}@example.org")
    box.refuse["flaky@example.org"] = "451 4.3.0 try again later"
    box.refuse["gone@example.org"] = "550 5.1.1 no such mailbox"
    now = [dt.datetime(2026, 3, 13, 8, 0, tzinfo=dt.UTC)]
    sleeps: list[float] = []
    s = sender(filled)
    s.clock = lambda: now[0]
    s.sleep = sleeps.append
    with mailer(port) as m:
        report = s.run(m, day=DAY)
    status = {o.email: o.status for o in report.outcomes}
    assert status == {
        "ok1@example.org": "sent",
        "flaky@example.org": "failed",
        "gone@example.org": "gave-up",
        "ok2@example.org": "sent",
    }
    assert sleeps == [2.0, 4.0]  # in-run backoff for the temporary failure only
    assert len(box.messages) == 2

    # Too early for the next attempt: nothing happens.
    del box.refuse["flaky@example.org"]
    with mailer(port) as m:
        assert {o.status for o in s.run(m, day=DAY).outcomes if o.email.startswith("flaky")} == {
            "waiting"
        }
    now[0] += dt.timedelta(hours=2)
    with mailer(port) as m:
        later = s.run(m, day=DAY)
    status = {o.email: o.status for o in later.outcomes}
    assert status["flaky@example.org"] == "sent"
    assert status["gone@example.org"] == "gave-up"
    assert status["ok1@example.org"] == "already-sent"
    assert sorted(m["To"] for m in box.messages) == [
        "flaky@example.org",
        "ok1@example.org",
        "ok2@example.org",
    ]


def test_unreachable_server_is_a_temporary_failure(filled: Store) -> None:
    active(filled, "reader@example.org")
    s = sender(filled)
    m = SmtpMailer(SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout=2))
    report = s.run(m, day=DAY)
    assert [o.status for o in report.outcomes] == ["failed"]
    assert "cannot reach the SMTP server" in (report.outcomes[0].error or "")
    (run,) = filled.digest_runs()
    assert run.next_attempt_at is not None


@pytest.mark.slow
def test_killed_mid_batch_then_rerun_misses_nobody_and_duplicates_nothing(
    settings: Settings, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    with open_store(settings) as store:
        fill(store)
        for i in range(8):
            active(store, f"r{i}@example.org")
    env = {
        **os.environ,
        "PAPERFEED_HOME": str(settings.data_dir),
        "PAPERFEED_SMTP_HOST": "127.0.0.1",
        "PAPERFEED_SMTP_PORT": str(port),
        "PAPERFEED_SMTP_SECURITY": "none",
        "PAPERFEED_SMTP_FROM": "paperfeed <digest@example.org>",
    }
    cmd = [sys.executable, "-m", "paperfeed", "digest", "send", "--date", DAY.isoformat()]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = threading.Event()

    def kill_on_fourth(accepted: int) -> None:
        # The 4th MAIL command: three messages were accepted (and marked sent), the
        # fourth is claimed and marked "sending" but never reaches the server.
        if accepted == 3 and not killed.is_set():
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()

    box.on_mail = kill_on_fourth
    proc.communicate(timeout=120)
    assert killed.is_set()
    assert proc.returncode == -signal.SIGKILL
    assert len(box.messages) == 3
    box.on_mail = None
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "3 already-sent, 5 sent" in rerun.stdout
    received = sorted(str(m["To"]) for m in box.messages)
    assert received == [f"r{i}@example.org" for i in range(8)]


# -- schedule ----------------------------------------------------------------------------------


def test_due_runs() -> None:
    config = DigestConfig(time=dt.time(7, 0), weekly_day=0)
    monday_early = dt.datetime(2026, 3, 16, 6, 59)
    monday = dt.datetime(2026, 3, 16, 7, 0)
    assert due_runs(config, monday_early, dt.date(2026, 3, 16)) == []
    assert due_runs(config, monday, dt.date(2026, 3, 16)) == [
        DueRun("daily", dt.date(2026, 3, 16)),
        DueRun("weekly", dt.date(2026, 3, 15)),  # the Sunday ending last week
    ]
    # A stale feed (no source ran for days) gets no daily digest.
    assert due_runs(config, dt.datetime(2026, 3, 18, 9, 0), dt.date(2026, 3, 13)) == []


def test_scheduler_runs_due_digests_once(filled: Store, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    active(filled, "reader@example.org")
    s = sender(filled)
    calls: list[DueRun] = []

    def run(due: DueRun) -> object:
        calls.append(due)
        with mailer(port) as m:
            return s.run(m, day=due.day, frequency=due.frequency)

    scheduler = DigestScheduler(
        DigestConfig(time=dt.time(7, 0), weekly_day=6),
        run,  # type: ignore[arg-type]
        lambda: DAY,
        clock=lambda: dt.datetime(2026, 3, 13, 7, 30),
    )
    scheduler.tick()
    scheduler.tick()
    assert calls == [DueRun("daily", DAY), DueRun("daily", DAY)]
    assert len(box.messages) == 1
