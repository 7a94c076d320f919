"""The HTML pages through the real app (in-process), on the sample instance."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from paperfeed.feeds import FeedSort, day_period, feed
from tests.web.conftest import LATEST_SAMPLE_DAY, Instance


def titles(html: str) -> list[str]:
    found = re.findall(r'<h2 class="title"><a href="[^"]+">([^<]+)</a>', html)
    return [t.replace("&amp;", "&").replace("&#39;", "'").replace("&#34;", '"') for t in found]


def test_home_is_the_latest_feed_day(client: TestClient, instance: Instance) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    html = r.text
    assert "<h1>Wednesday 1 April 2026</h1>" in html
    expected = feed(instance.store, day_period(instance.store.latest_feed_day()))  # type: ignore[arg-type]
    assert titles(html) == [e.paper.title for e in expected.entries][:50]
    assert expected.total == 44
    assert "44 papers" in html
    # The subscribe box, the date picker, the feeds of this view, previous-day link.
    assert 'action="/subscribe"' in html
    assert 'type="email"' in html
    assert 'type="date" name="date" value="2026-04-01"' in html
    assert 'href="/feeds/papers.rss?date=2026-04-01"' in html
    assert 'href="/papers/date/2026-03-14">← Saturday 14 March 2026</a>' in html
    assert 'rel="next"' not in html.split("<ol")[0]  # nothing after the latest day
    assert re.fullmatch(r"queue;dur=[\d.]+, app;dur=[\d.]+", r.headers["server-timing"])


def test_date_week_month_views_and_navigation(client: TestClient) -> None:
    r = client.get("/papers", params={"date": "2026-03-13"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/papers/date/2026-03-13"
    day = client.get("/papers/date/2026-03-13")
    assert day.status_code == 200
    assert "Friday 13 March 2026" in day.text
    assert "61 papers" in day.text
    assert 'href="/papers/date/2026-03-14">Saturday 14 March 2026 →</a>' in day.text
    week = client.get("/papers/week/2026-W11")
    assert "Week 11 of 2026" in week.text
    # 61 + 105 appearances on the 13th and 14th, of papers some of which repeat.
    count = int(re.search(r"(\d+) papers", week.text)[1])  # type: ignore[index]
    assert 61 < count <= 166
    assert 'href="/papers/week/2026-W10"' in week.text
    month = client.get("/papers/month/2026-03")
    assert "March 2026" in month.text
    assert f"{count} papers" in month.text
    assert client.get("/papers", params={"week": "latest"}).url.path == "/papers/week/2026-W14"
    empty = client.get("/papers/date/2020-01-01")
    assert empty.status_code == 200
    assert "No papers here" in empty.text


def test_sort_and_filters(client: TestClient, instance: Instance) -> None:
    by_date = client.get(f"/papers/date/{LATEST_SAMPLE_DAY}", params={"sort": "date"})
    expected = feed(
        instance.store, day_period(instance.store.latest_feed_day()), sort=FeedSort.DATE
    )  # type: ignore[arg-type]
    assert titles(by_date.text) == [e.paper.title for e in expected.entries]
    assert 'aria-current="true">Newest' in by_date.text
    # The sample has no categories: a category filter empties the list, and says so.
    filtered = client.get(f"/papers/date/{LATEST_SAMPLE_DAY}", params={"category": "cs.CL"})
    assert "No papers here" in filtered.text
    assert "with these filters" in filtered.text


def test_abstracts_are_in_the_list(client: TestClient, instance: Instance) -> None:
    html = client.get("/").text
    first = feed(instance.store, day_period(instance.store.latest_feed_day())).entries[0]  # type: ignore[arg-type]
    assert 'class="abstract"' in html
    assert first.paper.abstract[:60] in html.replace("&#39;", "'").replace("&#34;", '"')


@pytest.mark.parametrize(
    ("url", "status", "reason"),
    [
        ("/papers/date/2026-13-45", 400, "date: &#39;2026-13-45&#39; is not a date"),
        ("/papers/week/2026-W60", 400, "week: &#39;2026-W60&#39; is not an ISO week"),
        ("/papers/month/March", 400, "month: &#39;March&#39; is not a month"),
        ("/?sort=hot", 400, "sort: &#39;hot&#39; is not one of trending, date"),
        ("/?page=0", 400, "page: Input should be greater than or equal to 1"),
        ("/?page=two", 400, "page: Input should be a valid integer"),
        ("/papers?date=2026-03-14&week=2026-W11", 400, "give only one of date, week and month"),
        ("/?category=not%20a%20category", 400, "category: &#39;not a category&#39;"),
        ("/search?q=x&mode=fuzzy", 400, "mode: &#39;fuzzy&#39; is not one of"),
        ("/search?q=x&from=yesterday", 400, "from: &#39;yesterday&#39; is not a date"),
        ("/search?q=x&from=2026-02-01&to=2026-01-01", 400, "from (2026-02-01) is after to"),
        ("/search?q=-only", 400, "needs at least one term"),
        ("/papers/2999.99999", 404, "no paper with id &#39;2999.99999&#39;"),
        ("/papers/title:nope.md", 404, "no paper with id"),
        ("/no/such/page", 404, "nothing at /no/such/page"),
    ],
)
def test_errors_are_pages_with_the_reason(
    client: TestClient, url: str, status: int, reason: str
) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert "text/html" in r.headers["content-type"]
    assert reason in r.text
    assert "Traceback" not in r.text


def test_search_page(client: TestClient) -> None:
    empty = client.get("/search")
    assert empty.status_code == 200
    assert "paste" in empty.text.lower()
    r = client.get("/search", params={"q": "text-to-image personalization"})
    assert r.status_code == 200
    found = titles(r.text)
    assert any("Personalization" in t for t in found[:5])
    assert "<mark>" in r.text
    assert 'value="hybrid" checked' in r.text
    assert 'href="/feeds/search.rss?q=text-to-image+personalization"' in r.text
    kw = client.get("/search", params={"q": "personalization", "mode": "keyword"})
    assert 'value="keyword" checked' in kw.text
    assert all("ersonaliz" in t or "ersonaliz" in kw.text for t in titles(kw.text))


def test_search_nothing_relevant(client: TestClient) -> None:
    r = client.get("/search", params={"q": "qwxz vbnm plokij", "mode": "keyword"})
    assert r.status_code == 200
    assert "Nothing relevant found" in r.text
    assert titles(r.text) == []


def test_search_pagination(client: TestClient) -> None:
    first = client.get("/search", params={"q": "models", "mode": "keyword"})
    second = client.get("/search", params={"q": "models", "mode": "keyword", "page": 2})
    assert "Page 1 of" in first.text
    assert 'rel="next"' in first.text
    assert "Page 2 of" in second.text
    assert not set(titles(first.text)) & set(titles(second.text))
    assert len(titles(first.text)) == 20


def test_paste_an_abstract_finds_the_paper(client: TestClient, instance: Instance) -> None:
    paper = instance.store.get_paper("2403.09611")
    assert paper is not None
    r = client.get("/search", params={"q": paper.abstract})
    assert r.status_code == 200
    assert titles(r.text)[0] == paper.title


def test_paper_page(client: TestClient, instance: Instance) -> None:
    paper = instance.store.get_paper("2403.09611")
    assert paper is not None
    r = client.get("/papers/arXiv:2403.09611v2")  # any spelling of the id
    assert r.status_code == 200
    html = r.text
    assert f"<h1>{paper.title.replace('&', '&amp;')}</h1>" in html
    assert "Brandon McKinzie" in html
    assert "<dd>123</dd>" in html  # upvotes
    assert "/api/v1/export?id=2403.09611&amp;format=bibtex" in html
    assert "/api/v1/export?id=2403.09611&amp;format=ris" in html
    assert "Where it appeared" in html
    assert 'href="/papers/date/' in html
    similar = re.findall(r'<ol class="similar">(.*?)</ol>', html, re.S)
    assert similar
    assert len(re.findall(r"<li>", similar[0])) == 8
    assert 'href="/papers/2403.09611"' not in similar[0]
    # A paper without an arXiv id or DOI has a title: id, which works as a URL too.
    first = re.search(r'<h2 class="title"><a href="(/papers/title:[^"]+)"', client.get("/").text)
    assert first
    assert client.get(first[1]).status_code == 200


def test_markdown_of_a_paper(client: TestClient) -> None:
    r = client.get("/papers/2403.09611.md")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/markdown")
    assert r.text.startswith("# MM1: Methods, Analysis & Insights from Multimodal LLM Pre-training")
    assert "**Authors:** Brandon McKinzie, Zhe Gan" in r.text
    assert "## Abstract" in r.text


def test_subscribe_without_smtp_says_so_and_records_nothing(
    client: TestClient, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAPERFEED_SMTP_HOST", raising=False)
    home = client.get("/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text)[1]  # type: ignore[index]
    r = client.post("/subscribe", data={"email": "reader@example.org", "csrf_token": token})
    assert r.status_code == 503
    assert "E-mail digests are not set up on this instance" in r.text
    assert "was <strong>not</strong> recorded" in r.text
    assert instance.store.subscription_by_email("reader@example.org") is None
    bad = client.post("/subscribe", data={"email": "not-an-address", "csrf_token": token})
    assert bad.status_code == 400
    assert "email: &#39;not-an-address&#39; is not an e-mail address" in bad.text
    assert client.post("/subscribe", data={"csrf_token": token}).status_code == 400
    # Without the CSRF token the form is refused before anything else.
    assert client.post("/subscribe", data={"email": "reader@example.org"}).status_code == 403


def test_static_files_are_local(client: TestClient) -> None:
    html = client.get("/").text
    assert not re.search(r'(src|href)="(https?:)?//', html.split("<main")[0])
    for path in ("/static/style.css", "/static/app.js", "/static/favicon.svg"):
        assert client.get(path).status_code == 200
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower()
