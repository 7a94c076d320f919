"""One URL in (``paperfeed fetch url``): an arXiv abs / pdf page, or any paper list.

- ``arxiv.org/abs/<id>`` or ``/pdf/<id>``: the paper is asked from the arXiv query API
  (``id_list``), which gives its full metadata (the abs page is HTML meant for people).
- anything else is downloaded and read like a file given to ``paperfeed ingest``: the
  format is detected from the content and the URL's name (``--format`` forces one), so a
  BibTeX file, a daily-papers JSON, an Atom feed or a saved listing page all work. An HTML
  page is turned into text first (scripts and styles dropped, one line per block) and read
  as a listing page.

Appearances are recorded on a listing named by the URL.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from paperfeed.errors import FormatError
from paperfeed.fetch.arxiv_api import FORMAT as ATOM_FORMAT
from paperfeed.fetch.config import FetchConfig
from paperfeed.fetch.http import FetchError, PoliteClient
from paperfeed.fetch.pipeline import store_items
from paperfeed.fetch.runs import FetchReport, RunLog, run_logged
from paperfeed.ids import parse_arxiv_id
from paperfeed.sources import FORMATS, detect_format, get_parser
from paperfeed.sources.base import Item, ParseContext
from paperfeed.store import Store

SOURCE = "url"
_ARXIV_HOST = re.compile(r"(?:^|\.)arxiv\.org$", re.IGNORECASE)
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "article",
        "section",
        "header",
        "footer",
        "time",
        "ul",
        "ol",
        "table",
        "blockquote",
        "main",
        "nav",
    }
)
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})


def arxiv_id_of(url: str) -> str | None:
    """The arXiv id of an arxiv.org abs / pdf URL (with its version, if any), else None."""
    parts = urlsplit(url)
    if not _ARXIV_HOST.search(parts.hostname or ""):
        return None
    if not re.match(r"^/(?:abs|pdf)/", parts.path):
        return None
    parsed = parse_arxiv_id(url)
    return str(parsed) if parsed else None


def fetch_url(
    store: Store,
    client: PoliteClient,
    config: FetchConfig,
    url: str,
    *,
    fmt: str | None = None,
) -> FetchReport:
    if not re.match(r"^https?://[^/\s]+", url):
        raise FetchError(f"not an http(s) URL: {url!r}")
    if fmt is not None and fmt not in FORMATS:
        raise FetchError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")

    def body(run: RunLog) -> None:
        arxiv_id = None if fmt else arxiv_id_of(url)
        if arxiv_id is not None:
            response = client.get(
                config.arxiv_api_url,
                {"id_list": arxiv_id, "max_results": 1},
                accept="application/atom+xml",
            )
            chosen, data = ATOM_FORMAT, response.content
            run.note = f"arXiv {arxiv_id} from the query API"
        else:
            response = client.get(url)
            data = response.content
            chosen = fmt or _detect(url, data, response.content_type)
            if chosen == "listing" and _is_html(data, response.content_type):
                data = html_to_text(data).encode("utf-8")
            run.note = f"read as {chosen}"
        ctx = ParseContext(source=chosen, listing=url, path=url)
        try:
            items: list[Item] = list(get_parser(chosen)(io.BytesIO(data), ctx))
        except FormatError as exc:
            raise FetchError(str(exc)) from None
        if not items:
            raise FetchError(f"{url}: no paper records found (read as {chosen})")
        run.page(store_items(store, items, source=chosen, listing=url, origin=url))

    return run_logged(store, client, SOURCE, url, body)


def _is_html(data: bytes, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _detect(url: str, data: bytes, content_type: str) -> str:
    if _is_html(data, content_type):
        return "listing"
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "index"
    try:
        return detect_format(name, data[: 64 * 1024])
    except FormatError as exc:
        raise FetchError(str(exc).replace(f"{name}: ", f"{url}: ")) from None


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._current: list[str] = []
        self._skipping = 0

    def _break(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.lines.append(text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._current.append(data)


def html_to_text(data: bytes) -> str:
    """The visible text of an HTML page, one line per block, blank lines between blocks."""
    parser = _TextExtractor()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    parser._break()
    return "\n\n".join(parser.lines) + "\n"
