"""feeds.py on fixtures: periods, the trending formula, ordering, filters, navigation."""

from __future__ import annotations

import datetime as dt

import pytest

from paperfeed.errors import PaperfeedError
from paperfeed.feeds import (
    AGE_OFFSET_DAYS,
    GRAVITY,
    FeedSort,
    PeriodKind,
    day_period,
    feed,
    month_period,
    parse_month,
    parse_period,
    parse_sort,
    parse_week,
    rank_rows,
    reference_day,
    trending_score,
    week_period,
)
from paperfeed.model import ListingEntry, new_paper
from paperfeed.store import IncomingRecord, SearchFilters, Store
from paperfeed.store.base import FeedRow

D = dt.date.fromisoformat


def test_periods_parse_and_shift() -> None:
    week = parse_week("2026-W11")
    assert (week.start, week.end, week.key) == (D("2026-03-09"), D("2026-03-15"), "2026-W11")
    assert week_period(D("2026-03-15")) == week
    assert week.shifted(-1).key == "2026-W10"
    month = parse_month("2026-02")
    assert (month.start, month.end, month.key) == (D("2026-02-01"), D("2026-02-28"), "2026-02")
    assert month.shifted(-2).key == "2025-12"
    assert month.shifted(11).key == "2027-01"
    assert day_period(D("2026-03-01")).shifted(-1).key == "2026-02-28"
    assert parse_week("2026-w01").start == D("2025-12-29")  # ISO week 1 starts in 2025
    assert month_period(D("2024-02-10")).end == D("2024-02-29")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_week("2026-W54"), "week: '2026-W54' is not an ISO week"),
        (lambda: parse_week("2026-11"), "is not an ISO week"),
        (lambda: parse_month("2026-13"), "month: '2026-13' is not a month"),
        (lambda: parse_sort("hot"), "sort: 'hot' is not one of trending, date"),
    ],
)
def test_bad_period_and_sort_values_name_the_parameter(call: object, message: str) -> None:
    with pytest.raises(PaperfeedError, match=message):
        call()  # type: ignore[operator]


def test_trending_formula() -> None:
    today = D("2026-03-14")
    assert trending_score(10, today, today) == pytest.approx(10 / AGE_OFFSET_DAYS**GRAVITY)
    assert trending_score(10, D("2026-03-11"), today) == pytest.approx(10 / 5**GRAVITY)
    assert trending_score(0, today, today) == 0.0
    assert trending_score(-3, today, today) == 0.0
    # Never negative ages: a day after the reference counts as age 0.
    assert trending_score(10, D("2026-03-20"), today) == trending_score(10, today, today)
    # Gravity: 100 votes four days old (100 / 6^1.8 = 3.97) lose to 20 fresh ones
    # (20 / 2^1.8 = 5.74) but beat 10 fresh ones (2.87).
    old = trending_score(100, D("2026-03-10"), today)
    assert trending_score(20, today, today) > old > trending_score(10, today, today)


def test_reference_day_freezes_past_periods() -> None:
    week = parse_week("2026-W11")
    assert reference_day(week, D("2026-12-01")) == D("2026-03-15")
    assert reference_day(week, D("2026-03-11")) == D("2026-03-11")


def test_rank_rows_orders_and_breaks_ties() -> None:
    rows = [
        FeedRow(pk=1, day=D("2026-03-13"), rank=2, votes=0),
        FeedRow(pk=2, day=D("2026-03-14"), rank=5, votes=0),
        FeedRow(pk=3, day=D("2026-03-14"), rank=1, votes=0),
        FeedRow(pk=4, day=D("2026-03-13"), rank=None, votes=30),
        FeedRow(pk=5, day=D("2026-03-14"), rank=None, votes=0),
    ]
    ref = D("2026-03-14")
    trending = [r.pk for r, _ in rank_rows(rows, FeedSort.TRENDING, ref)]
    # Votes first; then (all at 0) newer day, better rank, unranked last, pk.
    assert trending == [4, 3, 2, 5, 1]
    by_date = [r.pk for r, _ in rank_rows(rows, FeedSort.DATE, ref)]
    assert by_date == [3, 2, 5, 1, 4]


def _seed(store: Store) -> None:
    papers = [
        # title, categories, upvotes, [(feed day, rank)]
        ("Fresh and popular", ["cs.CL"], 50, [("2026-03-14", 2)]),
        ("Fresh, no votes", ["cs.CV"], None, [("2026-03-14", 1)]),
        ("Old and very popular", ["cs.CL", "cs.LG"], 200, [("2026-03-09", 1), ("2026-03-13", 4)]),
        ("Last month", ["cs.LG"], 10, [("2026-02-27", 1)]),
        ("Undated listing", ["cs.CL"], 5, [("", 1)]),
    ]
    records = []
    for title, cats, votes, days in papers:
        paper = new_paper(title=title, categories=cats, upvotes=votes, source="jsonl")
        for day, rank in days:
            entry = ListingEntry("fixture", D(day) if day else None, rank)
            records.append(IncomingRecord(paper, entry))
    store.write_batch(records, [])


def test_feed_over_a_store(store: Store) -> None:
    _seed(store)
    week = parse_week("2026-W11")
    page = feed(store, week, sort=FeedSort.TRENDING, today=D("2026-03-14"))
    titles = [e.paper.title for e in page.entries]
    # 200 votes first listed on the 9th (age 5): 200 / 7^1.8 = 6.1 < 50 fresh: 50 / 2^1.8 = 14.4
    assert trending_score(200, D("2026-03-09"), D("2026-03-14")) < trending_score(
        50, D("2026-03-14"), D("2026-03-14")
    )
    assert titles == ["Fresh and popular", "Old and very popular", "Fresh, no votes"]
    old = page.entries[1]
    assert (old.day, old.rank, old.votes) == (D("2026-03-09"), 1, 200)
    assert page.total == 3
    by_date = feed(store, week, sort=FeedSort.DATE, today=D("2026-03-14"))
    assert [e.paper.title for e in by_date.entries] == [
        "Fresh, no votes",
        "Fresh and popular",
        "Old and very popular",
    ]
    cl = feed(store, week, filters=SearchFilters(categories=("cs.CL",)))
    assert {e.paper.title for e in cl.entries} == {"Fresh and popular", "Old and very popular"}
    paged = feed(store, week, limit=2, offset=2, today=D("2026-03-14"))
    assert [e.paper.title for e in paged.entries] == ["Fresh, no votes"]
    assert paged.total == 3
    assert not paged.has_more
    assert feed(store, week, limit=2).has_more
    # Navigation: day views skip to the nearest days with papers; weeks and months by
    # the calendar, with no "next" past the data.
    day = feed(store, day_period(D("2026-03-13")))
    assert day.previous is not None
    assert day.previous.key == "2026-03-09"
    assert day.next is not None
    assert day.next.key == "2026-03-14"
    assert page.previous is not None
    assert page.previous.key == "2026-W10"
    assert page.next is None
    month = feed(store, parse_month("2026-02"))
    assert [e.paper.title for e in month.entries] == ["Last month"]
    assert month.next is not None
    assert month.next.kind is PeriodKind.MONTH


def test_parse_period_defaults_to_the_latest_day(store: Store) -> None:
    _seed(store)
    assert parse_period(store).start == D("2026-03-14")
    assert parse_period(store, week="latest").key == "2026-W11"
    assert parse_period(store, month="latest").key == "2026-03"
    with pytest.raises(PaperfeedError, match="only one of date, week and month"):
        parse_period(store, date="2026-03-14", week="2026-W11")
    with pytest.raises(PaperfeedError, match="date: '14/03/2026' is not a date"):
        parse_period(store, date="14/03/2026")


def test_feed_limits_are_checked(store: Store) -> None:
    with pytest.raises(PaperfeedError, match="limit must be between"):
        feed(store, day_period(D("2026-03-14")), limit=0)
    with pytest.raises(PaperfeedError, match="offset must be 0 or more"):
        feed(store, day_period(D("2026-03-14")), offset=-1)
