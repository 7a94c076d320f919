"""Reading the query parameters pages and APIs share into typed library objects.

Errors name the parameter and say what would be valid (a 400 through the error contract).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from paperfeed.errors import PaperfeedError
from paperfeed.feeds import FeedSort, Period, parse_day, parse_period, parse_sort
from paperfeed.search import SearchEngine, SearchMode
from paperfeed.store import SearchFilters, Store

_CATEGORY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*(\.\*)?$")
MAX_QUERY_CHARS = 10_000


def categories(values: Sequence[str] | None) -> tuple[str, ...]:
    """Repeated ``category=`` values, each possibly a comma-separated list."""
    found: list[str] = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not _CATEGORY.match(part):
                raise PaperfeedError(
                    f"category: {part!r} is not a category (e.g. cs.CL, or cs.* for an archive)"
                )
            found.append(part)
    return tuple(dict.fromkeys(found))


def optional_day(value: str | None, name: str) -> dt.date | None:
    return parse_day(value, name=name) if value and value.strip() else None


def search_filters(
    category: Sequence[str] | None = None,
    source: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    topics: Sequence[str] = (),
) -> SearchFilters:
    """``topics`` are topic keys, already resolved (see ``recommend_state.topic_keys``)."""
    start = optional_day(date_from, "from")
    end = optional_day(date_to, "to")
    if start and end and start > end:
        raise PaperfeedError(f"from ({start}) is after to ({end})")
    return SearchFilters(
        date_from=start,
        date_to=end,
        categories=categories(category),
        source=(source or "").strip() or None,
        topics=tuple(topics),
    )


@dataclass(frozen=True, slots=True)
class FeedParams:
    period: Period
    sort: FeedSort
    filters: SearchFilters


def feed_params(
    store: Store,
    *,
    date: str | None = None,
    week: str | None = None,
    month: str | None = None,
    sort: str | None = None,
    category: Sequence[str] | None = None,
    source: str | None = None,
) -> FeedParams:
    return FeedParams(
        period=parse_period(store, date=date, week=week, month=month),
        sort=parse_sort(sort),
        filters=search_filters(category, source),
    )


def search_mode(value: str | None, engine: SearchEngine) -> SearchMode:
    """The requested mode; the default is hybrid when the store is embedded, else keyword."""
    if not value:
        return SearchMode.HYBRID if engine.semantic_available else SearchMode.KEYWORD
    try:
        return SearchMode(value.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in SearchMode)
        raise PaperfeedError(f"mode: {value!r} is not one of {choices}") from None


def query_text(value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise PaperfeedError(f"q: the query is longer than {MAX_QUERY_CHARS} characters")
    return text


def page_number(value: int) -> int:
    if value < 1:
        raise PaperfeedError(f"page: pages are numbered from 1, not {value}")
    return value
