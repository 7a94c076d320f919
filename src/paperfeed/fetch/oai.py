"""Incremental OAI-PMH harvest of arXiv (``paperfeed fetch oai``), resumable.

A harvest is ``ListRecords`` with ``metadataPrefix`` (``arXiv`` or ``arXivRaw``), an
optional ``set`` (``cs``, ``math``, ``physics:hep-th``, ...) and ``from`` / ``until``
dates, then one request per resumption token until the token comes back empty.

The cursor of a set + format holds the harvest in progress (its ``from``, the last token,
how many records so far) and, once a harvest completes, ``next_from``: the day that
harvest started, so that the next run asks only for what changed since (one day of
overlap, which the merge makes harmless). The token is saved after each page is stored;
a killed harvest resumes from it. An expired token (``badResumptionToken``) restarts the
interrupted harvest from its ``from`` date. A page cut short is asked again with the same
token (OAI-PMH requests are idempotent).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass

from paperfeed.errors import FormatError
from paperfeed.fetch.config import OAI_METADATA, FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.pipeline import store_items
from paperfeed.fetch.runs import FetchReport, ProgressCallback, RunLog, run_logged
from paperfeed.sources.arxiv_oai import OaiPage, parse_page
from paperfeed.sources.base import ParseContext, Rejected
from paperfeed.store import Store

SOURCE = "oai"
FORMAT = "oai-pmh"
_ERROR_CODE = re.compile(rb"<(?:\w+:)?error[^>]*\bcode=[\"']([A-Za-z]+)[\"']")
_RESPONSE_DATE = re.compile(rb"<(?:\w+:)?responseDate>\s*(\d{4}-\d{2}-\d{2})")
_SET = re.compile(r"^[A-Za-z0-9_.:-]+$")
_BROKEN = "truncated or malformed XML"


@dataclass(frozen=True, slots=True)
class OaiCursor:
    """A harvest in progress (``token`` set) and where the next one starts."""

    harvest_from: dt.date | None = None
    until: dt.date | None = None
    token: str | None = None
    started_on: dt.date | None = None  # the repository's date when this harvest began
    records: int = 0
    total: int | None = None
    next_from: dt.date | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "harvest_from": _iso(self.harvest_from),
                "until": _iso(self.until),
                "token": self.token,
                "started_on": _iso(self.started_on),
                "records": self.records,
                "total": self.total,
                "next_from": _iso(self.next_from),
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> OaiCursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                harvest_from=_date(data.get("harvest_from")),
                until=_date(data.get("until")),
                token=data.get("token") or None,
                started_on=_date(data.get("started_on")),
                records=int(data.get("records") or 0),
                total=None if data.get("total") is None else int(data["total"]),
                next_from=_date(data.get("next_from")),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None


def state_key(set_spec: str | None, metadata: str) -> str:
    return f"{set_spec or '*'}|{metadata}"


def harvest(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    *,
    set_spec: str | None = None,
    metadata: str = "arXiv",
    date_from: dt.date | None = None,
    until: dt.date | None = None,
    restart: bool = False,
    progress: ProgressCallback | None = None,
) -> FetchReport:
    """Harvest one set (or the whole repository) incrementally; see the module docstring."""
    if metadata not in OAI_METADATA:
        raise FetchError(f"unknown metadata format {metadata!r}; use {' or '.join(OAI_METADATA)}")
    if set_spec is not None and not _SET.match(set_spec):
        raise FetchError(f"invalid OAI-PMH set {set_spec!r} (e.g. cs, math, physics:hep-th)")
    key = state_key(set_spec, metadata)
    state = store.fetch_state(SOURCE, key)
    saved = OaiCursor.from_json(state.cursor if state else None)
    resume = (
        saved.token is not None
        and not restart
        and (date_from is None or date_from == saved.harvest_from)
        and (until is None or until == saved.until)
    )
    if resume:
        cursor = saved
    else:
        start_day = date_from if date_from is not None else saved.next_from
        cursor = OaiCursor(harvest_from=start_day, until=until, next_from=saved.next_from)

    def body(run: RunLog) -> None:
        _harvest(store, client, config, key, set_spec, metadata, cursor, run, progress)

    query = f"set={set_spec or '*'} metadataPrefix={metadata}"
    return run_logged(store, client, SOURCE, query, body)


def _first_params(set_spec: str | None, metadata: str, cursor: OaiCursor) -> dict[str, str | int]:
    params: dict[str, str | int] = {"verb": "ListRecords", "metadataPrefix": metadata}
    if set_spec:
        params["set"] = set_spec
    if cursor.harvest_from:
        params["from"] = cursor.harvest_from.isoformat()
    if cursor.until:
        params["until"] = cursor.until.isoformat()
    return params


def _harvest(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    key: str,
    set_spec: str | None,
    metadata: str,
    cursor: OaiCursor,
    run: RunLog,
    progress: ProgressCallback | None,
) -> None:
    listing = f"oai-pmh/{set_spec or '*'}"
    span = f"from {cursor.harvest_from}" if cursor.harvest_from else "everything"
    run.note = span + (f", resumed after {cursor.records} records" if cursor.token else "")
    restarted = False
    while True:
        if cursor.token:
            params: dict[str, str | int] = {"verb": "ListRecords", "resumptionToken": cursor.token}
        else:
            params = _first_params(set_spec, metadata, cursor)
        page, code, origin, day = _get_page(client, config, params, listing)
        if code == "badResumptionToken" and cursor.token and not restarted:
            # Tokens expire (hours); the harvest restarts from its own from-date.
            restarted = True
            run.note += "; the resumption token had expired, started the harvest again"
            cursor = dataclasses.replace(cursor, token=None, records=0, total=None)
            continue
        if code == "badResumptionToken":
            raise FetchError(f"{origin}: OAI-PMH error badResumptionToken")
        if cursor.started_on is None:
            cursor = dataclasses.replace(cursor, started_on=day or dt.date.today())
        if page is None:  # noRecordsMatch
            break
        if _is_cut(page):
            # The token is at the end of the page: without it the harvest cannot go on. The
            # records read are kept; the page is asked again (same token) by the next run.
            kept = [i for i in page.items if not (isinstance(i, Rejected) and _BROKEN in i.reason)]
            run.page(store_items(store, kept, source=FORMAT, listing=listing, origin=origin))
            raise FetchError(
                f"{origin}: the response stayed cut short after {config.max_retries} retries; "
                "its readable records are stored, run the same command again to resume"
            )
        result = store_items(store, page.items, source=FORMAT, listing=listing, origin=origin)
        records = cursor.records + len(page.items) + page.deleted
        cursor = dataclasses.replace(
            cursor,
            token=page.resumption_token,
            records=records,
            total=page.complete_list_size or cursor.total,
        )
        store.save_fetch_state(SOURCE, key, cursor.to_json())
        run.page(result)
        if progress is not None:
            progress(records, cursor.total)
        if not page.resumption_token:
            break
    done = OaiCursor(next_from=cursor.started_on or cursor.next_from)
    store.save_fetch_state(SOURCE, key, done.to_json())


def _get_page(
    client: PoliteClient, config: FetchConfig, params: dict[str, str | int], listing: str
) -> tuple[OaiPage | None, str | None, str, dt.date | None]:
    """(page or None for noRecordsMatch, OAI error code, URL, responseDate), retried while cut."""
    attempt = 0
    while True:
        response = client.get(config.oai_url, params, accept="text/xml")
        content = response.content
        head = content[:8192]
        day_match = _RESPONSE_DATE.search(head)
        day = dt.date.fromisoformat(day_match.group(1).decode()) if day_match else None
        code_match = _ERROR_CODE.search(head)
        code = code_match.group(1).decode() if code_match else None
        if code == "noRecordsMatch":
            return None, code, response.url, day
        if code == "badResumptionToken":
            return None, code, response.url, day
        ctx = ParseContext(source=FORMAT, listing=listing, path=response.url)
        page: OaiPage | None = None
        error = ""
        try:
            page = parse_page(content, ctx)
        except FormatError as exc:
            if code is not None:
                raise FetchError(str(exc).replace(f"{response.url}: ", "")) from None
            error = str(exc)
        if page is not None and not _is_cut(page):
            return page, None, response.url, day
        if attempt >= config.max_retries:
            if page is None:
                raise FetchError(f"{config.oai_url}: unreadable OAI-PMH response ({error})")
            return page, None, response.url, day
        attempt += 1
        client.stats.retries += 1


def _is_cut(page: OaiPage) -> bool:
    return any(isinstance(i, Rejected) and _BROKEN in i.reason for i in page.items)
