"""The Hugging Face daily-papers API (``paperfeed fetch hf-daily``).

``GET /api/daily_papers?date=YYYY-MM-DD`` (or ``week=YYYY-Www``, ``month=YYYY-MM``) with
``limit`` and ``p`` (page) until a page comes back short. Every paper is listed on the
``hf-daily`` listing: with ``--date`` on that day, ranked in the API's order; with
``--week`` / ``--month`` on the day it was put on the daily page, unranked (the API's
order across a week is not a day's rank). Upvotes are imported as the trending signal:
a re-fetch updates the count (the merge keeps the highest seen) and adds nothing else.

The page number is saved after each stored page, so a long month resumes where it
stopped; a finished period is fetched again from its first page next time (upvotes move).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass

from paperfeed.errors import FormatError
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.pipeline import store_items
from paperfeed.fetch.runs import FetchReport, ProgressCallback, RunLog, run_logged
from paperfeed.model import ListingEntry
from paperfeed.sources import hf_daily
from paperfeed.sources.base import Item, ParseContext, Parsed, Rejected
from paperfeed.store import Store

SOURCE = "hf-daily"
FORMAT = "hf-daily"
LISTING = "hf-daily"
MAX_CATCH_UP_DAYS = 31
_TRUNCATED = "truncated JSON"


@dataclass(frozen=True, slots=True)
class HfPeriod:
    """What to ask the API for: ``kind`` is the query parameter (date, week or month)."""

    kind: str
    value: str

    @property
    def day(self) -> dt.date | None:
        return dt.date.fromisoformat(self.value) if self.kind == "date" else None

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


def period(
    *,
    date: dt.date | None = None,
    week: str | None = None,
    month: str | None = None,
    today: dt.date | None = None,
) -> HfPeriod:
    """The period from the command's options (at most one); today when none is given."""
    given = [x for x in (date, week, month) if x is not None]
    if len(given) > 1:
        raise FetchError("give only one of --date, --week, --month")
    if week is not None:
        return HfPeriod("week", _week(week))
    if month is not None:
        return HfPeriod("month", _month(month))
    return HfPeriod("date", (date or today or dt.date.today()).isoformat())


def _week(value: str) -> str:
    text = value.strip()
    m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", text, re.IGNORECASE)
    if m and 1 <= int(m.group(2)) <= 53:
        return f"{m.group(1)}-W{int(m.group(2)):02d}"
    try:
        year, number, _ = dt.date.fromisoformat(text).isocalendar()
    except ValueError:
        raise FetchError(f"invalid week {value!r}: use YYYY-Www (2024-W11) or a date") from None
    return f"{year}-W{number:02d}"


def _month(value: str) -> str:
    text = value.strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})(?:-\d{1,2})?", text)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{m.group(1)}-{int(m.group(2)):02d}"
    raise FetchError(f"invalid month {value!r}: use YYYY-MM")


def fetch_period(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    when: HfPeriod,
    *,
    progress: ProgressCallback | None = None,
) -> FetchReport:
    key = str(when)
    state = store.fetch_state(SOURCE, key)
    first_page = 0
    if state is not None:
        try:
            saved = json.loads(state.cursor)
            if not saved.get("done"):
                first_page = int(saved.get("page") or 0)
        except (ValueError, TypeError, AttributeError):
            first_page = 0

    def body(run: RunLog) -> None:
        if first_page:
            run.note = f"resumed at page {first_page}"
        _pages(store, client, config, when, first_page, run, progress)

    return run_logged(store, client, SOURCE, key, body)


def _pages(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    when: HfPeriod,
    page: int,
    run: RunLog,
    progress: ProgressCallback | None,
) -> None:
    key = str(when)
    limit = config.hf_page_size
    seen = page * limit
    while True:
        params: dict[str, str | int] = {when.kind: when.value, "limit": limit, "p": page}
        items, origin = _get_page(client, config, params)
        elements = [i for i in items if not (isinstance(i, Rejected) and _TRUNCATED in i.reason)]
        items = [_listed(i, when, page * limit) for i in items]
        result = store_items(store, items, source=FORMAT, listing=LISTING, origin=origin)
        page += 1
        seen += len(elements)
        store.save_fetch_state(SOURCE, key, json.dumps({"page": page, "done": False}))
        run.page(result)
        if progress is not None:
            progress(seen, None)
        if len(elements) < limit:
            break
    store.save_fetch_state(
        SOURCE,
        key,
        json.dumps(
            {"page": 0, "done": True, "papers": seen, "at": dt.datetime.now(dt.UTC).isoformat()}
        ),
    )


def _get_page(
    client: PoliteClient, config: FetchConfig, params: dict[str, str | int]
) -> tuple[list[Item], str]:
    """One page, asked again (up to max_retries) while it comes back empty or cut short."""
    attempt = 0
    while True:
        response = client.get(config.hf_daily_url, params, accept="application/json")
        ctx = ParseContext(source=FORMAT, listing=LISTING, path=response.url)
        items: list[Item] | None = None
        if response.content.strip():
            try:
                items = list(hf_daily.parse(io.BytesIO(response.content), ctx))
            except FormatError as exc:
                if "truncated" not in str(exc):
                    raise FetchError(str(exc)) from None
        cut = items is None or any(
            isinstance(i, Rejected) and _TRUNCATED in i.reason for i in items
        )
        if not cut or attempt >= config.max_retries:
            if items is None:
                raise FetchError(
                    f"{response.url}: the response stayed empty or cut short "
                    f"after {config.max_retries} retries"
                )
            return items, response.url
        attempt += 1
        client.stats.retries += 1


def _listed(item: Item, when: HfPeriod, offset: int) -> Item:
    """The day's rank with --date (the API's order); the item's own day otherwise."""
    if not isinstance(item, Parsed) or item.entry is None:
        return item
    day = when.day
    if day is not None:
        rank = None if item.entry.rank is None else offset + item.entry.rank
        entry = ListingEntry(listing=LISTING, feed_date=day, rank=rank)
    else:
        entry = ListingEntry(listing=LISTING, feed_date=item.entry.feed_date, rank=None)
    return Parsed(item.paper, item.locator, entry)


def fetch_recent(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    *,
    today: dt.date | None = None,
    progress: ProgressCallback | None = None,
) -> list[FetchReport]:
    """The scheduled fetch: the last ``hf_days`` days, plus any days missed since last time."""
    day = today or dt.date.today()
    first = day - dt.timedelta(days=config.hf_days - 1)
    state = store.fetch_state(SOURCE, "recent")
    if state is not None:
        try:
            last = dt.date.fromisoformat(json.loads(state.cursor)["last_day"])
            first = min(first, last)
        except (ValueError, TypeError, KeyError):
            pass
    first = max(first, day - dt.timedelta(days=MAX_CATCH_UP_DAYS - 1))
    reports = []
    current = first
    while current <= day:
        reports.append(
            fetch_period(
                store, client, config, HfPeriod("date", current.isoformat()), progress=progress
            )
        )
        current += dt.timedelta(days=1)
    if all(r.ok for r in reports):
        store.save_fetch_state(SOURCE, "recent", json.dumps({"last_day": day.isoformat()}))
    return reports
