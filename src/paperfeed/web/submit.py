"""Submitting a paper from the site: an arXiv id or arxiv.org URL in, the paper on today's
feed out (an appearance on today's date in the ``submitted`` listing).

A paper the store already has is only listed; a new one is asked from the arXiv query
API through the live-source client (:func:`paperfeed.fetch.url.fetch_url`), with one
retry at most: a person is waiting for the page. Without a network the answer says so
(HTTP 503) and nothing is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.fetch.config import load_config
from paperfeed.fetch.http import PoliteClient
from paperfeed.fetch.url import fetch_url
from paperfeed.ids import parse_arxiv_id
from paperfeed.model import ListingEntry
from paperfeed.settings import Settings
from paperfeed.store import IncomingRecord, Store

SUBMITTED_LISTING = "submitted"


class FetchUnavailable(PaperfeedError):
    """The source could not be reached (no network, or arXiv is down)."""

    status = 503


@dataclass(frozen=True, slots=True)
class Submitted:
    paper_id: str
    fetched: bool  # False: the store had it already


def submit_paper(settings: Settings, store: Store, ref: str, *, today: dt.date) -> Submitted:
    text = ref.strip()
    if not text:
        raise PaperfeedError("ref: enter an arXiv id (e.g. 2403.08764) or an arxiv.org URL")
    arxiv_id = parse_arxiv_id(text)
    if arxiv_id is None:
        raise PaperfeedError(
            f"ref: {text[:200]!r} is not an arXiv id or an arxiv.org abs / pdf URL "
            "(other lists: 'paperfeed fetch url URL' or 'paperfeed ingest FILE')"
        )
    paper = store.get_paper(arxiv_id.base)
    fetched = False
    if paper is None:
        config = dataclasses.replace(
            load_config(settings), max_retries=1, backoff_base=1.0, max_throttle_wait=30.0
        )
        with PoliteClient(config) as client:
            report = fetch_url(store, client, config, arxiv_id.abs_url)
        if not report.ok:
            raise FetchUnavailable(
                f"could not fetch arXiv {arxiv_id.base}: {report.run.error}. "
                "Is this machine online? Nothing was added; try again later."
            )
        paper = store.get_paper(arxiv_id.base)
        if paper is None:
            raise NotFoundError(f"arXiv has no paper {arxiv_id.base}")
        fetched = True
    store.write_batch([IncomingRecord(paper, ListingEntry(SUBMITTED_LISTING, today))], [])
    store.refresh_keyword_index()
    return Submitted(paper.id, fetched)
