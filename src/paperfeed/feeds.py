"""Feeds: the papers listed on a day, a week or a month, sorted by trending or by date.

The web pages, the JSON API, the Hugging Face-compatible API, the RSS / Atom feeds (and
later the digest) all call :func:`feed`, so a list never differs between them.

Trending is Hacker News' "gravity" ranking, with days as the unit of age::

    score = votes / (age_days + 2) ** 1.8

``votes`` are the paper's imported upvotes (0 when unknown) plus the votes cast on this
instance (the store's ``feed_rows`` adds them); ``age_days`` counts whole
days from the first day the paper was listed within the period to the *reference day*:
today, or the last day of the period when the period is over, so that the order of a past
week does not keep changing. Ties (e.g. no votes at all) go to the newer listing, then to
the better listing rank, then to the older paper.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum

from paperfeed.errors import PaperfeedError
from paperfeed.model import Paper
from paperfeed.store import SearchFilters, Store
from paperfeed.store.base import FeedRow

GRAVITY = 1.8
AGE_OFFSET_DAYS = 2.0
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


class PeriodKind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    RANGE = "range"


class FeedSort(StrEnum):
    TRENDING = "trending"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Period:
    """A day, an ISO week (Monday to Sunday) or a calendar month; ``end`` is inclusive."""

    kind: PeriodKind
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        """The period as it is written in URLs: 2026-03-14, 2026-W11 or 2026-03."""
        if self.kind is PeriodKind.DAY:
            return self.start.isoformat()
        if self.kind is PeriodKind.WEEK:
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind is PeriodKind.MONTH:
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def label(self) -> str:
        if self.kind is PeriodKind.DAY:
            return f"{self.start:%A} {self.start.day} {self.start:%B %Y}"
        if self.kind is PeriodKind.WEEK:
            year, week, _ = self.start.isocalendar()
            return (
                f"Week {week} of {year} ({self.start.day} {self.start:%b} – "
                f"{self.end.day} {self.end:%b})"
            )
        if self.kind is PeriodKind.MONTH:
            return f"{self.start:%B %Y}"
        return f"{self.start.day} {self.start:%b %Y} – {self.end.day} {self.end:%b %Y}"

    def shifted(self, steps: int) -> Period:
        """The period ``steps`` periods later (earlier when negative), calendar-wise."""
        if self.kind is PeriodKind.DAY:
            return day_period(self.start + dt.timedelta(days=steps))
        if self.kind is PeriodKind.WEEK:
            return week_period(self.start + dt.timedelta(weeks=steps))
        if self.kind is PeriodKind.RANGE:
            span = dt.timedelta(days=((self.end - self.start).days + 1) * steps)
            return range_period(self.start + span, self.end + span)
        index = self.start.year * 12 + self.start.month - 1 + steps
        return month_period(dt.date(index // 12, index % 12 + 1, 1))

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def day_period(day: dt.date) -> Period:
    return Period(PeriodKind.DAY, day, day)


def week_period(day: dt.date) -> Period:
    start = day - dt.timedelta(days=day.weekday())
    return Period(PeriodKind.WEEK, start, start + dt.timedelta(days=6))


def month_period(day: dt.date) -> Period:
    last = calendar.monthrange(day.year, day.month)[1]
    return Period(PeriodKind.MONTH, day.replace(day=1), day.replace(day=last))


def range_period(start: dt.date, end: dt.date) -> Period:
    if start > end:
        raise PaperfeedError(f"the range starts ({start}) after it ends ({end})")
    return Period(PeriodKind.RANGE, start, end)


def parse_day(value: str, *, name: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise PaperfeedError(f"{name}: {value!r} is not a date (use YYYY-MM-DD)") from None


def parse_week(value: str, *, name: str = "week") -> Period:
    match = _WEEK.match(value.strip())
    if match:
        try:
            monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
        except ValueError:
            pass
        else:
            return week_period(monday)
    raise PaperfeedError(f"{name}: {value!r} is not an ISO week (use YYYY-Www, e.g. 2026-W11)")


def parse_month(value: str, *, name: str = "month") -> Period:
    match = _MONTH.match(value.strip())
    if match and 1 <= int(match[2]) <= 12 and int(match[1]) >= 1:
        return month_period(dt.date(int(match[1]), int(match[2]), 1))
    raise PaperfeedError(f"{name}: {value!r} is not a month (use YYYY-MM, e.g. 2026-03)")


def latest_period(store: Store, *, today: dt.date | None = None) -> Period:
    """The newest feed day with papers (today when the store has none yet)."""
    return day_period(store.latest_feed_day() or today or dt.date.today())


def parse_period(
    store: Store,
    *,
    date: str | None = None,
    week: str | None = None,
    month: str | None = None,
) -> Period:
    """The period named by at most one of date / week / month; the latest feed day else.

    Each also takes ``latest`` (the period holding the latest feed day) and ``today``.
    """
    given = [(n, v) for n, v in (("date", date), ("week", week), ("month", month)) if v]
    if len(given) > 1:
        names = " and ".join(n for n, _ in given)
        raise PaperfeedError(f"give only one of date, week and month (got {names})")
    if not given:
        return latest_period(store)
    name, value = given[0]
    text = value.strip().lower()
    if text in ("latest", "today"):
        day = latest_period(store).start if text == "latest" else dt.date.today()
        return {"date": day_period, "week": week_period, "month": month_period}[name](day)
    if name == "week":
        return parse_week(value)
    if name == "month":
        return parse_month(value)
    return day_period(parse_day(value))


def parse_sort(value: str | None, *, name: str = "sort") -> FeedSort:
    if not value:
        return FeedSort.TRENDING
    try:
        return FeedSort(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in FeedSort)
        raise PaperfeedError(f"{name}: {value!r} is not one of {choices}") from None


def reference_day(period: Period, today: dt.date) -> dt.date:
    """The day ages are counted to: today, or the period's last day once it is over."""
    return min(today, period.end)


def trending_score(votes: int, listed: dt.date, reference: dt.date) -> float:
    age_days = max(0, (reference - listed).days)
    return float(max(0, votes) / (age_days + AGE_OFFSET_DAYS) ** GRAVITY)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    paper: Paper
    day: dt.date  # first listed on, within the period
    rank: int | None  # best listing rank within the period
    votes: int
    score: float  # the trending score (also computed when sorted by date)


@dataclass(frozen=True, slots=True)
class FeedPage:
    period: Period
    sort: FeedSort
    entries: list[FeedEntry]
    total: int
    offset: int
    limit: int
    filters: SearchFilters = field(default_factory=SearchFilters)
    previous: Period | None = None
    next: Period | None = None

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.entries) < self.total


def rank_rows(
    rows: list[FeedRow], sort: FeedSort, reference: dt.date
) -> list[tuple[FeedRow, float]]:
    """The rows in feed order, each with its trending score."""
    scored = [(r, trending_score(r.votes, r.day, reference)) for r in rows]
    no_rank = 1 << 62

    def by_date(item: tuple[FeedRow, float]) -> tuple[int, int, int, int]:
        r, _ = item
        return (-r.day.toordinal(), r.rank if r.rank is not None else no_rank, -r.votes, r.pk)

    def by_trend(item: tuple[FeedRow, float]) -> tuple[float, int, int, int]:
        r, score = item
        return (-score, -r.day.toordinal(), r.rank if r.rank is not None else no_rank, r.pk)

    scored.sort(key=by_trend if sort is FeedSort.TRENDING else by_date)
    return scored


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise PaperfeedError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if offset < 0:
        raise PaperfeedError(f"offset must be 0 or more, not {offset}")


def neighbours(store: Store, period: Period) -> tuple[Period | None, Period | None]:
    """Where previous / next lead: the nearest feed days with papers for a day view, the
    neighbouring calendar week or month otherwise (None past the data)."""
    if period.kind is PeriodKind.DAY:
        before, after = store.feed_days_around(period.start)
        return (
            day_period(before) if before else None,
            day_period(after) if after else None,
        )
    if period.kind is PeriodKind.RANGE:
        return None, None
    latest = store.latest_feed_day()
    try:
        prev, nxt = period.shifted(-1), period.shifted(1)
    except (OverflowError, ValueError):  # the first or last representable month / week
        return None, None
    return prev, (nxt if latest is not None and nxt.start <= latest else None)


def feed(
    store: Store,
    period: Period,
    *,
    sort: FeedSort = FeedSort.TRENDING,
    filters: SearchFilters | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    today: dt.date | None = None,
    navigation: bool = True,
) -> FeedPage:
    """The papers listed within ``period``, ranked, one page of them."""
    check_page(limit, offset)
    filters = filters or SearchFilters()
    rows = store.feed_rows(period.start, period.end, filters)
    ranked = rank_rows(rows, sort, reference_day(period, today or dt.date.today()))
    page = ranked[offset : offset + limit]
    papers = store.papers_by_pk([r.pk for r, _ in page])
    entries = [
        FeedEntry(paper=papers[r.pk], day=r.day, rank=r.rank, votes=r.votes, score=score)
        for r, score in page
        if r.pk in papers
    ]
    previous, nxt = neighbours(store, period) if navigation else (None, None)
    return FeedPage(
        period=period,
        sort=sort,
        entries=entries,
        total=len(ranked),
        offset=offset,
        limit=limit,
        filters=filters,
        previous=previous,
        next=nxt,
    )
