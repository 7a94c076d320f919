"""arXiv by category: the query API (paged, resumable) and the daily RSS / Atom listing.

**Query API** (``paperfeed fetch arxiv``). For each category, one date window of new and
updated papers::

    search_query = cat:cs.CL AND lastUpdatedDate:[202403080000 TO 202403142359]
    sortBy = lastUpdatedDate, sortOrder = ascending, start, max_results

Ascending order keeps the offsets of a window stable while arXiv adds papers at its end,
so ``start`` is a sound resume point. The cursor (window, next ``start``, total) is saved
after each page is stored; the next run of the same category resumes an unfinished
window, and after a finished one starts from the last day it covered (that day again:
papers announced later that day). Each paper is listed on ``arxiv/<category>`` on the
day of its latest version, so fetched categories fill the feed days.

Pages that come back truncated are asked again; if they stay broken, the entries before
the break are kept and the next page starts right after them (nothing is skipped). An
empty page before the announced total (an arXiv hiccup) is asked again too.

**Listing feed** (``--via rss``): ``rss.arxiv.org/atom/<category>``, today's
announcements, ranked as listed, on ``arxiv-rss/<category>``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from dataclasses import dataclass

from paperfeed.errors import FormatError
from paperfeed.fetch.config import ARXIV_CATEGORY, FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.pipeline import store_items
from paperfeed.fetch.runs import FetchReport, ProgressCallback, RunLog, run_logged
from paperfeed.model import ListingEntry
from paperfeed.sources import arxiv_atom
from paperfeed.sources.base import Item, ParseContext, Parsed, Rejected
from paperfeed.store import Store

SOURCE = "arxiv"
RSS_SOURCE = "arxiv-rss"
FORMAT = "arxiv-atom"
MAX_RESULTS_PER_QUERY = 30_000  # arXiv's documented limit; beyond it, use OAI-PMH
_TOTAL = re.compile(rb"<(?:\w+:)?totalResults[^>]*>\s*(\d+)\s*<")
_BROKEN = "truncated or malformed XML"


@dataclass(frozen=True, slots=True)
class ArxivCursor:
    """Where a category's fetch stands: an unfinished window, and the last day covered."""

    window_from: dt.date | None = None
    window_to: dt.date | None = None
    start: int = 0
    total: int | None = None
    done_through: dt.date | None = None

    @property
    def pending(self) -> bool:
        return self.window_from is not None

    def to_json(self) -> str:
        return json.dumps(
            {
                "window_from": _iso(self.window_from),
                "window_to": _iso(self.window_to),
                "start": self.start,
                "total": self.total,
                "done_through": _iso(self.done_through),
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> ArxivCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                window_from=_date(data.get("window_from")),
                window_to=_date(data.get("window_to")),
                start=int(data.get("start") or 0),
                total=None if data.get("total") is None else int(data["total"]),
                done_through=_date(data.get("done_through")),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()  # an unreadable cursor only costs a fresh start


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None


def check_category(category: str) -> str:
    text = category.strip()
    if not ARXIV_CATEGORY.match(text):
        raise FetchError(f"invalid arXiv category {category!r} (e.g. cs.CL, math.AG, hep-th)")
    return text


def search_query(category: str, date_from: dt.date, date_to: dt.date) -> str:
    return f"cat:{category} AND lastUpdatedDate:[{date_from:%Y%m%d}0000 TO {date_to:%Y%m%d}2359]"


def choose_window(
    cursor: ArxivCursor,
    *,
    since: dt.date | None,
    today: dt.date,
    default_days: int,
    restart: bool = False,
) -> ArxivCursor:
    """The window this run covers: the unfinished one, or a new one ending today."""
    if cursor.pending and not restart and (since is None or since == cursor.window_from):
        return cursor
    if since is not None:
        start_day = since
    elif cursor.done_through is not None:
        start_day = cursor.done_through
    else:
        start_day = today - dt.timedelta(days=default_days - 1)
    if start_day > today:
        raise FetchError(f"--since {start_day} is in the future")
    return ArxivCursor(window_from=start_day, window_to=today, done_through=cursor.done_through)


def fetch_category(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    category: str,
    *,
    since: dt.date | None = None,
    today: dt.date | None = None,
    restart: bool = False,
    progress: ProgressCallback | None = None,
) -> FetchReport:
    """Fetch one category's window from the query API (see the module docstring)."""
    category = check_category(category)
    day = today or dt.date.today()
    state = store.fetch_state(SOURCE, category)
    cursor = choose_window(
        ArxivCursor.from_json(state.cursor if state else None),
        since=since,
        today=day,
        default_days=config.arxiv_days,
        restart=restart,
    )

    def body(run: RunLog) -> None:
        _page_through(store, client, config, category, cursor, run, progress)

    return run_logged(store, client, SOURCE, f"cat:{category}", body)


def _page_through(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    category: str,
    cursor: ArxivCursor,
    run: RunLog,
    progress: ProgressCallback | None,
) -> None:
    if cursor.window_from is None or cursor.window_to is None:
        raise FetchError(f"arxiv {category}: no date window to fetch")
    query = search_query(category, cursor.window_from, cursor.window_to)
    listing = f"arxiv/{category}"
    run.note = f"{cursor.window_from} to {cursor.window_to}" + (
        f", resumed at {cursor.start}" if cursor.start else ""
    )
    store.save_fetch_state(SOURCE, category, cursor.to_json())
    start, total = cursor.start, cursor.total
    ctx = ParseContext(source=FORMAT, listing=listing, path=config.arxiv_api_url)
    empty_pages = 0
    while total is None or start < min(total, MAX_RESULTS_PER_QUERY):
        size = config.arxiv_page_size
        if total is not None:
            size = min(size, MAX_RESULTS_PER_QUERY - start)
        params: dict[str, str | int] = {
            "search_query": query,
            "start": start,
            "max_results": size,
            "sortBy": "lastUpdatedDate",
            "sortOrder": "ascending",
        }
        items, page_total, origin = _get_page(client, config, params, ctx)
        if page_total is not None:
            total = page_total
        entries = [i for i in items if not (isinstance(i, Rejected) and _BROKEN in i.reason)]
        broken = [i for i in items if isinstance(i, Rejected) and _BROKEN in i.reason]
        if not entries:
            if total is not None and start < total and not broken:
                # arXiv sometimes answers a page with no entries; asking again helps.
                empty_pages += 1
                if empty_pages > config.max_retries:
                    raise FetchError(
                        f"arXiv kept answering empty pages at start={start} of {total}; "
                        "run the same command again later to resume"
                    )
                client.stats.retries += 1
                continue
            if not broken:
                break  # the end (or an empty window)
        empty_pages = 0
        keep: list[Item] = [_listed(i, listing) for i in entries]
        if not entries:
            keep = list(broken)  # nothing readable at all: quarantine it and move on
        result = store_items(store, keep, source=FORMAT, listing=listing, origin=origin)
        start += len(entries) if entries else size
        saved = dataclasses.replace(cursor, start=start, total=total)
        store.save_fetch_state(SOURCE, category, saved.to_json())
        run.page(result)
        if progress is not None:
            progress(start if total is None else min(start, total), total)
        if total is None and len(entries) < size:
            break
    if total is not None and total > MAX_RESULTS_PER_QUERY:
        run.note += (
            f"; arXiv serves at most {MAX_RESULTS_PER_QUERY} of the {total} results: "
            "use 'paperfeed fetch oai' for a backfill this large"
        )
    store.save_fetch_state(SOURCE, category, ArxivCursor(done_through=cursor.window_to).to_json())


def _get_page(
    client: PoliteClient,
    config: FetchConfig,
    params: dict[str, str | int],
    ctx: ParseContext,
) -> tuple[list[Item], int | None, str]:
    """One page, asked again (up to max_retries) while it comes back truncated."""
    attempt = 0
    while True:
        response = client.get(config.arxiv_api_url, params, accept="application/atom+xml")
        origin = response.url
        items = _parse(response.content, ctx)
        api_errors = [i for i in items if isinstance(i, Rejected) and "arXiv API error" in i.reason]
        if api_errors and not any(isinstance(i, Parsed) for i in items):
            raise FetchError(api_errors[0].reason)
        total_match = _TOTAL.search(response.content[:4096])
        total = int(total_match.group(1)) if total_match else None
        broken = any(isinstance(i, Rejected) and _BROKEN in i.reason for i in items)
        if not broken or attempt >= config.max_retries:
            return items, total, origin
        attempt += 1
        client.stats.retries += 1


def _parse(content: bytes, ctx: ParseContext) -> list[Item]:
    try:
        return list(arxiv_atom.parse(io.BytesIO(content), ctx))
    except FormatError as exc:
        # Not a feed at all (an HTML error page, an empty body): a broken page.
        return [Rejected(locator="the response", reason=f"{_BROKEN}: {exc}", raw="")]


def _listed(item: Item, listing: str) -> Item:
    """Query results carry no feed day; a category fetch lists each on its latest version."""
    if not isinstance(item, Parsed):
        return item
    day = item.paper.updated or item.paper.published
    return Parsed(item.paper, item.locator, ListingEntry(listing=listing, feed_date=day))


def fetch_listing(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    category: str,
    *,
    progress: ProgressCallback | None = None,
) -> FetchReport:
    """Today's announcements of one category from the RSS / Atom listing feed."""
    category = check_category(category)
    url = f"{config.arxiv_rss_url.rstrip('/')}/{category}"
    listing = f"arxiv-rss/{category}"

    def body(run: RunLog) -> None:
        response = client.get(url, accept="application/atom+xml")
        ctx = ParseContext(source=FORMAT, listing=listing, path=response.url)
        try:
            items = list(arxiv_atom.parse(io.BytesIO(response.content), ctx))
        except FormatError as exc:
            raise FetchError(f"{url}: not a listing feed ({exc})") from None
        result = store_items(store, items, source=FORMAT, listing=listing, origin=response.url)
        run.page(result)
        store.save_fetch_state(
            RSS_SOURCE, category, json.dumps({"last": dt.date.today().isoformat()})
        )
        if progress is not None:
            progress(len(items), len(items))

    return run_logged(store, client, RSS_SOURCE, f"cat:{category}", body)
