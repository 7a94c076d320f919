"""The whole people flow in a real browser (Debian's Chromium driven by Playwright) against
uvicorn on loopback, with a real SMTP server (aiosmtpd) as the mailbox: sign up, vote,
collect a paper with a note, subscribe, follow the confirmation link from the mailbox,
then ``paperfeed digest send`` delivers a digest that is read back and checked. Writes the
account page screenshot for the README."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from markupsafe import escape

from paperfeed.cli import main
from tests.smtp_server import Mailbox, smtp_server
from tests.web.conftest import LiveServer
from tests.web.people import HF_DAY, PASSWORD, site
from tests.web.test_browser import ARGS, CHROMIUM, SCREENSHOTS, Console

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (scripts/install-test-deps.sh)",
)


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def wait_for(box: Mailbox, to: str, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 15
    while len(box.to(to)) < count:
        assert time.monotonic() < deadline, f"no mail to {to}"
        time.sleep(0.05)
    return box.to(to)


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_sign_up_vote_collect_subscribe_confirm_and_get_the_digest(
    browser: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    data = tmp_path / "data"
    with smtp_server() as (box, smtp_port), site(data) as s, LiveServer(s.app) as live:
        monkeypatch.setenv("PAPERFEED_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("PAPERFEED_SMTP_PORT", str(smtp_port))
        monkeypatch.setenv("PAPERFEED_SMTP_SECURITY", "none")
        monkeypatch.setenv("PAPERFEED_SMTP_FROM", "paperfeed <digest@example.org>")
        monkeypatch.setenv("PAPERFEED_BASE_URL", live.url)
        context = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
        page = context.new_page()
        console = Console(page)

        # Sign up.
        page.goto(live.url + "/")
        page.get_by_role("link", name="Sign up").click()
        page.locator("#username").fill("ada")
        page.locator("#email").fill("ada@example.org")
        page.locator("#password").fill(PASSWORD)
        page.locator("#password2").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page.locator("h1")).to_have_text("Your account")
        account_link = page.locator('nav.account a[href="/account"]')
        expect(account_link).to_have_text("ada")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["pf_session"]["httpOnly"] is True
        assert cookies["pf_session"]["sameSite"] == "Lax"

        # Vote for the day's last paper: the count goes up at once.
        page.goto(f"{live.url}/papers/date/{HF_DAY}?sort=date")
        last = page.locator("ol.papers > li.paper").last
        title = last.locator("h2.title").inner_text()
        button = last.locator("form.votes button")
        before = int(re.search(r"\d+", button.inner_text())[0])  # type: ignore[index]
        expect(button).to_have_attribute("aria-pressed", "false")
        button.click()
        last = page.locator("ol.papers > li.paper").last
        expect(last.locator("form.votes button")).to_have_attribute("aria-pressed", "true")
        expect(last.locator("form.votes button")).to_contain_text(str(before + 1))

        # Collect it, with a note.
        last.locator("h2.title a").click()
        expect(page.locator("h1")).to_have_text(title)
        page.locator("details.collect summary").click()
        page.locator("#new-collection").fill("Reading group")
        page.locator("#new-note").fill("Discuss on Friday <3")
        page.get_by_role("button", name="Create and add").click()
        expect(page.locator("h1")).to_have_text("Reading group")
        expect(page.locator("ol.collection-items")).to_contain_text(title)
        expect(page.locator("p.note")).to_have_text("Discuss on Friday <3")

        # Subscribe from the account page, then confirm from the mailbox.
        page.locator('nav.account a[href="/account"]').click()
        page.locator("#categories-new").fill("cs.CV")
        page.locator("#max-new").fill("5")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("p.note")).to_contain_text("A confirmation link was mailed")
        (confirmation,) = wait_for(box, "ada@example.org", 1)
        link = re.search(r"http://\S+/subscribe/confirm\?token=\S+", text_of(confirmation))
        assert link
        assert link[0].startswith(live.url)
        page.goto(link[0])
        expect(page.locator("h1")).to_have_text("Subscription confirmed")
        page.goto(live.url + "/account")
        expect(page.locator(".card")).to_contain_text("active")
        page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

        # The preview shows what the mail will hold.
        page.get_by_role("link", name="preview").click()
        expect(page.locator("body")).to_contain_text(title)
        page.screenshot(path=str(tmp_path / "digest-preview.png"), full_page=True)
        context.close()

        # The digest, sent by the command line, arrives in the mailbox.
        result = CliRunner().invoke(
            main, ["digest", "send", "--data-dir", str(data), "--date", HF_DAY, "--json"]
        )
        assert result.exit_code == 0, result.output
        assert '"status": "sent"' in result.output
        digest = wait_for(box, "ada@example.org", 2)[1]
        assert digest["Subject"].startswith("Papers of ")
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = re.search(r"<(http[^>]+)>", digest["List-Unsubscribe"])
        assert unsubscribe
        assert urlsplit(unsubscribe[1]).path == "/unsubscribe"
        text = text_of(digest)
        assert title in text
        assert f"Why: trending: {before + 1} vote" in text
        html = digest.get_body(preferencelist=("html",))
        assert html is not None
        assert str(escape(title)) in str(html.get_content())  # type: ignore[attr-defined]
        # Sending again delivers nothing more.
        again = CliRunner().invoke(
            main, ["digest", "send", "--data-dir", str(data), "--date", HF_DAY]
        )
        assert again.exit_code == 0
        assert len(box.to("ada@example.org")) == 2

        assert console.errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in ("account.png", "digest-preview.png"):
        shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
