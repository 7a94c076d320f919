"""arXiv by category against the recorded server: a week arrives, re-runs add nothing,
interrupted runs resume, throttling and broken pages cost time, never papers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json

import pytest

from paperfeed.fetch import arxiv_api
from paperfeed.fetch.arxiv_api import ArxivCursor, choose_window
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.store import PaperQuery, Store
from tests.fetch.recorded import Fault, RecordedUpstream, atom_entry, week_of_papers

DAY1 = dt.date(2024, 3, 8)
DAY7 = dt.date(2024, 3, 14)


@pytest.fixture
def week(upstream: RecordedUpstream) -> RecordedUpstream:
    upstream.arxiv = week_of_papers("cs.CL", DAY1) + week_of_papers(
        "cs.CV", DAY1, per_day=5, prefix="2402"
    )
    return upstream


def fetch(store: Store, config: FetchConfig, **kwargs: object) -> arxiv_api.FetchReport:
    with PoliteClient(config) as client:
        return arxiv_api.fetch_category(
            store,
            client,
            config,
            "cs.CL",
            today=DAY7,
            **kwargs,  # type: ignore[arg-type]
        )


def starts(upstream: RecordedUpstream) -> list[int]:
    return [int(s.query["start"]) for s in upstream.requests_to("/api/query")]


def test_a_week_of_cs_cl_arrives(store: Store, week: RecordedUpstream, config: FetchConfig) -> None:
    report = fetch(store, config, since=DAY1)
    assert report.ok, report.run.error
    run = report.run
    assert (run.added, run.merged, run.unchanged, run.quarantined) == (140, 0, 0, 0)
    assert run.appearances == 140
    assert run.pages == 6  # 140 results, 25 a page
    assert starts(week) == [0, 25, 50, 75, 100, 125]
    assert store.count_papers(PaperQuery()) == 140
    # Each paper is listed on the day of its latest version: seven feed days of 20.
    days = store.feed_dates()
    assert days == [DAY1 + dt.timedelta(days=d) for d in range(7)]
    assert store.count_papers(PaperQuery(feed_date=DAY1 + dt.timedelta(days=3))) == 20
    paper = store.get_paper("2403.00003")
    assert paper is not None
    assert paper.categories == ("cs.CL",)
    assert paper.updated == DAY1
    assert paper.published == DAY1 - dt.timedelta(days=40)
    assert paper.sources == ("arxiv-atom",)
    query = week.requests_to("/api/query")[0].query
    assert query["search_query"] == "cat:cs.CL AND lastUpdatedDate:[202403080000 TO 202403142359]"
    assert (query["sortBy"], query["sortOrder"]) == ("lastUpdatedDate", "ascending")
    state = store.fetch_state("arxiv", "cs.CL")
    assert state is not None
    assert ArxivCursor.from_json(state.cursor) == ArxivCursor(done_through=DAY7)


def test_a_rerun_adds_nothing(store: Store, week: RecordedUpstream, config: FetchConfig) -> None:
    fetch(store, config, since=DAY1)
    again = fetch(store, config, since=DAY1).run
    assert (again.added, again.merged, again.appearances, again.unchanged) == (0, 0, 0, 140)
    assert store.count_papers(PaperQuery()) == 140


def test_the_next_run_continues_from_the_last_day_covered(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    fetch(store, config, since=DAY1)
    week.arxiv += week_of_papers("cs.CL", DAY7 + dt.timedelta(days=1), days=1, start_number=500)
    week.seen.clear()
    with PoliteClient(config) as client:
        report = arxiv_api.fetch_category(
            store, client, config, "cs.CL", today=DAY7 + dt.timedelta(days=1)
        )
    assert report.run.added == 20
    assert report.run.unchanged == 20  # the last day covered is asked again
    assert report.note == "2024-03-14 to 2024-03-15"


def test_a_first_run_without_since_takes_the_last_days(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    report = fetch(store, dataclasses.replace(config, arxiv_days=2))
    assert report.note == "2024-03-13 to 2024-03-14"
    assert report.run.added == 40


def test_an_interrupted_run_resumes_where_it_stopped(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    # The upstream breaks down for good after three pages.
    week.faults.append(
        Fault("/api/query", "status", times=99, status=500, when=lambda q: q["start"] == "75")
    )
    failed = fetch(store, config, since=DAY1)
    assert failed.run.status == "failed"
    assert "HTTP 500" in (failed.run.error or "")
    assert failed.run.added == 75
    state = store.fetch_state("arxiv", "cs.CL")
    assert state is not None
    saved = ArxivCursor.from_json(state.cursor)
    assert (saved.window_from, saved.window_to, saved.start, saved.total) == (DAY1, DAY7, 75, 140)
    week.faults.clear()
    week.seen.clear()
    resumed = fetch(store, config)  # no --since: the unfinished window goes on
    assert resumed.ok
    assert starts(week) == [75, 100, 125]
    assert resumed.run.added == 65
    assert resumed.note == "2024-03-08 to 2024-03-14, resumed at 75"
    assert store.count_papers(PaperQuery()) == 140


def test_restart_forgets_the_unfinished_window(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    cursor = ArxivCursor(window_from=DAY1, window_to=DAY7, start=75, total=140)
    assert choose_window(cursor, since=None, today=DAY7, default_days=3) == cursor
    assert choose_window(cursor, since=DAY1, today=DAY7, default_days=3) == cursor
    fresh = choose_window(cursor, since=None, today=DAY7, default_days=3, restart=True)
    assert (fresh.window_from, fresh.start) == (DAY7 - dt.timedelta(days=2), 0)
    other = choose_window(cursor, since=DAY7, today=DAY7, default_days=3)
    assert (other.window_from, other.start) == (DAY7, 0)
    with pytest.raises(FetchError, match="in the future"):
        choose_window(ArxivCursor(), since=DAY7 + dt.timedelta(days=1), today=DAY7, default_days=1)


def test_a_429_storm_slows_the_fetch_down_and_it_completes(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    week.faults.append(Fault("/api/query", "status", times=6, status=429, retry_after="0"))
    slow = dataclasses.replace(config, min_interval=0.01, max_interval=0.5)
    report = fetch(store, slow, since=DAY1)
    assert report.ok
    assert report.run.added == 140
    assert report.run.retries == 6
    answers = [s.answer for s in week.seen]
    assert answers[:6] == ["429"] * 6
    assert answers[6:] == ["200"] * 6
    # The gaps between requests grew during the storm (the interval doubles per 429).
    times = [s.at for s in week.seen]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Waits of 0.02, 0.04, 0.08, 0.16, 0.32, 0.5 s: the later gaps are the long ones.
    assert gaps[0] < 0.3
    assert gaps[4] >= 0.32
    assert gaps[5] >= 0.5


def test_broken_answers_cost_retries_not_papers(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    week.faults += [
        Fault("/api/query", "status", times=1, status=503, retry_after="0"),
        Fault("/api/query", "truncate", times=1, when=lambda q: q["start"] == "25"),
        Fault("/api/query", "cut", times=1, when=lambda q: q["start"] == "50"),
        Fault("/api/query", "slow", times=1, delay=0.6, when=lambda q: q["start"] == "75"),
        Fault("/api/query", "empty", times=1, when=lambda q: q["start"] == "100"),
        Fault("/api/query", "status", times=1, status=502, when=lambda q: q["start"] == "125"),
    ]
    report = fetch(store, dataclasses.replace(config, timeout=0.3), since=DAY1)
    assert report.ok, report.run.error
    assert (report.run.added, report.run.quarantined) == (140, 0)
    assert report.run.retries == 6
    assert store.stats().quarantined == 0


def test_a_page_that_stays_cut_keeps_its_good_entries_and_loses_none(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    week.faults.append(Fault("/api/query", "cut", times=4, when=lambda q: q["start"] == "25"))
    report = fetch(store, config, since=DAY1)
    assert report.ok
    assert report.run.added == 140
    # The cut page's readable entries were kept; the next page started right after them.
    later = [s for s in starts(week) if s > 25]
    assert later
    assert later[0] not in (25, 50)
    assert store.stats().quarantined == 0


def test_bad_entries_are_quarantined_and_the_rest_kept(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    victims = [p for p in week.arxiv if p.arxiv_id in ("2403.00010", "2403.00042")]
    week.arxiv_raw_entries[victims[0].arxiv_id] = atom_entry(
        dataclasses.replace(victims[0], title="")
    )
    week.arxiv_raw_entries[victims[1].arxiv_id] = atom_entry(victims[1]).replace(
        f"<published>{victims[1].published:%Y-%m-%dT%H:%M:%SZ}</published>",
        "<published>2024-13-45T00:00:00Z</published>",
    )
    report = fetch(store, config, since=DAY1)
    assert report.ok
    assert (report.run.added, report.run.quarantined) == (138, 2)
    reasons = sorted(r.reason for r in store.quarantined())
    assert reasons[0] == "missing title"
    assert reasons[1].startswith("unparsable date in field 'published'")
    assert {r.path for r in store.quarantined()}
    assert all(r.path.startswith(config.arxiv_api_url) for r in store.quarantined())


def test_an_api_error_fails_the_run_with_arxivs_message(
    store: Store, week: RecordedUpstream, config: FetchConfig
) -> None:
    week.faults.append(
        Fault(
            "/api/query",
            "status",
            status=400,
            body=b"<feed><entry><summary>malformed query</summary></entry></feed>",
        )
    )
    report = fetch(store, config, since=DAY1)
    assert report.run.status == "failed"
    assert "HTTP 400" in (report.run.error or "")
    assert store.fetch_runs()[0].status == "failed"


def test_an_invalid_category_is_refused(store: Store, config: FetchConfig) -> None:
    with PoliteClient(config) as client, pytest.raises(FetchError, match="invalid arXiv category"):
        arxiv_api.fetch_category(store, client, config, "cs CL; drop")


def test_the_listing_feed_lists_todays_announcements(
    store: Store, upstream: RecordedUpstream, config: FetchConfig
) -> None:
    with PoliteClient(config) as client:
        report = arxiv_api.fetch_listing(store, client, config, "cs.CL")
    assert report.ok
    assert report.run.added > 0
    assert report.run.appearances == report.run.added
    assert store.feed_dates() == [dt.date(2024, 2, 23)]
    entries = store.query_papers(PaperQuery(feed_date=dt.date(2024, 2, 23)))
    assert entries[0].arxiv_id == "2402.14008"
    appearance = store.appearances("2402.14008")[0]
    assert (appearance.listing, appearance.rank) == ("arxiv-rss/cs.CL", 1)
    state = store.fetch_state("arxiv-rss", "cs.CL")
    assert state is not None
    assert "last" in json.loads(state.cursor)
