"""The recommender on the web, with the real app over a real store (the sample embedded
with the fake encoder) and the real background trainer: like → for you with reasons,
not interested, cold start from a sentence, personal feeds, topics, the map."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from paperfeed.index import semantic
from paperfeed.recommend.feedback import local_user
from paperfeed.recommend.projection import build_map
from paperfeed.recommend.topics import label_new_papers, topic_labels
from paperfeed.recommend.trainer import Trainer
from paperfeed.recommend.vectors import open_active_vectors
from paperfeed.store import PaperQuery
from paperfeed.web import create_app
from paperfeed.web.config import WebConfig
from paperfeed.web.recommend_state import feed_token
from tests.web.conftest import Instance

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TITLE = re.compile(r'<h2 class="title"><a href="/papers/([^"]+)">')
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def labelled(instance: Instance) -> Instance:
    vectors = open_active_vectors(instance.settings, instance.store)
    assert vectors is not None
    report = label_new_papers(
        instance.store, vectors, semantic.load_encoder(instance.settings, "fake")
    )
    assert report is not None
    assert report.labels > 0
    return instance


@pytest.fixture(scope="module")
def site(labelled: Instance) -> Iterator[TestClient]:
    trainer = Trainer(labelled.settings, labelled.store, poll_seconds=0.05)
    app = create_app(labelled.settings, labelled.store, labelled.engine, services=[trainer])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def csrf(client: TestClient, path: str = "/for-you") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def post(client: TestClient, path: str, **form: str) -> None:
    r = client.post(path, data={"csrf_token": csrf(client), **form}, follow_redirects=False)
    assert r.status_code == 303, r.text


def for_you_json(client: TestClient, *, until: str = "ok", **params: str) -> dict[str, object]:
    """The API's answer once the background trainer caught up (it polls every 0.05 s)."""
    deadline = time.monotonic() + 20
    while True:
        data: dict[str, object] = client.get("/api/v1/for-you", params=params).json()
        if data["status"] == until or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def test_like_five_papers_then_for_you_says_why(site: TestClient, labelled: Instance) -> None:
    store = labelled.store
    user = local_user(store)
    # Cold start: nothing liked, the page offers the sentence form and the ways to pick.
    page = site.get("/for-you")
    assert page.status_code == 200
    assert "Describe your interests in a sentence" in page.text
    assert 'href="/map"' in page.text
    assert site.get("/api/v1/for-you").json()["status"] == "no-feedback"

    # An interest in a sentence gives picks at once, each naming the interest.
    post(site, "/for-you/interests", sentence="diffusion models for text-to-image generation")
    data = for_you_json(site)
    assert data["status"] == "ok"
    picks = data["picks"]
    assert isinstance(picks, list)
    assert picks
    assert picks[0]["because"][0]["interest"] == "diffusion models for text-to-image generation"

    # Like five diffusion papers of the latest week from the feed, with the entry forms.
    latest = store.query_papers(PaperQuery(feed_date=store.latest_feed_day()))
    liked = [p for p in latest if "diffusion" in (p.title + p.abstract).lower()][:5]
    assert len(liked) == 5
    feed_page = site.get("/").text
    assert feed_page.count('action="/feedback"') >= 40  # one form per entry
    for p in liked:
        post(site, "/feedback", paper_id=p.id, action="like", next="/")
    assert {f.paper_id for f in store.feedback(user.id) if f.label > 0} == {p.id for p in liked}

    def trained_on_likes(data: dict[str, object]) -> bool:
        model = data.get("model")
        return isinstance(model, dict) and model["positives"] == 5

    deadline = time.monotonic() + 20
    data = for_you_json(site, days="30", limit="30")
    while not trained_on_likes(data) and time.monotonic() < deadline:
        time.sleep(0.05)
        data = for_you_json(site, days="30", limit="30")
    assert trained_on_likes(data)
    picks = data["picks"]
    assert isinstance(picks, list)
    assert len(picks) >= 10
    liked_ids = {p.id for p in liked}
    assert not liked_ids & {pick["paper"]["id"] for pick in picks}  # judged papers never come back
    for pick in picks:
        assert pick["reason"].startswith("close to ")
        named = [b["paper_id"] for b in pick["because"] if b["paper_id"]]
        assert set(named) <= liked_ids
    assert any(b["paper_id"] for pick in picks for b in pick["because"])

    # The page shows the same picks, in the same order, each with its reason and links.
    page = site.get("/for-you", params={"days": 30})
    shown = TITLE.findall(page.text)
    assert shown[: len(picks)] == [pick["paper"]["id"] for pick in picks]
    assert page.text.count('class="reason"') == len(picks)
    assert "Because you liked" in page.text
    assert any(f'href="/papers/{i}"' in page.text.split('class="reason"', 1)[1] for i in liked_ids)
    assert "Not interested" in page.text
    assert page.text.count("♥ Liked") == 0  # picks are never already liked

    # "Not interested" removes the pick at once and records a dislike (the model learns).
    first = picks[0]["paper"]["id"]
    post(site, "/feedback", paper_id=first, action="not-interested", next="/for-you?days=30")
    after = site.get("/api/v1/for-you", params={"days": 30}).json()
    assert first not in [pick["paper"]["id"] for pick in after["picks"]]
    assert any(f.paper_id == first and f.label == -1 for f in store.feedback(user.id))
    deadline = time.monotonic() + 20
    while site.get("/api/v1/for-you").json()["model"]["negatives"] < 1:
        assert time.monotonic() < deadline, "the model was not retrained with the dislike"
        time.sleep(0.05)

    # A liked paper shows as liked wherever it is listed (and can be undone there).
    paper = site.get(f"/papers/{liked[0].id}").text
    assert "♥ Liked" in paper
    post(site, "/feedback", paper_id=liked[0].id, action="clear", next="/")
    assert liked[0].id not in {f.paper_id for f in store.feedback(user.id)}
    post(site, "/feedback", paper_id=liked[0].id, action="like", next="/")

    # RSS and Atom of "for you": each item opens with its reason (no token in single-user).
    rss = site.get("/feeds/for-you.rss", params={"days": 30})
    assert rss.headers["content-type"].startswith("application/rss+xml")
    items = ElementTree.fromstring(rss.text).findall("./channel/item")
    assert items
    assert items[0].findtext("description", "").startswith("Why: close to ")
    atom = ElementTree.fromstring(site.get("/feeds/for-you.atom", params={"days": 30}).text)
    assert atom.findall(f"{ATOM}entry")


def test_feedback_needs_csrf_and_a_known_paper(site: TestClient) -> None:
    r = site.post("/feedback", data={"paper_id": "2403.08764", "action": "like"})
    assert r.status_code == 403
    r = site.post(
        "/feedback", data={"csrf_token": csrf(site), "paper_id": "no-such", "action": "like"}
    )
    assert r.status_code == 400
    assert "paper_id" in r.text
    r = site.post(
        "/feedback", data={"csrf_token": csrf(site), "paper_id": "2403.08764", "action": "love"}
    )
    assert r.status_code == 400
    assert "action" in r.text
    # The JSON API takes the page's token as a header.
    token = csrf(site)
    bad = site.post("/api/v1/feedback", json={"paper_id": "nope"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 404
    assert bad.json()["ok"] is False


def test_personal_feeds_with_accounts_need_their_token(labelled: Instance) -> None:
    store = labelled.store
    ada = store.create_user("ada-feeds", "ada-feeds@example.org", "!no-login")
    app = create_app(labelled.settings, store, labelled.engine, web_config=WebConfig(accounts=True))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/feeds/for-you.rss")
        assert r.status_code == 401
        assert "token" in r.text
        token = feed_token(app.state.ctx, ada)
        ok = client.get("/feeds/for-you.rss", params={"token": token})
        assert ok.status_code == 200
        assert "for you (ada-feeds)" in ok.text
        forged = client.get("/feeds/for-you.rss", params={"token": token[:-3] + "AAA"})
        assert forged.status_code == 400
        assert client.get("/for-you", follow_redirects=False).status_code == 303  # log in


def test_topics_pages_feeds_api_and_chips(site: TestClient, labelled: Instance) -> None:
    store = labelled.store
    topics = site.get("/api/v1/topics").json()["topics"]
    busiest = max(topics, key=lambda t: t["papers"])
    assert busiest["papers"] > 0
    key = busiest["key"]
    # The topic page lists its papers, newest first, each with its chips and forms.
    page = site.get(f"/topics/{key}")
    assert page.status_code == 200
    ids = TITLE.findall(page.text)
    assert ids
    api = site.get(f"/api/v1/topics/{key}").json()
    assert api["topic"]["key"] == key
    assert [r["paper"]["id"] for r in api["results"]] == ids[: len(api["results"])]
    days = [r["day"] for r in api["results"]]
    assert days == sorted(days, reverse=True)
    pks = [store.paper_pk(i) for i in ids]
    chips = topic_labels(store, [pk for pk in pks if pk is not None])
    assert all(any(c.key == key for c in chips[pk]) for pk in pks if pk is not None)
    rss = ElementTree.fromstring(site.get(f"/feeds/topics/{key}.rss").text)
    assert [i.findtext("link", "").rsplit("/papers/", 1)[1] for i in rss.findall("./channel/item")][
        :5
    ] == ids[:5]
    assert site.get("/topics/no.such-topic").status_code == 404
    assert site.get("/api/v1/topics/no.such-topic").json()["status"] == 404

    # Chips on feed entries, search results and paper pages link to the topic feeds.
    assert 'class="chip' in site.get("/").text
    paper = site.get(f"/papers/{ids[0]}").text
    assert f'href="/topics/{key}"' in paper

    # A topic of one's own, from one sentence: its papers are labelled at once.
    before = site.get("/topics")
    assert "Add your own topic" in before.text
    r = site.post(
        "/topics",
        data={
            "csrf_token": csrf(site),
            "sentence": "retrieval augmented generation",
            "name": "RAG",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    mine = r.headers["location"]
    assert mine.startswith("/topics/user.")
    page = site.get(mine)
    assert "<h1>RAG</h1>" in page.text
    assert "retrieval augmented generation" in page.text
    assert any(
        t["key"] == mine.rsplit("/", 1)[1] and t["papers"] > 0
        for t in site.get("/api/v1/topics").json()["topics"]
    )


def test_search_filters_by_topic(site: TestClient, labelled: Instance) -> None:
    store = labelled.store
    topics = site.get("/api/v1/topics").json()["topics"]
    key = max(topics, key=lambda t: t["papers"])["key"]
    everything = site.get("/api/v1/search", params={"q": "model", "mode": "keyword", "limit": 100})
    only = site.get(
        "/api/v1/search", params={"q": "model", "mode": "keyword", "limit": 100, "topic": key}
    ).json()
    assert 0 < only["total"] < everything.json()["total"]
    for hit in only["results"]:
        pk = store.paper_pk(hit["paper"]["id"])
        assert pk is not None
        assert key in [c.key for c in topic_labels(store, [pk])[pk]]
    page = site.get("/search", params={"q": "model", "mode": "keyword", "topic": key})
    assert page.status_code == 200
    assert f'value="{key}"' in page.text
    shown = TITLE.findall(page.text)
    assert shown == [h["paper"]["id"] for h in only["results"][: len(shown)]]
    bad = site.get("/api/v1/search", params={"q": "model", "topic": "no.such"})
    assert bad.status_code == 400
    assert "topic" in bad.json()["error"]


def test_the_map_page_api_and_picture(site: TestClient, labelled: Instance) -> None:
    store = labelled.store
    if store.map_layout() is None:
        # Before any projection: the page says how to make one.
        page = site.get("/map")
        assert "paperfeed map" in page.text
        assert site.get("/api/v1/map").json()["available"] is False
        assert site.get("/map.png").status_code == 404
    vectors = open_active_vectors(labelled.settings, store)
    assert vectors is not None
    build_map(store, vectors, method="pca")
    page = site.get("/map")
    assert '<canvas id="map"' in page.text
    assert '<script src="/static/map.js"' in page.text
    data = site.get("/api/v1/map").json()
    assert data["available"] is True
    n = data["papers"]
    assert n == len(vectors.index)
    assert all(len(data[c]) == n for c in ("x", "y", "topic", "liked", "id", "title"))
    assert all(-1.0 <= v <= 1.0 for v in data["x"] + data["y"])
    assert max(data["topic"]) == len(data["topics"]) - 1
    liked = {f.paper_id for f in store.feedback(local_user(store).id) if f.label > 0}
    assert {i for i, flag in zip(data["id"], data["liked"], strict=True) if flag} == liked
    png = site.get("/map.png")
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    assert site.get("/static/map.js").status_code == 200


def test_map_points_are_kept_per_layout_user_and_likes(labelled: Instance) -> None:
    from paperfeed.web.map_cache import MapCache

    store = labelled.store
    vectors = open_active_vectors(labelled.settings, store)
    assert vectors is not None
    build_map(store, vectors, method="pca")
    layout = store.map_layout()
    assert layout is not None
    cache = MapCache()
    first = cache.points(store, layout, user_id=None)
    assert cache.points(store, layout, user_id=None) is first  # not built again
    liked = [int(layout.keys[0])]
    with_like = cache.points(store, layout, liked=liked, user_id=None)
    assert with_like is not first  # a new like shows at once
    assert [p.liked for p in with_like].count(True) == 1
    assert cache.points(store, layout, user_id=7) is not first  # per user (their topics)
    expired = MapCache(ttl=0.0)
    once = expired.points(store, layout)
    again = expired.points(store, layout)
    assert again is not once  # rebuilt after the ttl ...
    assert again == once  # ... with the same content


def test_the_openapi_document_has_the_recommender(site: TestClient) -> None:
    paths = site.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/for-you", "/api/v1/feedback", "/api/v1/topics", "/api/v1/map"):
        assert path in paths
    assert "/api/v1/topics/{key}" in paths
    assert "topic" in [p["name"] for p in paths["/api/v1/search"]["get"]["parameters"]]
    docs = site.get("/docs").text
    assert "/api/v1/for-you" in docs
