"""The JSON API (/api/v1), its error contract, OpenAPI, exports, RSS and Atom."""

from __future__ import annotations

import io

import feedparser
import pytest
from fastapi.testclient import TestClient

from paperfeed.feeds import FeedSort, day_period, feed, parse_week
from paperfeed.search import SearchMode, SearchOptions
from paperfeed.sources import get_parser
from paperfeed.sources.base import ParseContext, Parsed
from tests.web.conftest import LATEST_SAMPLE_DAY, Instance


def test_feed_api_matches_the_library(client: TestClient, instance: Instance) -> None:
    r = client.get("/api/v1/feed", params={"week": "2026-W11", "sort": "date", "limit": 7})
    assert r.status_code == 200
    data = r.json()
    assert data["ok"] is True
    expected = feed(instance.store, parse_week("2026-W11"), sort=FeedSort.DATE, limit=7)
    assert [x["paper"]["id"] for x in data["results"]] == [e.paper.id for e in expected.entries]
    assert data["total"] == expected.total
    assert data["period"]["key"] == "2026-W11"
    assert data["previous"]["key"] == "2026-W10"
    page2 = client.get(
        "/api/v1/feed", params={"week": "2026-W11", "sort": "date", "limit": 7, "offset": 7}
    ).json()
    assert not {x["paper"]["id"] for x in page2["results"]} & {
        x["paper"]["id"] for x in data["results"]
    }
    latest = client.get("/api/v1/feed").json()
    assert latest["period"]["key"] == LATEST_SAMPLE_DAY
    days = client.get("/api/v1/feed-days").json()["days"]
    assert days[-1] == LATEST_SAMPLE_DAY
    assert "2026-03-13" in days


def test_papers_and_paper(client: TestClient, instance: Instance) -> None:
    listed = client.get("/api/v1/papers", params={"limit": 3}).json()
    assert listed["ok"]
    assert listed["total"] == instance.store.stats().papers
    assert len(listed["papers"]) == 3
    one = client.get("/api/v1/papers/arXiv:2403.09611").json()
    assert one["paper"]["id"] == "2403.09611"
    assert one["paper"]["upvotes"] == 123
    assert one["appearances"]
    assert one["appearances"][0]["feed_date"]


def test_search_and_similar(client: TestClient, instance: Instance) -> None:
    r = client.get("/api/v1/search", params={"q": "text-to-image personalization", "limit": 5})
    data = r.json()
    expected = instance.engine.search(
        "text-to-image personalization", SearchOptions(mode=SearchMode.HYBRID, limit=5)
    )
    assert data["mode"] == "hybrid"
    assert [x["paper"]["id"] for x in data["results"]] == [h.paper.id for h in expected.hits]
    assert data["nothing_relevant"] is False
    assert "<mark>" in data["results"][0]["snippet"]
    nothing = client.get("/api/v1/search", params={"q": "qwxz vbnm", "mode": "keyword"}).json()
    assert nothing["ok"]
    assert nothing["nothing_relevant"]
    assert nothing["results"] == []
    similar = client.get("/api/v1/similar", params={"id": "2403.09611", "limit": 4}).json()
    ids = [x["paper"]["id"] for x in similar["results"]]
    assert len(ids) == 4
    assert "2403.09611" not in ids
    assert ids == [h.paper.id for h in instance.engine.similar("2403.09611", limit=4)]


@pytest.mark.parametrize(
    ("url", "status", "error"),
    [
        ("/api/v1/feed?limit=0", 400, "limit: Input should be greater than or equal to 1"),
        ("/api/v1/feed?limit=ten", 400, "limit: Input should be a valid integer"),
        ("/api/v1/feed?date=2026-02-30", 400, "date: '2026-02-30' is not a date"),
        ("/api/v1/feed?sort=best", 400, "sort: 'best' is not one of trending, date"),
        ("/api/v1/search", 400, "q: Field required"),
        ("/api/v1/search?q=%20", 400, "q: the query is empty"),
        ("/api/v1/search?q=ti:", 400, "nothing to look for in 'ti:' at character 1"),
        ("/api/v1/papers/9999.00000", 404, "no paper with id '9999.00000'"),
        ("/api/v1/similar?id=nope", 404, "no paper with id 'nope'"),
        ("/api/v1/export?format=docx&id=2403.09611", 400, "format: 'docx' is not one of"),
        ("/api/v1/nothing-here", 404, "nothing at /api/v1/nothing-here"),
    ],
)
def test_api_errors(client: TestClient, url: str, status: int, error: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    body = r.json()
    assert body["ok"] is False
    assert body["status"] == status
    assert error in body["error"]


def test_export_bibtex_and_ris_read_back(client: TestClient) -> None:
    bib = client.get("/api/v1/export", params={"id": "2403.09611", "format": "bibtex"})
    assert bib.status_code == 200
    assert bib.headers["content-type"].startswith("application/x-bibtex")
    assert 'filename="2403.09611.bib"' in bib.headers["content-disposition"]
    ris = client.get("/api/v1/export", params={"id": "2403.09611", "format": "ris"})
    assert ris.status_code == 200
    for fmt, body in (("bibtex", bib.content), ("ris", ris.content)):
        ctx = ParseContext(source=fmt, listing="export")
        items = list(get_parser(fmt)(io.BytesIO(body), ctx))
        papers = [i.paper for i in items if isinstance(i, Parsed)]
        assert [p.title for p in papers] == [
            "MM1: Methods, Analysis & Insights from Multimodal LLM Pre-training"
        ]
        assert papers[0].arxiv_id == "2403.09611"
    day = client.get("/api/v1/export", params={"date": LATEST_SAMPLE_DAY, "format": "json"})
    assert len(day.json()) == 44
    found = client.get("/api/v1/export", params={"q": "personalization", "format": "jsonl"})
    assert len(found.text.splitlines()) >= 3


def test_openapi_and_docs_page(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/feed",
        "/api/v1/papers",
        "/api/v1/papers/{paper_id}",
        "/api/v1/search",
        "/api/v1/similar",
        "/api/v1/export",
        "/api/daily_papers",
        "/api/papers/search",
        "/api/papers/{paper_id}",
    ):
        assert path in paths, path
    assert not any(p.startswith(("/papers", "/search", "/feeds")) for p in paths)
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/api/v1/search" in docs.text
    assert "Results per page." in docs.text


def test_rss_and_atom_of_a_feed_view(client: TestClient, instance: Instance) -> None:
    expected = feed(instance.store, day_period(instance.store.latest_feed_day()))  # type: ignore[arg-type]
    for fmt, version in (("rss", "rss20"), ("atom", "atom10")):
        r = client.get(f"/feeds/papers.{fmt}", params={"date": LATEST_SAMPLE_DAY})
        assert r.status_code == 200
        parsed = feedparser.parse(r.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.version == version
        assert [e.title for e in parsed.entries] == [e.paper.title for e in expected.entries]
        assert parsed.entries[0].link.endswith("/papers/" + expected.entries[0].paper.id)
        assert parsed.entries[0].summary == expected.entries[0].paper.abstract
        assert parsed.entries[0].published_parsed[:3] == (2026, 4, 1)
    week = feedparser.parse(client.get("/feeds/papers.atom", params={"week": "2026-W11"}).content)
    assert week.bozo == 0
    assert "Week 11 of 2026" in week.feed.title
    authors = feedparser.parse(
        client.get("/feeds/papers.rss", params={"date": "2024-03-15"}).content
    )
    assert authors.bozo == 0


def test_rss_and_atom_of_a_search(client: TestClient) -> None:
    for fmt in ("rss", "atom"):
        r = client.get(f"/feeds/search.{fmt}", params={"q": "text-to-image personalization"})
        parsed = feedparser.parse(r.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert len(parsed.entries) >= 5
        assert any("Personalization" in e.title for e in parsed.entries[:5])
    bad = client.get("/feeds/search.rss")
    assert bad.status_code == 400
    assert "q: a search feed needs a query" in bad.text
    bad_date = client.get("/feeds/papers.atom", params={"date": "soon"})
    assert bad_date.status_code == 400
