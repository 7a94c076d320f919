"""Hugging Face daily papers and single URLs against the recorded server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from paperfeed.fetch import hf_daily
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.url import arxiv_id_of, fetch_url, html_to_text
from paperfeed.store import PaperQuery, Store
from tests.fetch.recorded import (
    FIXTURES,
    Fault,
    RecordedUpstream,
    RunningServer,
    hf_item,
    week_of_papers,
)

DAY = dt.date(2024, 3, 14)


def days_of_items(upstream: RecordedUpstream, first: dt.date, days: int, per_day: int) -> None:
    for d in range(days):
        day = first + dt.timedelta(days=d)
        upstream.hf[day.isoformat()] = [
            hf_item(f"2403.{d * 100 + i + 1:05d}", day, i + 1, upvotes=50 - i)
            for i in range(per_day)
        ]


def fetch(store: Store, config: FetchConfig, **kwargs: object) -> hf_daily.FetchReport:
    when = hf_daily.period(**kwargs)  # type: ignore[arg-type]
    with PoliteClient(config) as client:
        return hf_daily.fetch_period(store, client, config, when)


def test_a_day_arrives_with_ranks_and_upvotes(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    days_of_items(upstream, DAY, 1, 12)
    report = fetch(store, dataclasses.replace(config, hf_page_size=5), date=DAY)
    assert report.ok, report.run.error
    assert (report.run.added, report.run.appearances, report.run.pages) == (12, 12, 3)
    assert [s.query for s in upstream.seen] == [
        {"date": "2024-03-14", "limit": "5", "p": str(p)} for p in range(3)
    ]
    listed = store.query_papers(PaperQuery(feed_date=DAY))
    assert [p.arxiv_id for p in listed[:3]] == ["2403.00001", "2403.00002", "2403.00003"]
    assert [a.rank for a in store.appearances("2403.00012")] == [12]
    assert store.appearances("2403.00012")[0].listing == "hf-daily"
    paper = store.get_paper("2403.00001")
    assert paper is not None
    assert paper.upvotes == 50
    assert paper.sources == ("hf-daily",)


def test_a_refetch_adds_nothing_but_updates_upvotes(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    days_of_items(upstream, DAY, 1, 6)
    fetch(store, config, date=DAY)
    same = fetch(store, config, date=DAY).run
    assert (same.added, same.merged, same.appearances, same.unchanged) == (0, 0, 0, 6)
    upstream.hf[DAY.isoformat()][0]["paper"]["upvotes"] = 75
    moved = fetch(store, config, date=DAY).run
    assert (moved.added, moved.merged, moved.appearances) == (0, 1, 0)
    paper = store.get_paper("2403.00001")
    assert paper is not None
    assert paper.upvotes == 75


def test_a_week_lists_each_paper_on_its_own_day(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    days_of_items(upstream, dt.date(2024, 3, 11), 5, 4)  # Monday to Friday of 2024-W11
    report = fetch(store, config, week="2024-03-13")
    assert report.ok
    assert upstream.seen[0].query["week"] == "2024-W11"
    assert report.run.added == 20
    assert store.feed_dates() == [dt.date(2024, 3, d) for d in range(11, 16)]
    assert store.appearances("2403.00101")[0].rank is None


def test_a_month_is_paged_and_resumes_after_a_failure(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    days_of_items(upstream, dt.date(2024, 3, 1), 10, 3)
    small = dataclasses.replace(config, hf_page_size=10)
    upstream.faults.append(
        Fault("/api/daily_papers", "status", times=99, status=500, when=lambda q: q["p"] == "2")
    )
    failed = fetch(store, small, month="2024-03")
    assert failed.run.status == "failed"
    assert failed.run.added == 20
    upstream.faults.clear()
    upstream.seen.clear()
    resumed = fetch(store, small, month="2024-03")
    assert resumed.ok
    assert resumed.note == "resumed at page 2"
    assert [s.query["p"] for s in upstream.seen] == ["2", "3"]
    assert store.count_papers(PaperQuery()) == 30
    upstream.seen.clear()
    fetch(store, small, month="2024-03")  # a finished month starts over: upvotes move
    assert upstream.seen[0].query["p"] == "0"


def test_recorded_bad_and_truncated_responses(
    store: Store, upstream: RecordedUpstream, config: FetchConfig, server: RunningServer
) -> None:
    upstream.hf["2024-03-15"] = json.loads(
        (FIXTURES / "hf-daily" / "daily_papers.json").read_text()
    )
    report = fetch(store, config, date=dt.date(2024, 3, 15))
    assert report.ok
    assert report.run.added == 5
    paper = store.get_paper("2403.09611")
    assert paper is not None
    assert paper.upvotes == 123
    # A body cut short is asked again; the fetch ends complete.
    upstream.faults.append(Fault("/api/daily_papers", "cut", times=1))
    again = fetch(store, config, date=dt.date(2024, 3, 15))
    assert again.ok
    assert again.run.retries == 1
    assert again.run.quarantined == 0


def test_bad_elements_are_quarantined_the_rest_kept(
    store: Store, upstream: RecordedUpstream, config: FetchConfig, server: RunningServer
) -> None:
    body = (FIXTURES / "hf-daily" / "bad_elements.json").read_bytes()
    upstream.files["/bad.json"] = (body, "application/json")
    with PoliteClient(config) as client:
        direct = hf_daily.fetch_period(
            store,
            client,
            dataclasses.replace(config, hf_daily_url=f"{server.url}/bad.json"),
            hf_daily.HfPeriod("date", "2024-03-15"),
        )
    assert direct.ok
    assert direct.run.quarantined > 0
    assert direct.run.added > 0
    assert all(r.path.startswith(f"{server.url}/bad.json") for r in store.quarantined())


def test_periods_are_checked() -> None:
    assert str(hf_daily.period(week="2024-w9")) == "week=2024-W09"
    assert str(hf_daily.period(month="2024-3")) == "month=2024-03"
    assert str(hf_daily.period(today=DAY)) == "date=2024-03-14"
    with pytest.raises(FetchError, match="only one"):
        hf_daily.period(week="2024-W01", month="2024-01")
    with pytest.raises(FetchError, match="invalid week"):
        hf_daily.period(week="last week")
    with pytest.raises(FetchError, match="invalid month"):
        hf_daily.period(month="2024-13")


def test_recent_days_and_missed_days_are_fetched(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    days_of_items(upstream, dt.date(2024, 3, 10), 5, 2)
    with PoliteClient(config) as client:
        first = hf_daily.fetch_recent(store, client, config, today=dt.date(2024, 3, 11))
        assert [r.run.query for r in first] == ["date=2024-03-10", "date=2024-03-11"]
        later = hf_daily.fetch_recent(store, client, config, today=dt.date(2024, 3, 14))
    assert [r.run.query for r in later] == [f"date=2024-03-{d}" for d in range(11, 15)]
    assert store.count_papers(PaperQuery()) == 10


# ---------------------------------------------------------------------------- URLs


def url_fetch(store: Store, config: FetchConfig, url: str, fmt: str | None = None):  # type: ignore[no-untyped-def]
    with PoliteClient(config) as client:
        return fetch_url(store, client, config, url, fmt=fmt)


def test_an_arxiv_abs_url_asks_the_api(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    upstream.arxiv = week_of_papers("cs.CL", DAY, days=1, per_day=3)
    report = url_fetch(store, config, "https://arxiv.org/abs/2403.00002v1")
    assert report.ok, report.run.error
    assert upstream.seen[0].query == {"id_list": "2403.00002v1", "max_results": "1"}
    assert store.get_paper("2403.00002") is not None
    assert report.run.added == 1
    assert arxiv_id_of("https://arxiv.org/pdf/2403.00002.pdf") == "2403.00002"
    assert arxiv_id_of("https://example.org/abs/2403.00002") is None


def test_a_bibtex_url_and_a_saved_listing_page(
    store: Store, upstream: RecordedUpstream, config: FetchConfig, server: RunningServer
) -> None:
    upstream.files["/lib/library.bib"] = (
        (FIXTURES / "bibtex" / "library.bib").read_bytes(),
        "application/x-bibtex",
    )
    upstream.files["/saved/page.txt"] = (
        (FIXTURES / "listing" / "wrapped.txt").read_bytes(),
        "text/plain",
    )
    bib = url_fetch(store, config, f"{server.url}/lib/library.bib")
    assert bib.ok
    assert bib.run.added > 0
    assert bib.note == "read as bibtex"
    page = url_fetch(store, config, f"{server.url}/saved/page.txt")
    assert page.ok
    assert page.note == "read as listing"
    assert page.run.appearances > 0
    assert store.appearances(store.query_papers(PaperQuery(source="listing"))[0].id)[0].listing == (
        f"{server.url}/saved/page.txt"
    )


def test_an_html_listing_page(
    store: Store, upstream: RecordedUpstream, config: FetchConfig, server: RunningServer
) -> None:
    html = b"""<!DOCTYPE html><html><head><title>Daily Papers</title>
<script>var x = "not a paper";</script></head><body>
<nav>Subscribe</nav><main><h1>Daily Papers</h1><time>Mar 14, 2024</time>
<article><h3>Scaling Paper Feeds to Everyone on One Machine</h3>
<p>We show that a research-paper feed can run on a laptop. It fetches, merges and ranks
papers from several sources, and it survives being killed at any moment.</p></article>
<article><h3>Polite Clients Make Better Neighbours</h3>
<p>We measure how backing off on 429 answers keeps a harvester welcome. The client slows
down instead of failing, and resumes where it stopped.</p></article>
</main></body></html>"""
    upstream.files["/papers"] = (html, "text/html; charset=utf-8")
    report = url_fetch(store, config, f"{server.url}/papers")
    assert report.ok, report.run.error
    titles = sorted(p.title for p in store.query_papers(PaperQuery()))
    assert titles == [
        "Polite Clients Make Better Neighbours",
        "Scaling Paper Feeds to Everyone on One Machine",
    ]
    assert store.feed_dates() == [dt.date(2024, 3, 14)]
    assert "not a paper" not in html_to_text(html)


def test_url_errors_are_one_line(store: Store, config: FetchConfig, server: RunningServer) -> None:
    missing = url_fetch(store, config, f"{server.url}/nothing.bib")
    assert missing.run.status == "failed"
    assert "HTTP 404" in (missing.run.error or "")
    with pytest.raises(FetchError, match="not an http"):
        url_fetch(store, config, "ftp://example.org/x.bib")
