"""The console in a real browser: Debian's headless Chromium driven by Playwright for Python.

Skipped, with the reason, where /usr/bin/chromium or Playwright is missing (`playwright install`
cannot download a browser here: CI installs Debian's `chromium` package instead).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import App
from bot.web import build_console
from storage.models import Counsellor
from storage.repositories import Repos

from .conftest import PASSWORD, Child, ChildInbox

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOT = Path("/tmp/helpline-case-page.png")

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed"
)
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
async def server(app: App) -> AsyncIterator[str]:
    runner = web.AppRunner(build_console(app, poll_seconds=0.3), shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def _sign_in(browser: Any, base: str, name: str, locale: str = "ru") -> Any:
    context = await browser.new_context(
        base_url=base, viewport={"width": 1360, "height": 900}, locale=locale
    )
    page = await context.new_page()
    await page.goto("/signin")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{base}/")
    return page


async def test_a_whole_case_in_the_browser(
    app: App, server: str, browser: Any, anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    page = await _sign_in(browser, server, "anna")
    await page.wait_for_selector("#live-state.live:not(.offline)")
    assert "Никто не ждёт." in await page.inner_text("#waiting")

    # A child in danger writes: the case appears by itself, marked critical, with an alert.
    await child.send("привет")
    await child.press("ребёнок")
    await child.send("мне угрожают и я боюсь, хочу умереть")
    row = page.locator('#waiting tr[data-case="1"]')
    await row.wait_for(timeout=10_000)
    assert "risk-critical" in (await row.get_attribute("class") or "")
    assert await page.evaluate("window.helplineAlerts") >= 1
    assert await page.inner_text("#waiting-count") == "1"
    await page.screenshot(path="/tmp/helpline-queue-page.png")

    # Take it: the child hears someone is there; the case page opens.
    await row.locator("button.take").click()
    await page.wait_for_url(f"{server}/cases/1?done=taken")
    assert any("консультант" in t.lower() for t in inbox.texts)

    # Write to the child from the chat panel; the line shows up in the transcript.
    await page.fill("#reply-text", "Здравствуй. Я консультант, я рядом. Ты сейчас в безопасности?")
    await page.click("#send")
    mine = page.locator("#transcript li.from-counsellor", has_text="Ты сейчас в безопасности?")
    await mine.wait_for(timeout=10_000)
    assert inbox.texts[-1] == "Здравствуй. Я консультант, я рядом. Ты сейчас в безопасности?"
    assert await page.input_value("#reply-text") == ""

    # The child answers: it appears live.
    await child.send("да, я дома. мне пишут угрозы в личку")
    await page.locator("#transcript li.from-child", has_text="я дома").wait_for(timeout=10_000)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Close with an outcome.
    await page.select_option("#outcome", "advice-given")
    await page.click("#close")
    await page.wait_for_url(f"{server}/?done=closed")
    assert "Обращение закрыто." in await page.inner_text("main")
    async with app.db.session() as s:
        case = await Repos(s).cases.get(1)
        assert case is not None and (case.status, case.outcome) == ("closed", "advice-given")
    await page.context.close()


async def test_refusals_in_the_browser(
    app: App,
    server: str,
    browser: Any,
    anna: Counsellor,
    boris: Counsellor,
    child: Child,
) -> None:
    await child.send("привет")
    await child.press("ребёнок")
    await child.press("человеком")

    # Signed out: the page sends you to sign in; the API answers 401.
    stranger = await browser.new_context(base_url=server)
    page = await stranger.new_page()
    await page.goto("/cases/1")
    assert page.url.startswith(f"{server}/signin")
    assert (await stranger.request.get("/api/queue")).status == 401
    assert (await stranger.request.get("/cases/1/evidence/1")).status == 401
    await stranger.close()

    # A forged CSRF token, by a script and by a tampered form, changes nothing.
    page = await _sign_in(browser, server, "anna", locale="en")
    status = await page.evaluate(
        """async () => (await fetch('/cases/1/take', {method: 'POST',
             headers: {'X-CSRF-Token': 'forged', 'Accept': 'application/json'}})).status"""
    )
    assert status == 403
    await page.eval_on_selector_all(
        "input[name=csrf]", "inputs => inputs.forEach(i => { i.value = 'forged'; })"
    )
    await page.locator('#waiting tr[data-case="1"] button.take').click()
    await page.wait_for_load_state()
    assert "stale" in (await page.content()).lower()
    assert [c.status for c in await app.desk.queue()] == ["waiting"]

    # Another counsellor's case is refused.
    assert (await app.desk.take(boris, 1)).ok
    await page.goto("/cases/1")
    assert await page.inner_text("#page-error") == "This case is not yours."
    await page.goto("/?lang=en")
    assert "Nobody is waiting." in await page.inner_text("#waiting")
    await page.context.close()
