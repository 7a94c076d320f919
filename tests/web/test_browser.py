"""The site in a real browser: Debian's Chromium driven by Playwright (never a browser
downloaded by Playwright), against uvicorn on loopback. Writes the README screenshots."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.conftest import LATEST_SAMPLE_DAY, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/install-test-deps.sh)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Every console error and failed request of a page (there must be none)."""

    def __init__(self, page: object) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))  # type: ignore[attr-defined]
        page.on("requestfailed", lambda req: self.errors.append(f"failed: {req.url}"))  # type: ignore[attr-defined]

    def _console(self, msg: object) -> None:
        if msg.type in ("error", "warning"):  # type: ignore[attr-defined]
            self.errors.append(f"console {msg.type}: {msg.text}")  # type: ignore[attr-defined]


def test_feed_search_paper_similar(browser: object, live: LiveServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    console = Console(page)

    # The feed: the latest day, with its abstracts collapsed.
    page.goto(live.url + "/")
    expect(page.locator("h1")).to_have_text("Wednesday 1 April 2026")
    entries = page.locator("ol.papers > li.paper")
    expect(entries).to_have_count(44)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / "feed.png"))

    # Expand an abstract.
    first_abstract = entries.nth(0).locator(".abstract")
    collapsed = first_abstract.bounding_box()["height"]
    button = entries.nth(0).get_by_role("button", name="Show full abstract")
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(entries.nth(0).get_by_role("button", name="Show less")).to_have_attribute(
        "aria-expanded", "true"
    )
    assert first_abstract.bounding_box()["height"] > collapsed * 1.5

    # Change the day: with the previous-day link, then with the date picker.
    page.get_by_role("link", name="← Saturday 14 March 2026").click()
    expect(page.locator("h1")).to_have_text("Saturday 14 March 2026")
    assert page.url.endswith("/papers/date/2026-03-14")
    page.locator("#date").fill("2026-03-13")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("h1")).to_have_text("Friday 13 March 2026")
    assert page.url.endswith("/papers/date/2026-03-13")
    page.locator('ul.tabs[aria-label="Period"]').get_by_role("link", name="Week").click()
    expect(page.locator("h1")).to_contain_text("Week 11 of 2026")

    # Search from the header box.
    page.goto(live.url + f"/papers/date/{LATEST_SAMPLE_DAY}")
    page.locator("#quick-q").fill("text-to-image personalization")
    page.locator("#quick-q").press("Enter")
    expect(page.locator("h1")).to_have_text("Search")
    hits = page.locator("ol.hits > li")
    expect(hits.first).to_be_visible()
    assert hits.count() == 20
    assert page.locator("ol.hits mark").count() > 10
    titles = hits.locator("h2").all_inner_texts()
    assert any("Personalization" in t for t in titles[:5])
    page.screenshot(path=str(tmp_path / "search.png"))

    # Open a paper, then follow a similar paper.
    hits.first.locator("h2 a").click()
    expect(page.locator("h1")).to_have_text(titles[0])
    expect(page.get_by_role("heading", name="Similar papers")).to_be_visible()
    expect(page.get_by_role("link", name="BibTeX")).to_be_visible()
    similar = page.locator("ol.similar a")
    expect(similar).to_have_count(8)
    target = similar.first.inner_text()
    similar.first.click()
    expect(page.locator("h1")).to_have_text(target)
    page.screenshot(path=str(tmp_path / "paper.png"))

    # Nothing relevant, and an error page, are pages too.
    page.goto(live.url + "/search?q=qwxz+vbnm+plokij&mode=keyword")
    expect(page.get_by_role("heading", name="Nothing relevant found")).to_be_visible()
    context.close()

    # On a phone: nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    mobile = phone.new_page()
    phone_console = Console(mobile)
    mobile.goto(live.url + "/")
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    mobile.screenshot(path=str(tmp_path / "feed-phone.png"))
    phone.close()

    assert console.errors == []
    assert phone_console.errors == []
    # Only a run that passed publishes its screenshots.
    for name in ("feed.png", "search.png", "paper.png", "feed-phone.png"):
        shutil.copyfile(tmp_path / name, SCREENSHOTS / name)


def test_error_pages_in_the_browser(browser: object, live: LiveServer) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    response = page.goto(live.url + "/papers/9999.99999")
    assert response.status == 404
    assert "no paper with id" in page.locator(".reason").inner_text()
    response = page.goto(live.url + "/papers/date/2026-02-30")
    assert response.status == 400
    assert re.search(r"date: '2026-02-30' is not a date", page.locator(".reason").inner_text())
    page.close()
