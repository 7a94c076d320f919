# ruff: noqa: E501  (the XML templates are verbatim lines of the published formats)
"""A local stand-in for arXiv and Hugging Face: a real HTTP server on loopback.

It answers the three live APIs from recorded responses and from corpora rendered in the
published formats (arXiv API Atom in its 2025 layout, OAI-PMH ``ListRecords`` in the
``arXiv`` format, the daily-papers JSON of ``/api/daily_papers``), pages them the way the
real services do (``start`` / ``max_results``, resumption tokens, ``p`` / ``limit``), and
misbehaves on request: :class:`Fault` injects 429 / 503 with Retry-After, server errors,
bodies cut short of their Content-Length, documents cut mid-XML, empty pages and slow
answers. Every request is logged (:attr:`RecordedUpstream.seen`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass(frozen=True, slots=True)
class FakePaper:
    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    published: dt.datetime
    updated: dt.datetime
    version: int = 1
    datestamp: dt.date | None = None  # OAI-PMH datestamp (default: the updated day)


def week_of_papers(
    category: str,
    first_day: dt.date,
    *,
    days: int = 7,
    per_day: int = 20,
    prefix: str = "2403",
    start_number: int = 1,
) -> list[FakePaper]:
    """``per_day`` papers of ``category`` for each of ``days`` days; a third are revisions."""
    papers = []
    number = start_number
    for d in range(days):
        day = first_day + dt.timedelta(days=d)
        for i in range(per_day):
            revised = i % 3 == 2
            updated = dt.datetime.combine(day, dt.time(1 + i % 20, 7, 11))
            published = updated - dt.timedelta(days=40) if revised else updated
            papers.append(
                FakePaper(
                    arxiv_id=f"{prefix}.{number:05d}",
                    title=f"{category} study {number}: learning to read paper feeds, part {i}",
                    abstract=(
                        f"We study problem {number} of {category}. " + "Results improve. " * 8
                    ),
                    authors=(f"Ada Lovelace {number}", "Alan Turing"),
                    categories=(category, "cs.LG") if i % 4 == 0 else (category,),
                    published=published,
                    updated=updated,
                    version=2 if revised else 1,
                )
            )
            number += 1
    return papers


# ---------------------------------------------------------------------------- arXiv API


def atom_entry(p: FakePaper) -> str:
    cats = "".join(
        f'\n    <category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in p.categories
    )
    authors = "".join(
        f"\n    <author>\n      <name>{escape(a)}</name>\n    </author>" for a in p.authors
    )
    title = f"<title>{escape(p.title)}</title>" if p.title else "<title/>"
    return f"""  <entry>
    <id>http://arxiv.org/abs/{p.arxiv_id}v{p.version}</id>
    {title}
    <updated>{p.updated:%Y-%m-%dT%H:%M:%SZ}</updated>
    <link href="https://arxiv.org/abs/{p.arxiv_id}v{p.version}"/>
    <link href="https://arxiv.org/pdf/{p.arxiv_id}v{p.version}"/>
    <summary>{escape(p.abstract)}</summary>{cats}
    <published>{p.published:%Y-%m-%dT%H:%M:%SZ}</published>
    <arxiv:primary_category term="{p.categories[0]}"/>{authors}
  </entry>
"""


def atom_feed(
    entries: list[FakePaper],
    *,
    query: str,
    start: int,
    per_page: int,
    total: int,
    raw_entries: list[str] | None = None,
) -> bytes:
    body = "".join(raw_entries if raw_entries is not None else [atom_entry(p) for p in entries])
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/recorded</id>
  <title>arXiv Query: search_query={escape(query)}&amp;id_list=&amp;start={start}&amp;max_results={per_page}</title>
  <updated>2024-03-15T09:15:02Z</updated>
  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
{body}</feed>
""".encode()


def atom_error(message: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>http://arxiv.org/api/errors</id>
  <title>Error</title>
  <updated>2024-03-15T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">1</opensearch:totalResults>
  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format</id>
    <title>Error</title>
    <summary>{escape(message)}</summary>
    <updated>2024-03-15T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format" rel="alternate" type="text/html"/>
    <author><name>arXiv api core</name></author>
  </entry>
</feed>
""".encode()


_QUERY = re.compile(r"cat:(?P<cat>\S+) AND lastUpdatedDate:\[(?P<a>\d{12}) TO (?P<b>\d{12})\]")


# ---------------------------------------------------------------------------- OAI-PMH


def oai_record(p: FakePaper) -> str:
    authors = "".join(
        f"<author><keyname>{escape(a.split()[-1])}</keyname>"
        f"<forenames>{escape(' '.join(a.split()[:-1]))}</forenames></author>"
        for a in p.authors
    )
    stamp = p.datestamp or p.updated.date()
    return f"""<record>
<header>
 <identifier>oai:arXiv.org:{p.arxiv_id}</identifier>
 <datestamp>{stamp}</datestamp>
 <setSpec>cs</setSpec>
</header>
<metadata>
 <arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <id>{p.arxiv_id}</id><created>{p.published:%Y-%m-%d}</created><updated>{p.updated:%Y-%m-%d}</updated><authors>{authors}</authors><title>{escape(p.title)}</title><categories>{" ".join(p.categories)}</categories><abstract>{escape(p.abstract)}</abstract></arXiv>
</metadata>
</record>
"""


def oai_response(inner: str, *, request: str, response_date: str = "2024-03-15T12:03:27Z") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<responseDate>{response_date}</responseDate>
<request {request}>http://export.arxiv.org/oai2</request>
{inner}
</OAI-PMH>
""".encode()


def oai_error(code: str, message: str) -> bytes:
    return oai_response(
        f'<error code="{code}">{escape(message)}</error>', request='verb="ListRecords"'
    )


# ---------------------------------------------------------------------------- HF daily


def hf_item(arxiv_id: str, day: dt.date, rank: int, upvotes: int) -> dict[str, Any]:
    stamp = f"{day:%Y-%m-%d}T0{rank % 10}:33:10.541Z"
    title = f"Daily paper {arxiv_id}: scaling feeds to everyone"
    summary = f"We present paper {arxiv_id}, listed on {day}. " + "It works well. " * 6
    return {
        "paper": {
            "id": arxiv_id,
            "authors": [
                {"_id": f"65f3b{rank:019d}", "name": "Grace Hopper", "hidden": False},
                {"_id": f"65f3c{rank:019d}", "name": "Edsger Dijkstra", "hidden": False},
            ],
            "publishedAt": f"{day - dt.timedelta(days=1):%Y-%m-%d}T17:51:32.000Z",
            "submittedOnDailyAt": stamp,
            "title": title,
            "summary": summary,
            "upvotes": upvotes,
            "discussionId": f"65f3a{rank:019d}",
        },
        "publishedAt": stamp,
        "title": title,
        "summary": summary,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
        "numComments": rank % 4,
        "isAuthorParticipating": False,
    }


# ---------------------------------------------------------------------------- faults


@dataclass(slots=True)
class Fault:
    """Misbehave on the next ``times`` requests whose path starts with ``path``.

    kind: ``status`` (``status`` code, ``retry_after`` header, ``body``), ``truncate``
    (Content-Length of the whole body, then only half of it and a closed connection),
    ``cut`` (a well-formed HTTP answer whose document stops mid-way), ``empty`` (a
    valid page without entries), ``slow`` (``delay`` seconds before answering).
    ``when`` further restricts which requests match (a predicate on the query dict).
    """

    path: str
    kind: str
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    body: bytes = b""
    delay: float = 0.0
    when: Callable[[dict[str, str]], bool] | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    at: float
    path: str
    query: dict[str, str]
    user_agent: str
    answer: str  # "200", "429", "truncate", ...


@dataclass
class RecordedUpstream:
    """The state behind the server: corpora, recorded files, faults, the request log."""

    arxiv: list[FakePaper] = field(default_factory=list)
    arxiv_raw_entries: dict[str, str] = field(default_factory=dict)  # id -> raw entry XML
    oai: list[FakePaper] = field(default_factory=list)
    oai_page_size: int = 50
    oai_pages: dict[str, bytes] = field(default_factory=dict)  # recorded: token or "" -> page
    oai_response_date: str = "2024-03-15T12:03:27Z"
    hf: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # day -> items
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path -> body, type
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0  # added to every answer (a slow upstream)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(path)]

    def _fault(self, path: str, query: dict[str, str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and path.startswith(fault.path)
                    and (fault.when is None or fault.when(query))
                ):
                    fault.times -= 1
                    return fault
        return None

    # -- answers --------------------------------------------------------------------
    def answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        if path == "/api/query":
            return 200, self._arxiv(query), "application/atom+xml", {}
        if path == "/oai2":
            return 200, self._oai(query), "text/xml", {}
        if path == "/api/daily_papers":
            return 200, self._hf(query), "application/json", {}
        if path in self.files:
            body, kind = self.files[path]
            return 200, body, kind, {}
        if path.startswith("/rss/"):
            name = FIXTURES / "arxiv-atom" / f"listing-{path.rsplit('/', 1)[-1]}.xml"
            if name.exists():
                return 200, name.read_bytes(), "application/atom+xml", {}
        return 404, b"Not Found", "text/plain", {}

    def _arxiv(self, query: dict[str, str]) -> bytes:
        start = int(query.get("start", "0"))
        per_page = int(query.get("max_results", "10"))
        if "id_list" in query:
            wanted = {i.split("v")[0] for i in query["id_list"].split(",")}
            found = [p for p in self.arxiv if p.arxiv_id in wanted]
            return atom_feed(found, query="", start=0, per_page=per_page, total=len(found))
        m = _QUERY.fullmatch(query.get("search_query", ""))
        if m is None:
            return atom_error("malformed query: " + query.get("search_query", ""))
        low = dt.datetime.strptime(m["a"], "%Y%m%d%H%M")
        high = dt.datetime.strptime(m["b"], "%Y%m%d%H%M") + dt.timedelta(minutes=1)
        hits = sorted(
            (p for p in self.arxiv if m["cat"] in p.categories and low <= p.updated < high),
            key=lambda p: (p.updated, p.arxiv_id),
        )
        page = hits[start : start + per_page]
        raw = None
        if any(p.arxiv_id in self.arxiv_raw_entries for p in page):
            raw = [self.arxiv_raw_entries.get(p.arxiv_id) or atom_entry(p) for p in page]
        return atom_feed(
            page,
            query=query["search_query"],
            start=start,
            per_page=per_page,
            total=len(hits),
            raw_entries=raw,
        )

    def _oai(self, query: dict[str, str]) -> bytes:
        token = query.get("resumptionToken")
        if self.oai_pages:
            page = self.oai_pages.get(token or "")
            return (
                page
                if page is not None
                else oai_error(
                    "badResumptionToken",
                    "The value of the resumptionToken argument is invalid or expired.",
                )
            )
        if token is not None:
            m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}|\*)\|(\d+)", token)
            if m is None:
                return oai_error(
                    "badResumptionToken",
                    "The value of the resumptionToken argument is invalid or expired.",
                )
            low = None if m[1] == "*" else dt.date.fromisoformat(m[1])
            offset = int(m[2])
            request = f'verb="ListRecords" resumptionToken="{token}"'
        else:
            if query.get("metadataPrefix") not in ("arXiv", "arXivRaw"):
                return oai_error("cannotDisseminateFormat", "bad metadataPrefix")
            low = dt.date.fromisoformat(query["from"]) if "from" in query else None
            offset = 0
            request = 'verb="ListRecords" metadataPrefix="arXiv"'
        records = [p for p in self.oai if low is None or (p.datestamp or p.updated.date()) >= low]
        if not records:
            return oai_error("noRecordsMatch", "No records match the request")
        page = records[offset : offset + self.oai_page_size]
        nxt = offset + len(page)
        if nxt < len(records):
            tok = f'<resumptionToken cursor="{offset}" completeListSize="{len(records)}">{low or "*"}|{nxt}</resumptionToken>'
        else:
            tok = f'<resumptionToken cursor="{offset}" completeListSize="{len(records)}"/>'
        inner = "<ListRecords>\n" + "".join(oai_record(p) for p in page) + tok + "\n</ListRecords>"
        return oai_response(inner, request=request, response_date=self.oai_response_date)

    def _hf(self, query: dict[str, str]) -> bytes:
        limit = int(query.get("limit", "50"))
        page = int(query.get("p", "0"))
        if "date" in query:
            items = self.hf.get(query["date"], [])
        elif "week" in query:
            year, week = query["week"].split("-W")
            items = [
                item
                for day, day_items in sorted(self.hf.items())
                if dt.date.fromisoformat(day).isocalendar()[:2] == (int(year), int(week))
                for item in day_items
            ]
        elif "month" in query:
            items = [
                i for d, its in sorted(self.hf.items()) if d.startswith(query["month"]) for i in its
            ]
        else:
            items = self.hf[max(self.hf)] if self.hf else []
        return json.dumps(items[page * limit : (page + 1) * limit]).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        upstream = self.server.upstream
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        fault = upstream._fault(parts.path, query)
        if upstream.delay:
            time.sleep(upstream.delay)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        headers: dict[str, str] = {}
        if fault is not None and fault.kind == "status":
            status, body, kind, answer = fault.status, fault.body, "text/plain", str(fault.status)
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
        else:
            status, body, kind, headers = upstream.answer(parts.path, query)
            answer = str(status)
            if fault is not None and fault.kind == "empty" and parts.path == "/api/query":
                body = re.sub(rb"<entry>.*?</entry>\s*", b"", body, flags=re.S)
                answer = "empty"
            elif fault is not None and fault.kind in ("cut", "truncate"):
                answer = fault.kind
        # Logged before answering, so a test that got its answer sees the request logged.
        with upstream.lock:
            upstream.seen.append(
                Seen(arrived, parts.path, query, self.headers.get("User-Agent", ""), answer)
            )
        length = len(body)
        if answer == "cut":
            body = body[: len(body) * 2 // 3]  # a well-formed answer holding half a document
            length = len(body)
        elif answer == "truncate":
            body = body[: len(body) // 2]  # Content-Length promises more than is sent
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if answer == "truncate":
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    upstream: RecordedUpstream

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is part of the tests


@dataclass
class RunningServer:
    upstream: RecordedUpstream
    url: str
    _server: _Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(upstream: RecordedUpstream) -> RunningServer:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.upstream = upstream
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    return RunningServer(upstream, f"http://{host}:{port}", server, thread)
