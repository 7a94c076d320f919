"""The recommender in a real browser (Debian's Chromium driven by Playwright) against
uvicorn on loopback, with the real all-MiniLM-L6-v2 and the real background trainer: like
five papers from search, get "for you" picks that say why, dismiss one, then hover and
click a dot of the map. Writes the for-you and map page screenshots for the README."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paperfeed.index import semantic
from paperfeed.ingest import ingest_file
from paperfeed.recommend.projection import build_map
from paperfeed.recommend.topics import label_new_papers
from paperfeed.recommend.trainer import Trainer
from paperfeed.recommend.vectors import open_active_vectors
from paperfeed.sample import sample_path
from paperfeed.settings import Settings
from paperfeed.store import open_store
from paperfeed.web import create_app
from tests.web.conftest import LiveServer
from tests.web.test_browser import ARGS, CHROMIUM, SCREENSHOTS, Console

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (scripts/install-test-deps.sh)",
    ),
]


def test_like_five_then_for_you_then_the_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("umap")
    from playwright.sync_api import expect

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "2")
    settings = Settings.resolve(tmp_path / "data")
    with open_store(settings) as store:
        ingest_file(store, sample_path())
        encoder, _, _ = semantic.build(settings, store)
        vectors = open_active_vectors(settings, store)
        assert vectors is not None
        assert label_new_papers(store, vectors, encoder) is not None
        build_map(store, vectors)  # UMAP, as `paperfeed map` and the demo compute it
        engine = semantic.open_engine(settings, store)
        trainer = Trainer(settings, store, poll_seconds=0.1)
        app = create_app(settings, store, engine, services=[trainer])
        with LiveServer(app) as live, sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            console = Console(page)

            # Like five papers found by search (each form posts and comes back here).
            page.goto(live.url + "/search?q=text-to-image+personalization")
            hits = page.locator("ol.hits > li")
            liked = []
            for i in range(5):
                hit = hits.nth(i)
                liked.append(hit.locator("h2").inner_text())
                hit.get_by_role("button", name="♡ Like").click()
                expect(hits.nth(i).get_by_role("button", name="♥ Liked")).to_be_visible()
            assert len(set(liked)) == 5

            # For you: the picks, each saying which liked papers it is close to.
            page.get_by_role("link", name="For you").first.click()
            picks = page.locator("ol.picks > li")
            expect(picks.first).to_be_visible(timeout=20_000)  # reloads while training
            assert picks.count() >= 5
            reasons = page.locator("ol.picks p.reason").all_inner_texts()
            assert all(r.startswith("Because you liked") for r in reasons)
            assert all(any(t in r for t in liked) for r in reasons)
            assert not set(liked) & set(picks.locator("h2").all_inner_texts())
            expect(picks.first.locator(".chips a").first).to_be_visible()
            page.screenshot(path=str(tmp_path / "for-you.png"))

            # Not interested: the pick goes away.
            first = picks.first.locator("h2").inner_text()
            picks.first.get_by_role("button", name="Not interested").click()
            expect(page.locator("ol.picks > li").first).to_be_visible()
            assert first not in page.locator("ol.picks h2").all_inner_texts()

            # The map: hover a liked paper's dot for its title, click it to open the paper.
            page.get_by_role("link", name="Map").first.click()
            canvas = page.locator("#map")
            expect(canvas).to_have_attribute("data-ready", "true")
            data = page.evaluate("fetch('/api/v1/map').then(r => r.json())")
            i = data["liked"].index(True)
            box = canvas.bounding_box()
            assert box is not None
            pad = 16
            x = box["x"] + pad + (data["x"][i] + 1) / 2 * (box["width"] - 2 * pad)
            y = box["y"] + pad + (1 - data["y"][i]) / 2 * (box["height"] - 2 * pad)
            page.mouse.move(x, y)
            tip = page.locator("#map-tip")
            expect(tip).to_be_visible()
            assert tip.inner_text().startswith(data["title"][i])
            assert "(liked)" in tip.inner_text()
            expect(page.locator("#map-legend li").first).to_be_visible()
            page.screenshot(path=str(tmp_path / "map-page.png"))
            page.mouse.click(x, y)
            expect(page.locator("h1")).to_have_text(data["title"][i])
            browser.close()
            assert console.errors == []
    # Only a run that passed publishes its screenshots.
    for name in ("for-you.png", "map-page.png"):
        shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
