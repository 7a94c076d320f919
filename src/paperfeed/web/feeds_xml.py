"""RSS 2.0 and Atom (RFC 4287) for every feed view and every search.

``/feeds/papers.rss`` / ``.atom`` take the feed page's parameters (date, week, month,
sort, category, source); ``/feeds/search.rss`` / ``.atom`` the search page's (q, mode,
category, from, to, source); ``/feeds/for-you.rss`` / ``.atom`` a user's picks, each
item's description opening with its reason (with accounts, the URL carries the user's signed
``token``: feed readers send no cookies); ``/feeds/topics/{key}.rss`` / ``.atom`` a topic
feed. All call the same library functions as the pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from email.utils import format_datetime
from typing import Annotated
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paperfeed import __version__
from paperfeed.accounts import AuthError
from paperfeed.errors import PaperfeedError
from paperfeed.feeds import feed
from paperfeed.model import Paper
from paperfeed.search import SearchOptions
from paperfeed.web import params
from paperfeed.web.auth import current_user, nav_user
from paperfeed.web.context import WebContext, get_context
from paperfeed.web.recommend_pages import for_you_of, topic_feed, topic_path
from paperfeed.web.recommend_state import feed_token_user, topic_keys
from paperfeed.web.urls import paper_path, period_path, query_string

FEED_ITEMS = 50

router = APIRouter(prefix="/feeds", include_in_schema=False)


@dataclass(frozen=True, slots=True)
class FeedItem:
    title: str
    link: str
    guid: str
    summary: str
    published: dt.datetime
    authors: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedDoc:
    title: str
    link: str  # the HTML page this feed mirrors
    self_url: str
    description: str
    items: list[FeedItem]
    updated: dt.datetime


def _utc(day: dt.date | None, fallback: dt.datetime | None = None) -> dt.datetime:
    if day is not None:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    if fallback is not None:
        return fallback if fallback.tzinfo else fallback.replace(tzinfo=dt.UTC)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def paper_item(paper: Paper, base: str, day: dt.date | None) -> FeedItem:
    return FeedItem(
        title=paper.title,
        link=base + paper_path(paper.id),
        guid=base + paper_path(paper.id),
        summary=paper.abstract,
        published=_utc(day or paper.published, paper.first_seen),
        authors=paper.authors,
        categories=paper.categories,
    )


def render_rss(doc: FeedDoc) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel>",
        f"<title>{escape(doc.title)}</title>",
        f"<link>{escape(doc.link)}</link>",
        f"<description>{escape(doc.description)}</description>",
        f'<atom:link href={quoteattr(doc.self_url)} rel="self" type="application/rss+xml"/>',
        f"<lastBuildDate>{format_datetime(doc.updated)}</lastBuildDate>",
        f"<generator>paperfeed {escape(__version__)}</generator>",
    ]
    for item in doc.items:
        out.append("<item>")
        out.append(f"<title>{escape(item.title)}</title>")
        out.append(f"<link>{escape(item.link)}</link>")
        out.append(f'<guid isPermaLink="true">{escape(item.guid)}</guid>')
        out.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.summary:
            out.append(f"<description>{escape(item.summary)}</description>")
        # RSS's <author> must be an e-mail address; names go in dc:creator.
        out.extend(f"<dc:creator>{escape(a)}</dc:creator>" for a in item.authors)
        out.extend(f"<category>{escape(c)}</category>" for c in item.categories)
        out.append("</item>")
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out)


def render_atom(doc: FeedDoc) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<id>{escape(doc.self_url)}</id>",
        f"<title>{escape(doc.title)}</title>",
        f"<subtitle>{escape(doc.description)}</subtitle>",
        f"<updated>{_iso(doc.updated)}</updated>",
        f'<link rel="self" type="application/atom+xml" href={quoteattr(doc.self_url)}/>',
        f'<link rel="alternate" type="text/html" href={quoteattr(doc.link)}/>',
        # A feed-level author satisfies RFC 4287 for entries that list none.
        "<author><name>paperfeed</name></author>",
        f'<generator version="{escape(__version__)}">paperfeed</generator>',
    ]
    for item in doc.items:
        out.append("<entry>")
        out.append(f"<id>{escape(item.guid)}</id>")
        out.append(f"<title>{escape(item.title)}</title>")
        out.append(f'<link rel="alternate" type="text/html" href={quoteattr(item.link)}/>')
        out.append(f"<published>{_iso(item.published)}</published>")
        out.append(f"<updated>{_iso(item.published)}</updated>")
        out.extend(f"<author><name>{escape(a)}</name></author>" for a in item.authors)
        out.extend(f"<category term={quoteattr(c)}/>" for c in item.categories)
        if item.summary:
            out.append(f'<summary type="text">{escape(item.summary)}</summary>')
        out.append("</entry>")
    out += ["</feed>", ""]
    return "\n".join(out)


RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"


def _respond(doc: FeedDoc, fmt: str) -> Response:
    if fmt == "rss":
        return Response(render_rss(doc), media_type=RSS_TYPE)
    return Response(render_atom(doc), media_type=ATOM_TYPE)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


Ctx = Annotated[WebContext, Depends(get_context)]
Categories = Annotated[list[str] | None, Query()]


def papers_feed(
    request: Request,
    ctx: WebContext,
    fmt: str,
    date: str | None,
    week: str | None,
    month: str | None,
    sort: str | None,
    category: list[str] | None,
    source: str | None,
) -> Response:
    p = params.feed_params(
        ctx.store,
        date=date,
        week=week,
        month=month,
        sort=sort,
        category=category,
        source=source,
    )
    page = feed(ctx.store, p.period, sort=p.sort, filters=p.filters, limit=FEED_ITEMS)
    base = _base(request)
    qs = query_string(
        [
            ("sort", p.sort.value),
            *(("category", c) for c in p.filters.categories),
            ("source", p.filters.source),
        ]
    )
    what = ", ".join(p.filters.categories)
    title = f"{ctx.site_name}: {p.period.label}" + (f" ({what})" if what else "")
    doc = FeedDoc(
        title=title,
        link=base + period_path(p.period) + qs,
        self_url=str(request.url),
        description=f"Papers listed in {p.period.label}, sorted by {p.sort.value}.",
        items=[paper_item(e.paper, base, e.day) for e in page.entries],
        updated=_utc(max((e.day for e in page.entries), default=p.period.start)),
    )
    return _respond(doc, fmt)


def search_feed(
    request: Request,
    ctx: WebContext,
    fmt: str,
    q: str | None,
    mode: str | None,
    category: list[str] | None,
    source: str | None,
    date_from: str | None,
    date_to: str | None,
    topic: list[str] | None = None,
) -> Response:
    text = params.query_text(q)
    if not text:
        raise PaperfeedError("q: a search feed needs a query")
    engine = ctx.engine
    topics = topic_keys(ctx, nav_user(request), topic)
    options = SearchOptions(
        mode=params.search_mode(mode, engine),
        limit=FEED_ITEMS,
        filters=params.search_filters(category, source, date_from, date_to, topics),
    )
    results = engine.search(text, options)
    base = _base(request)
    items = [paper_item(h.paper, base, h.paper.published) for h in results.hits]
    doc = FeedDoc(
        title=f"{ctx.site_name}: search for {text[:80]}",
        link=f"{base}/search{query_string([('q', text), ('mode', options.mode.value)])}",
        self_url=str(request.url),
        description=f"Papers matching {text[:200]!r} ({options.mode.value} search).",
        items=items,
        updated=max((i.published for i in items), default=_utc(None)),
    )
    return _respond(doc, fmt)


def for_you_feed(
    request: Request, ctx: WebContext, fmt: str, token: str | None, days: int | None, all: bool
) -> Response:
    user = feed_token_user(ctx, token) if token else current_user(request)
    if user is None:
        raise AuthError("this feed needs its token: copy the feed's URL from your 'For you' page")
    result = for_you_of(ctx, user, days=days, everything=all, limit=FEED_ITEMS)
    base = _base(request)
    items = []
    for pick in result.picks:
        item = paper_item(pick.paper, base, pick.paper.published)
        why = f"Why: {pick.reason}."
        items.append(replace(item, summary=f"{why}\n\n{item.summary}" if item.summary else why))
    doc = FeedDoc(
        title=f"{ctx.site_name}: for you" + ("" if ctx.auth.single_user else f" ({user.username})"),
        link=f"{base}/for-you",
        self_url=str(request.url),
        description="New papers picked by your model, each with the reason why.",
        items=items,
        updated=max((i.published for i in items), default=_utc(None)),
    )
    return _respond(doc, fmt)


def topic_feed_xml(
    request: Request,
    ctx: WebContext,
    fmt: str,
    key: str,
    date: str | None,
    week: str | None,
    month: str | None,
    sort: str | None,
) -> Response:
    found = topic_feed(
        ctx, nav_user(request), key, date=date, week=week, month=month, sort=sort,
        limit=FEED_ITEMS,
    )  # fmt: skip
    base = _base(request)
    items = [paper_item(e.paper, base, e.day) for e in found.page.entries]
    when = "" if found.everything else f", {found.page.period.label}"
    doc = FeedDoc(
        title=f"{ctx.site_name}: {found.topic.name}{when}",
        link=base + topic_path(found.topic.key),
        self_url=str(request.url),
        description=found.topic.description,
        items=items,
        updated=_utc(max((e.day for e in found.page.entries), default=None)),
    )
    return _respond(doc, fmt)


def _register(fmt: str) -> None:
    @router.get(f"/papers.{fmt}", name=f"papers_{fmt}")
    def papers(
        request: Request,
        ctx: Ctx,
        date: str | None = None,
        week: str | None = None,
        month: str | None = None,
        sort: str | None = None,
        category: Categories = None,
        source: str | None = None,
    ) -> Response:
        return papers_feed(request, ctx, fmt, date, week, month, sort, category, source)

    @router.get(f"/search.{fmt}", name=f"search_{fmt}")
    def search(
        request: Request,
        ctx: Ctx,
        q: str | None = None,
        mode: str | None = None,
        category: Categories = None,
        source: str | None = None,
        date_from: Annotated[str | None, Query(alias="from")] = None,
        date_to: Annotated[str | None, Query(alias="to")] = None,
        topic: Categories = None,
    ) -> Response:
        return search_feed(request, ctx, fmt, q, mode, category, source, date_from, date_to, topic)

    @router.get(f"/for-you.{fmt}", name=f"for_you_{fmt}")
    def for_you(
        request: Request,
        ctx: Ctx,
        token: str | None = None,
        days: Annotated[int | None, Query(ge=1, le=3660)] = None,
        all: bool = False,
    ) -> Response:
        return for_you_feed(request, ctx, fmt, token, days, all)

    @router.get(f"/topics/{{key}}.{fmt}", name=f"topic_{fmt}")
    def topic(
        request: Request,
        ctx: Ctx,
        key: str,
        date: str | None = None,
        week: str | None = None,
        month: str | None = None,
        sort: str | None = None,
    ) -> Response:
        return topic_feed_xml(request, ctx, fmt, key, date, week, month, sort)


_register("rss")
_register("atom")
