"""The Hugging Face-compatible API, driven by the real ``huggingface_hub`` client against a
server on loopback (nothing leaves the machine)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError

from paperfeed.feeds import FeedSort, day_period, feed, parse_month, parse_week
from tests.web.conftest import HF_DAILY, LATEST_SAMPLE_DAY, Instance, LiveServer


@pytest.fixture
def api(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    # The real-model encoder sets HF_HUB_OFFLINE for its own loading; this client only
    # talks to our loopback server.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # The client also fetches a registry of its own from its default endpoint (huggingface.co)
    # on first use; point that at our server too, so nothing leaves the machine.
    monkeypatch.setattr(constants, "ENDPOINT", live.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return HfApi(endpoint=live.url, token=False)


def test_list_daily_papers_by_date(api: HfApi, instance: Instance) -> None:
    day = dt.date.fromisoformat(LATEST_SAMPLE_DAY)
    papers = list(api.list_daily_papers(date=LATEST_SAMPLE_DAY, token=False, limit=100))
    expected = feed(instance.store, day_period(day), sort=FeedSort.DATE, limit=100)
    assert [p.title for p in papers] == [e.paper.title for e in expected.entries]
    assert len(papers) == 44
    first = papers[0]
    assert first.submitted_at == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert first.summary == expected.entries[0].paper.abstract
    assert not first.upvotes  # 0 (the client reads a 0 as None)


def test_daily_papers_week_month_sort_and_pages(api: HfApi, instance: Instance) -> None:
    week = list(api.list_daily_papers(week="2026-W11", sort="trending", limit=100, token=False))
    expected = feed(instance.store, parse_week("2026-W11"), sort=FeedSort.TRENDING, limit=100)
    assert [p.title for p in week] == [e.paper.title for e in expected.entries]
    month = list(api.list_daily_papers(month="2026-03", limit=100, token=False))
    rest = list(api.list_daily_papers(month="2026-03", p=1, limit=100, token=False))
    assert len(month) == 100
    assert len(month) + len(rest) == feed(instance.store, parse_month("2026-03")).total
    assert not {p.id for p in month} & {p.id for p in rest}
    page0 = list(api.list_daily_papers(month="2026-03", p=0, limit=10, token=False))
    page1 = list(api.list_daily_papers(month="2026-03", p=1, limit=10, token=False))
    assert [p.title for p in page0 + page1] == [p.title for p in month[:20]]
    assert list(api.list_daily_papers(submitter="akhaliq", token=False)) == []
    # No date: the most recent papers across days.
    recent = list(api.list_daily_papers(limit=3, token=False))
    assert all(p.submitted_at == dt.datetime(2026, 4, 1, tzinfo=dt.UTC) for p in recent)


def test_daily_papers_have_the_recorded_shape(api: HfApi) -> None:
    """A paper ingested from a recorded huggingface.co response comes back with the same
    fields the client reads from huggingface.co."""
    recorded = json.loads(HF_DAILY.read_text())[0]["paper"]
    day = list(api.list_daily_papers(date="2024-03-15", sort="trending", token=False))
    mm1 = next(p for p in day if p.id == recorded["id"])
    assert mm1.title == recorded["title"]
    assert mm1.summary == recorded["summary"]
    assert mm1.upvotes == recorded["upvotes"]
    assert [a.name for a in mm1.authors or []] == [a["name"] for a in recorded["authors"]]
    assert mm1.published_at is not None
    assert mm1.published_at.date() == dt.date(2024, 3, 14)
    # Trending within the day is by votes.
    assert [p.upvotes for p in day] == sorted((p.upvotes or 0 for p in day), reverse=True)


def test_list_papers_searches(api: HfApi) -> None:
    found = list(api.list_papers(query="text-to-image personalization", limit=5, token=False))
    assert 0 < len(found) <= 5
    assert any("Personalization" in (p.title or "") for p in found)
    recent = list(api.list_papers(limit=2, token=False))
    assert len(recent) == 2


def test_paper_info_and_read_paper(api: HfApi) -> None:
    info = api.paper_info("2403.09611")
    assert info.id == "2403.09611"
    assert info.title == "MM1: Methods, Analysis & Insights from Multimodal LLM Pre-training"
    assert info.upvotes == 123
    assert info.submitted_at is not None
    text = api.read_paper("2403.09611")
    assert text.startswith("# MM1: Methods, Analysis & Insights")
    assert "## Abstract" in text
    with pytest.raises(HfHubHTTPError) as err:
        api.paper_info("2999.00001")
    assert err.value.response.status_code == 404
    assert "no paper with id '2999.00001'" in str(err.value)
    with pytest.raises(HfHubHTTPError):
        api.read_paper("2999.00001")
    with pytest.raises(HfHubHTTPError) as bad:
        list(api.list_daily_papers(date="2026-02-31", token=False))
    assert bad.value.response.status_code == 400
