"""The console in a real browser: Debian's headless Chromium driven by Playwright for Python.

Skipped, with the reason, where /usr/bin/chromium or Playwright is missing (`playwright install`
cannot download a browser here: CI installs Debian's `chromium` package instead).

Accessibility: axe-core (vendored in `vendor/axe.min.js`, MPL-2.0) runs on every page; a serious
or critical violation fails the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import App
from bot.web import build_console
from dialogs.taxonomy import Risk
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
PHONE_SCREENSHOT = Path("/tmp/helpline-case-page-390.png")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
LIVE = 10_000  # ms: how long a live update may take to show

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed"
)
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
async def serve(app: App) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start the console (with any `build_console` options); its base URL."""
    runners: list[web.AppRunner] = []

    async def start(**options: Any) -> str:
        runner = web.AppRunner(build_console(app, poll_seconds=0.3, **options),
                               shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(serve: Callable[..., Awaitable[str]]) -> str:
    return await serve()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def _sign_in(
    browser: Any,
    base: str,
    name: str,
    locale: str = "ru",
    *,
    width: int = 1360,
    height: int = 900,
    axe: bool = False,
    init_script: str | None = None,
) -> Any:
    # axe is injected as an inline script, which the console's CSP forbids (rightly): only the
    # audit's own context bypasses it.
    context = await browser.new_context(
        base_url=base, viewport={"width": width, "height": height}, locale=locale,
        bypass_csp=axe,
    )
    if init_script:
        await context.add_init_script(script=init_script)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.helpline_errors = errors
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

    # Close with an outcome: the page asks first; "cancel" changes nothing.
    asked: list[str] = []

    async def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    await page.select_option("#outcome", "advice-given")
    page.once("dialog", lambda d: answer(d, False))
    await page.click("#close")
    await page.wait_for_timeout(300)
    assert asked == ["Закрыть обращение №1? Ребёнку больше нельзя будет написать из него."]
    assert page.url.startswith(f"{server}/cases/1")
    page.once("dialog", lambda d: answer(d, True))
    await page.click("#close")
    await page.wait_for_url(f"{server}/?done=closed")
    assert len(asked) == 2
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


# ---------------------------------------------------------------------- the inbox (issue 17)
async def _holding(app: App, who: Counsellor, *children: Child) -> list[int]:
    """Each child asks for a person and `who` takes the case; the case ids, in order."""
    ids = []
    for kid in children:
        await kid.asks_for_a_person()
        [case] = [c for c in await app.desk.queue() if c.id not in ids]
        taken = await app.desk.take(who, case.id)
        assert taken.ok
        await app.delivery.deliver(taken.outbound)  # the child hears someone is there
        ids.append(case.id)
    return ids


async def _press_received(kid: Child, inbox: ChildInbox, label: str) -> None:
    """Press a button the child received from the desk (not in reply to their own message)."""
    for message in reversed(inbox.received):
        for row in message.buttons:
            for button in row:
                if label.casefold() in button.label.casefold():
                    await kid.send(payload=button.payload)
                    return
    raise AssertionError(f"no button {label!r}")


async def _until(page: Any, expression: str, within_ms: int = LIVE) -> None:
    """Wait until a script expression is true (`page.wait_for_function` evaluates strings,
    which the console's CSP rightly forbids)."""
    for _ in range(within_ms // 100):
        if await page.evaluate(expression):
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"never true: {expression}")


async def _no_script_errors(page: Any) -> None:
    assert page.helpline_errors == [], page.helpline_errors


async def test_unread_counts_and_previews_beside_the_open_chat(
    app: App, server: str, browser: Any, anna: Counsellor, inbox: ChildInbox
) -> None:
    first, second = Child(app, user="kid-1"), Child(app, user="kid-2")
    one, two = await _holding(app, anna, first, second)
    page = await _sign_in(browser, server, "anna")
    item = page.locator(f'#inbox li[data-case="{one}"]')
    # What the child wrote before anyone took the case is unread until the case is opened.
    assert await item.locator(".unread").count() == 1
    await page.goto(f"/cases/{one}")
    await page.goto(f"/cases/{two}")
    assert await item.locator(".unread").count() == 0
    await _until(page, "window.helplineQueueEvents >= 1")
    assert "Вы ведёте 2 из 3" in await page.inner_text("#inbox-load")

    # The other child writes twice: the badge counts, the preview shows the newest line.
    await first.send("мне страшно, он опять пишет")
    await item.locator(".unread").wait_for(timeout=LIVE)
    await first.send("ты тут?")
    await _until(page, f"document.querySelector('#unread-{one} [aria-hidden]')?.textContent"
                       " === '2'")
    assert await page.inner_text(f"#preview-{one}") == "Ребёнок: ты тут?"
    assert "непрочитанных: 2" in await item.inner_text()
    assert "(2) новых" in await page.title()
    # The announcer clears itself and speaks 50 ms later (a fresh text node is read out even
    # when the words repeat): wait for the words rather than read it in that gap.
    await _until(page, "document.getElementById('announcer').textContent"
                       ".includes('Новое сообщение ребёнка в обращении №')")
    # The open chat's own lines are read as they arrive: no badge on it.
    await second.send("а я тоже тут")
    await page.locator("#transcript li.from-child", has_text="а я тоже тут").wait_for(
        timeout=LIVE)
    await page.wait_for_timeout(1500)
    assert await page.locator(f'#inbox li[data-case="{two}"] .unread').count() == 0

    # Opening the case reads it: the badge goes, here and in a second tab.
    await item.locator("a").click()
    await page.wait_for_url(f"{server}/cases/{one}")
    assert await page.locator(f"#unread-{one}").count() == 0
    other = await page.context.new_page()
    await other.goto("/")
    assert await other.locator(f'#inbox li[data-case="{one}"] .unread').count() == 0
    assert "ты тут?" in await other.inner_text(f"#preview-{one}")
    await _no_script_errors(page)
    await page.context.close()


async def test_a_draft_is_kept_after_a_note_and_a_reload(
    app: App, server: str, browser: Any, anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    [case_id] = await _holding(app, anna, child)
    page = await _sign_in(browser, server, "anna")
    await page.goto(f"/cases/{case_id}")
    await page.evaluate("window.sameDocument = true")
    draft = "Я понимаю, как тебе тяжело. Давай подумаем вместе, кому"
    await page.fill("#reply-text", draft)

    await page.fill("#note-text", "Похоже на травлю в классе, уточнить школу")
    await page.click("#add-note")
    note = page.locator("#transcript li.from-note", has_text="уточнить школу")
    await note.wait_for(timeout=LIVE)
    assert await note.locator(".who").inner_text() == "Заметка · anna"
    assert await page.inner_text("#case-flash") == "Заметка сохранена."
    assert await page.evaluate("window.sameDocument === true"), "no page load for a note"
    assert await page.input_value("#reply-text") == draft
    assert await page.input_value("#note-text") == ""

    # A reload (or coming back from another case) brings the draft back.
    await page.reload()
    assert await page.input_value("#reply-text") == draft
    await page.click("#send")
    await page.locator("#transcript li.from-counsellor", has_text="кому").wait_for(
        timeout=LIVE)
    assert inbox.texts[-1] == draft
    await page.reload()
    assert await page.input_value("#reply-text") == "", "a sent draft is gone"
    await _no_script_errors(page)
    await page.context.close()


async def test_the_child_leaving_and_erasing_show_live(
    app: App, server: str, browser: Any, anna: Counsellor, inbox: ChildInbox
) -> None:
    leaving, erasing = Child(app, user="kid-1"), Child(app, user="kid-2")
    left_id, erased_id = await _holding(app, anna, leaving, erasing)
    page = await _sign_in(browser, server, "anna")
    await page.goto(f"/cases/{left_id}")
    await page.fill("#reply-text", "Ты здесь?")

    await _press_received(leaving, inbox, "Завершить разговор")
    await leaving.press("Да, завершить")
    changed = page.locator("#case-changed")
    await changed.get_by_text("Ребёнок завершил разговор").wait_for(timeout=LIVE)
    assert await page.inner_text("#case-status") == "ребёнок ушёл"
    assert "Ребёнок завершил разговор" in await page.inner_text("#transcript li.from-system")
    assert await page.is_disabled("#send"), "nobody to write to"
    assert await page.input_value("#reply-text") == "Ты здесь?", "the draft stays"
    assert "ребёнок ушёл" in await page.inner_text(f'#inbox li[data-case="{left_id}"]')

    await page.goto(f"/cases/{erased_id}")
    await erasing.send("мне плохо")
    await page.locator("#transcript li.from-child", has_text="мне плохо").wait_for(
        timeout=LIVE)
    await erasing.send("/forget")
    await erasing.press("Да, стереть")
    await changed.get_by_text("удалил свои данные").wait_for(timeout=LIVE)
    assert await page.locator("#transcript li.from-child").count() == 0, "the words are gone"
    assert await page.is_disabled("#add-note")
    await _no_script_errors(page)
    await page.context.close()


async def test_a_critical_case_is_taken_over_capacity_in_the_browser(
    app: App, server: str, browser: Any, anna: Counsellor, inbox: ChildInbox
) -> None:
    capacity = app.desk.config.capacity
    await _holding(app, anna, *(Child(app, user=f"kid-{n}") for n in range(capacity)))
    await Child(app, user="kid-waiting").asks_for_a_person()
    page = await _sign_in(browser, server, "anna")
    assert f"Вы ведёте {capacity} из {capacity}" in await page.inner_text("#inbox-load")
    ordinary = page.locator("#waiting tr.risk-medium button.take")
    assert await ordinary.is_disabled(), "at the limit, an ordinary case cannot be taken"
    assert "взять можно только критическое" in await page.inner_text("#capacity-note")

    await Child(app, user="kid-danger").in_danger()
    critical = page.locator("#waiting tr.risk-critical button.take")
    await critical.wait_for(timeout=LIVE)
    assert await critical.is_enabled(), "capacity never stops a critical take"
    await critical.click()
    await page.wait_for_url("**done=taken_over")
    assert "сверх лимита; супервизоры предупреждены" in await page.inner_text("main")
    load = await page.inner_text("#inbox-load")
    assert f"Вы ведёте {capacity + 1} из {capacity}" in load and "сверх лимита" in load
    await _no_script_errors(page)
    await page.context.close()


async def test_lowering_a_critical_risk_is_refused_to_a_counsellor(
    app: App, server: str, browser: Any, anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    await child.in_danger()
    [case] = await app.desk.queue()
    assert (await app.desk.take(anna, case.id)).ok
    page = await _sign_in(browser, server, "anna")
    await page.goto(f"/cases/{case.id}")
    await page.evaluate("window.sameDocument = true")
    await page.fill("#reply-text", "черновик")
    await page.select_option("#risk-level", "low")
    await page.fill("#risk-note", "ребёнок говорит, что всё уже хорошо и он в безопасности")
    await page.click("#change-risk")
    flash = page.locator("#case-flash")
    await flash.get_by_text("Это может сделать только супервизор.").wait_for(timeout=LIVE)
    assert await flash.get_attribute("role") == "alert"
    assert await page.text_content("#case-risk") == Risk.CRITICAL.label("ru")
    assert await page.evaluate("window.sameDocument === true")
    assert await page.input_value("#reply-text") == "черновик"
    async with app.db.session() as s:
        stored = await Repos(s).cases.get(case.id)
        assert stored is not None and stored.risk == "critical"
    await _no_script_errors(page)
    await page.context.close()


async def test_the_wallboard_rings_when_a_critical_case_waits_past_the_target(
    app: App,
    serve: Callable[..., Awaitable[str]],
    browser: Any,
    anna: Counsellor,
    sofia: Counsellor,
    inbox: ChildInbox,
) -> None:
    server = await serve(critical_target=timedelta(seconds=2))
    board = await _sign_in(browser, server, "sofia")
    holder = await _sign_in(browser, server, "anna")
    await board.goto("/supervisor")
    assert await board.is_hidden("#wall-alarm")
    assert "anna" in await board.inner_text("#wall-holders"), "signed in, holding nothing"

    kid = Child(app, user="kid-danger")
    await kid.in_danger()
    await board.locator("#wall-alarm").wait_for(state="visible", timeout=LIVE)
    assert "Критических обращений без ответа дольше 1 мин: 1" in await board.inner_text(
        "#wall-alarm")
    assert (await board.title()).startswith("⚠ Без ответа (1)")
    assert await board.inner_text("#wall-waiting-critical") == "1"
    assert await board.evaluate("document.body.classList.contains('alarm')")
    assert "дольше цели" in await board.inner_text("#wall-clocks")

    # Taken and answered: the alarm ends by itself; the holder's load shows.
    [case] = await app.desk.queue()
    await holder.goto("/")
    await holder.locator(f'#waiting tr[data-case="{case.id}"] button.take').click()
    await holder.wait_for_url(f"**/cases/{case.id}?done=taken")
    await holder.fill("#reply-text", "Я здесь. Ты сейчас в безопасности?")
    await holder.click("#send")
    await board.locator("#wall-alarm").wait_for(state="hidden", timeout=LIVE)
    assert "1 из 3" in await board.inner_text("#wall-holders")
    assert "Сегодня ответили на критических: 1" in await board.inner_text("#wall")
    assert not (await board.title()).startswith("⚠")
    await _no_script_errors(board)
    await board.context.close()
    await holder.context.close()


async def test_the_alert_shows_when_the_browser_blocks_sound_and_rings_once_per_case(
    app: App, server: str, browser: Any, anna: Counsellor, inbox: ChildInbox
) -> None:
    refuse = """HTMLMediaElement.prototype.play = function () {
        return Promise.reject(new DOMException("blocked", "NotAllowedError")); };"""
    page = await _sign_in(browser, server, "anna", init_script=refuse)
    await page.wait_for_selector("#live-state.live:not(.offline)")
    await Child(app, user="kid-danger").in_danger()
    banner = page.locator("#alarm")
    await banner.wait_for(state="visible", timeout=LIVE)
    assert "Критическое обращение ждёт: 1" in await banner.inner_text()
    assert await page.is_visible("#alarm-sound"), "the page says the sound did not play"
    assert "заблокирован" in await page.inner_text("#sound-toggle")
    assert (await page.title()).startswith("⚠ Критическое (1)")
    assert await page.evaluate("window.helplineRings") == 1

    # Back on the page later: no second ring for the same case, but still shown until seen.
    await page.reload()
    await banner.wait_for(state="visible", timeout=LIVE)
    assert await page.evaluate("window.helplineRings") == 0
    await page.click("#alarm-seen")
    assert await banner.is_hidden()
    assert not (await page.title()).startswith("⚠")
    await page.reload()
    await page.wait_for_selector("#live-state.live:not(.offline)")
    await page.wait_for_timeout(800)
    assert await banner.is_hidden(), "a case marked seen stays quiet"
    await _no_script_errors(page)
    await page.context.close()


async def test_a_live_refresh_keeps_the_focus_and_announces_new_cases(
    app: App, server: str, browser: Any, anna: Counsellor, inbox: ChildInbox
) -> None:
    await Child(app, user="kid-1").asks_for_a_person()
    page = await _sign_in(browser, server, "anna")
    take = page.locator('#waiting tr[data-case="1"] button.take')
    await take.focus()
    await page.evaluate("document.activeElement.helplineMark = 'kept'")
    await Child(app, user="kid-2").in_danger()
    await page.locator('#waiting tr[data-case="2"]').wait_for(timeout=LIVE)
    focused = await page.evaluate(
        "[document.activeElement.helplineMark, document.activeElement.closest('tr').dataset.case]"
    )
    assert focused == ["kept", "1"], "the focused button survived the refresh"
    # Announced a moment after the refresh, with anything else the same refresh says.
    heard = f"Новое обращение №2, риск: {Risk.CRITICAL.label('ru')}"
    await _until(page, f"document.getElementById('announcer').textContent.includes({heard!r})")
    assert await page.get_attribute("#announcer", "aria-live") == "polite"
    await page.context.close()


async def _no_horizontal_scroll(page: Any) -> None:
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    # What sticks out (a table scrolling inside its own box is fine).
    wide = await page.evaluate(
        """() => Array.from(document.querySelectorAll("body *"))
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                         && !e.parentElement.closest(".table-wrap"))
            .slice(0, 8).map(e => e.tagName + "." + e.className + "#" + e.id)""")
    assert widths[0] <= widths[1], f"scrolls sideways: {widths}, {wide}"


async def test_a_phone_sized_screen_needs_no_sideways_scrolling(
    app: App, server: str, browser: Any, anna: Counsellor, sofia: Counsellor,
    inbox: ChildInbox,
) -> None:
    first, second = Child(app, user="kid-1"), Child(app, user="kid-2")
    case_id, _ = await _holding(app, anna, first, second)
    await first.send("очень длинное сообщение без пробелов " + "ааааааааааааааааааааа" * 6)
    await Child(app, user="kid-3").in_danger()
    page = await _sign_in(browser, server, "anna", width=390, height=844)
    await _no_horizontal_scroll(page)
    await page.goto(f"/cases/{case_id}")
    await page.fill("#reply-text", "Я рядом")
    await _no_horizontal_scroll(page)
    assert await page.is_visible("#send") and await page.is_visible("#transcript")
    await page.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
    board = await _sign_in(browser, server, "sofia", width=390, height=844)
    await board.goto("/supervisor")
    await _no_horizontal_scroll(board)
    await page.context.close()
    await board.context.close()


async def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => {
            const found = await axe.run(document, {resultTypes: ["violations"]});
            return found.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def test_no_serious_accessibility_violation_on_any_page(
    app: App, server: str, browser: Any, anna: Counsellor, sofia: Counsellor,
    inbox: ChildInbox,
) -> None:
    first = Child(app, user="kid-1")
    [case_id] = await _holding(app, anna, first)
    assert (await app.desk.reply(anna, case_id, "Привет, я консультант")).ok
    await app.desk.note(anna, case_id, "заметка")
    await first.send("мне пишут гадости")
    await Child(app, user="kid-2").in_danger()
    await Child(app, user="kid-3").asks_for_a_person()
    found: dict[str, list[dict[str, Any]]] = {}

    stranger = await browser.new_context(base_url=server, bypass_csp=True)
    signin = await stranger.new_page()
    await signin.goto("/signin")
    found["signin"] = await _axe(signin)
    await stranger.close()

    page = await _sign_in(browser, server, "anna", axe=True)
    await page.wait_for_selector("#live-state.live:not(.offline)")
    found["queue"] = await _axe(page)
    await page.goto(f"/cases/{case_id}")
    found["case"] = await _axe(page)
    await page.goto("/cases/2")
    found["waiting case"] = await _axe(page)
    await page.goto("/cases/999")
    found["error"] = await _axe(page)
    await page.goto("/?lang=en")
    found["queue (en)"] = await _axe(page)
    await page.context.close()

    boss = await _sign_in(browser, server, "sofia", axe=True)
    await boss.goto("/supervisor")
    await _until(boss, "window.helplineWall >= 1")
    found["wallboard"] = await _axe(boss)
    await boss.goto(f"/cases/{case_id}")
    found["case (supervisor)"] = await _axe(boss)
    await boss.context.close()
    phone = await _sign_in(browser, server, "anna", axe=True, width=390, height=844)
    await phone.goto(f"/cases/{case_id}")
    found["case (390 px)"] = await _axe(phone)
    await phone.context.close()

    failing = {page: v for page, v in found.items() if v}
    assert failing == {}, json.dumps(failing, ensure_ascii=False, indent=1)


async def test_a_supervisors_words_are_shown_as_a_supervisors(
    app: App, server: str, browser: Any, anna: Counsellor, sofia: Counsellor,
    child: Child, inbox: ChildInbox,
) -> None:
    [case_id] = await _holding(app, anna, child)
    assert (await app.desk.reply(sofia, case_id, "Я супервизор, подключилась")).ok
    assert (await app.desk.reply(anna, case_id, "А я консультант")).ok
    page = await _sign_in(browser, server, "anna", locale="en")
    await page.goto(f"/cases/{case_id}?lang=en")
    who = await page.locator("#transcript li.from-counsellor .who").all_inner_texts()
    assert who == ["sofia (supervisor)", "anna"]
    bots = await page.locator("#transcript li.from-bot").count()
    assert bots >= 1, "what the bot told the child is in the timeline"
    await page.context.close()


async def test_blocking_asks_first(
    app: App, server: str, browser: Any, anna: Counsellor, sofia: Counsellor,
    child: Child, inbox: ChildInbox,
) -> None:
    [case_id] = await _holding(app, anna, child)
    page = await _sign_in(browser, server, "sofia")
    await page.goto(f"/cases/{case_id}")
    await page.fill("#block-form input[name=reason]", "ложные вызовы, оскорбления")
    asked: list[str] = []

    async def refuse(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", refuse)
    await page.click("#block-form button[type=submit]")
    await page.wait_for_timeout(300)
    assert asked == [f"Заблокировать пользователя обращения №{case_id}? Обращение закроется."]
    async with app.db.session() as s:
        case = await Repos(s).cases.get(case_id)
        assert case is not None and case.status == "active", "nothing was blocked"
    await page.context.close()
