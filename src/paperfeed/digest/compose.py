"""What a digest holds: the period's papers a subscriber asked for, each with its reason.

A digest covers one *period*: a feed day for a daily subscription, an ISO week (Monday to
Sunday) for a weekly one. Its candidates are the papers listed in that period, taken from
the same functions as the web feed (:func:`paperfeed.feeds.feed`) and the same search
engine as the search page, so a digest never disagrees with the site.

Sections, in order: trending (by the feed's trending score), for you (when a recommender is
given), each saved search, each followed author, each category. Each section ranks its own
candidates; the digest then takes one pick from each section in turn (round robin) until
``max_items``, so that every interest is represented and no paper appears twice.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from paperfeed.feeds import FeedSort, Period, day_period, feed, week_period
from paperfeed.model import Paper, Subscription
from paperfeed.search import SearchMode, SearchOptions, SearchResults
from paperfeed.store import Store

SEARCH_DEPTH = 200  # how deep a saved search looks before keeping the period's papers


class Searcher(Protocol):
    """What the digest needs from search: a SearchEngine or a LiveSearch."""

    @property
    def semantic_available(self) -> bool: ...

    def search(self, text: str, options: SearchOptions | None = None) -> SearchResults: ...


@dataclass(frozen=True, slots=True)
class DigestPick:
    paper: Paper
    reason: str  # one line: "trending: 14 votes", "matches your saved search 'x'"
    section: str


@dataclass(frozen=True, slots=True)
class DigestSection:
    key: str  # trending | for_you | search | author | category
    title: str
    picks: tuple[DigestPick, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    subscription: Subscription
    period: Period
    sections: tuple[DigestSection, ...]

    @property
    def picks(self) -> list[DigestPick]:
        return [p for s in self.sections for p in s.picks]

    @property
    def is_empty(self) -> bool:
        return not any(s.picks for s in self.sections)


# A recommender (the "for you" section) maps a subscription and the period's papers to
# ranked picks with reasons; the digest works without one.
Recommender = Callable[[Subscription, Sequence[Paper]], list[DigestPick]]


def period_for(frequency: str, day: dt.date) -> Period:
    """The period a digest of this frequency covers for ``day``."""
    return week_period(day) if frequency == "weekly" else day_period(day)


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def _author_matches(followed: str, authors: Sequence[str]) -> bool:
    wanted = _fold(followed)
    return any(_fold(a) == wanted for a in authors)


def _category_matches(pattern: str, categories: Sequence[str]) -> bool:
    pat = pattern.strip()
    if pat.endswith(".*"):
        return any(fnmatch.fnmatchcase(c, pat) for c in categories)
    return pat in categories


def _votes_reason(votes: int, day: dt.date) -> str:
    if votes > 0:
        return f"trending: {votes} vote{'s' if votes != 1 else ''}"
    return f"listed on {day:%a %d %b}"


def compose(
    store: Store,
    subscription: Subscription,
    period: Period,
    *,
    searcher: Searcher | None = None,
    recommender: Recommender | None = None,
    today: dt.date | None = None,
) -> Digest:
    """The digest of one subscription for one period (possibly empty)."""
    contents = subscription.contents
    limit = subscription.max_items
    everything = feed(
        store,
        period,
        sort=FeedSort.TRENDING,
        limit=500,
        today=today or period.end,
        navigation=False,
    )
    entries = everything.entries
    in_period = {e.paper.id: e.paper for e in entries}
    candidates: list[tuple[str, str, list[DigestPick]]] = []

    if contents.trending:
        picks = [DigestPick(e.paper, _votes_reason(e.votes, e.day), "trending") for e in entries]
        candidates.append(("trending", f"Trending · {period.label}", picks))

    if contents.for_you and recommender is not None:
        picks = recommender(subscription, [e.paper for e in entries])
        candidates.append(("for_you", "For you", picks))

    for query in contents.searches:
        picks = []
        if searcher is not None and in_period:
            mode = SearchMode.HYBRID if searcher.semantic_available else SearchMode.KEYWORD
            results = searcher.search(query, SearchOptions(mode=mode, limit=SEARCH_DEPTH))
            picks = [
                DigestPick(h.paper, f"matches your saved search '{query}'", "search")
                for h in results.hits
                if h.paper.id in in_period
            ]
        candidates.append(("search", f"Saved search: {query}", picks))

    for author in contents.authors:
        picks = [
            DigestPick(e.paper, f"by {author}, whom you follow", "author")
            for e in entries
            if _author_matches(author, e.paper.authors)
        ]
        candidates.append(("author", f"By {author}", picks))

    for category in contents.categories:
        picks = [
            DigestPick(e.paper, f"new in {category}", "category")
            for e in entries
            if _category_matches(category, e.paper.categories)
        ]
        candidates.append(("category", f"New in {category}", picks))

    chosen: list[list[DigestPick]] = [[] for _ in candidates]
    cursors = [0] * len(candidates)
    seen: set[str] = set()
    total = 0
    progressing = True
    while total < limit and progressing:
        progressing = False
        for i, (_, _, picks) in enumerate(candidates):
            while cursors[i] < len(picks) and picks[cursors[i]].paper.id in seen:
                cursors[i] += 1
            if cursors[i] < len(picks) and total < limit:
                pick = picks[cursors[i]]
                chosen[i].append(pick)
                seen.add(pick.paper.id)
                cursors[i] += 1
                total += 1
                progressing = True
    sections = tuple(
        DigestSection(key, title, tuple(picks))
        for (key, title, _), picks in zip(candidates, chosen, strict=True)
        if picks
    )
    return Digest(subscription=subscription, period=period, sections=sections)
