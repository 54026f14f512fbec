"""Nothing is acknowledged to Telegram before it is journalled, and bad input never stalls.

The real channel (`run_telegram`: aiogram's Bot and Dispatcher, the project's polling loop, or its
webhook) runs against the fake Bot API. The journal write is made to fail for real: another
connection renames the journal table away, so the inbox insert fails in SQLite (the database
"refuses" that one write) while everything else is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from bot.app import App, build_app
from bot.telegram import run_telegram
from bot.telegram.deskjournal import StaffKeeper
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos

from .conftest import CHILD, make_settings
from .fake_api import STAFF_CHAT, FakeTelegram

SECRET = "s3cret-token_for-tests"
DANGER = "я хочу умереть"
CONTACTS = "Спасибо, что рассказываешь"


class OffsetRecorder(FakeTelegram):
    """The fake Bot API, noting every offset the bot confirms with getUpdates."""

    def __init__(self) -> None:
        super().__init__()
        self.offsets: list[int] = []
        self.asked: list[tuple[float, int]] = []  # (when it came, its offset)

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "getUpdates":
            form = await request.post()
            if form.get("offset"):
                self.offsets.append(int(str(form["offset"])))
                self.asked.append((time.monotonic(), self.offsets[-1]))
        return await super()._api(request)


@pytest.fixture
async def recorder() -> Any:
    api = OffsetRecorder()
    await api.start()
    yield api
    await api.stop()


class JournalOutage:
    """The journal table taken away and brought back by another connection to the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rename(self, old: str, new: str) -> None:
        with sqlite3.connect(self.path, timeout=10) as conn:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")

    def begin(self) -> None:
        self._rename("inbox", "inbox_away")

    def end(self) -> None:
        self._rename("inbox_away", "inbox")


def sqlite_path(db: Database) -> Path:
    if not db.is_sqlite:
        pytest.skip("the journal outage is made with SQLite's ALTER TABLE on the file")
    return Path(db.url.split("///", 1)[1])


async def test_an_update_whose_journal_write_fails_is_not_confirmed_and_danger_is_answered(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = JournalOutage(sqlite_path(db))
    app = build_app(make_settings(recorder, tmp_path), db=db, kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    async with polling(app):
        await recorder.next_call("deleteWebhook")
        await recorder.child_says(CHILD, "привет")
        await recorder.text_to(CHILD, "Кто ты")
        outage.begin()
        await recorder.child_says(CHILD, DANGER)
        danger_id = recorder.updates[-1]["update_id"]
        # The child is given the emergency contacts from memory at once, while the database
        # refuses the journal write...
        told = await recorder.text_to(CHILD, CONTACTS)
        assert "112" in told.text
        # ...and the update is not confirmed while it cannot be journalled.
        await asyncio.sleep(2.0)
        assert recorder.offsets and max(recorder.offsets) <= danger_id
        assert not recorder.calls_of("createForumTopic")
        # The database is back: the update is journalled and handled (a case, a staff alert),
        # and only then confirmed.
        outage.end()
        await recorder.next_call("sendMessage", chat_id=STAFF_CHAT, wait=15.0,
                                 where=lambda c: "Критическое обращение" in c.text)
        for _ in range(100):
            if max(recorder.offsets) > danger_id:
                break
            await asyncio.sleep(0.05)
        assert max(recorder.offsets) > danger_id
        await app.drain()
        async with db.session() as session:
            [case] = await Repos(session).cases.queue()
        assert case.risk == "critical"
        # The contacts from memory were sent once however often the write was retried.
        from_memory = [c for c in recorder.sent_to(CHILD) if CONTACTS in c.text]
        assert len(from_memory) == 2  # once from memory (not per retry), then the engine
        assert DANGER not in caplog.text


async def test_a_batch_is_confirmed_only_once_journalled_together(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """One getUpdates answer with three children's messages and a button press, one of them
    danger, while the journal is away: the press is answered and the child in danger gets the
    contacts from memory, nothing is confirmed; once the journal is back, all of them are
    journalled once, every child is answered, the counsellors get the alert."""
    outage = JournalOutage(sqlite_path(db))
    app = build_app(make_settings(recorder, tmp_path), db=db, kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    others = (CHILD + 1, CHILD + 2)
    async with polling(app):
        await recorder.next_call("deleteWebhook")
        outage.begin()
        updates = [recorder.private_message(others[0], text="привет"),
                   recorder.private_message(CHILD, text=DANGER),
                   recorder.press(others[1], "st|menu|person"),
                   recorder.private_message(others[1], text="привет")]
        await recorder.push(*updates)
        first, last = updates[0]["update_id"], updates[-1]["update_id"]
        told = await recorder.text_to(CHILD, CONTACTS)
        assert "112" in told.text
        await recorder.next_call("answerCallbackQuery")  # the press's spinner is stopped
        await asyncio.sleep(1.5)
        assert all(o <= first for o in recorder.offsets), "nothing confirmed"
        outage.end()
        await recorder.next_call("sendMessage", chat_id=STAFF_CHAT, wait=15.0,
                                 where=lambda c: "Критическое обращение" in c.text)
        await recorder.text_to(others[0], "Кто ты", wait=10.0)
        await recorder.next_call("sendMessage", chat_id=others[1], wait=10.0)
        for _ in range(100):
            if max(recorder.offsets) > last:
                break
            await asyncio.sleep(0.05)
        assert max(recorder.offsets) > last, "confirmed once journalled"
        await app.drain()
        async with db.session() as session:
            left = await session.execute(text("SELECT update_id FROM inbox"))
            assert left.all() == [], "every entry handled (a handled entry is deleted)"
            rows = await session.execute(
                text("SELECT update_id FROM processed_updates ORDER BY update_id"))
            assert [r[0] for r in rows] == sorted(str(u["update_id"]) for u in updates), (
                "each journalled and handled once"
            )
            [case] = await Repos(session).cases.queue()
        assert case.risk == "critical"
        from_memory = [c for c in recorder.sent_to(CHILD) if CONTACTS in c.text]
        assert len(from_memory) == 2  # once from memory (not per retry), then the engine


class SlowAnswers(OffsetRecorder):
    """The fake Bot API, slow to answer the button presses named in `slow` (seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow: set[str] = set()
        self.delay = 3.0

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "answerCallbackQuery":
            form = await request.post()
            if str(form.get("callback_query_id")) in self.slow:
                await asyncio.sleep(self.delay)
        return await super()._api(request)


@pytest.fixture
async def slow() -> Any:
    api = SlowAnswers()
    await api.start()
    yield api
    await api.stop()


@asynccontextmanager
async def polling(app: App) -> AsyncIterator[None]:
    """The Telegram channel (`run_telegram`) running for the block, cancelled at its end."""
    task = asyncio.create_task(run_telegram(app))
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_child_writing_just_before_a_flood_is_answered_while_it_is_taken_in(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """One getUpdates answer: another child's first message, then 99 long ones from a child
    flooding (each is triaged whole, a few milliseconds apiece). The other child is answered
    while the flood is still being taken in, before the bot asks Telegram for more: what was
    taken in is journalled and its turns go on at every slice of intake, instead of waiting for
    the flood's last message to be journalled with it."""
    if not db.is_sqlite:
        pytest.skip("on PostgreSQL each of the turn's round trips waits for a slice of intake: "
                    "the other child is answered near the flood's end (`make bench-flood`)")
    app = build_app(make_settings(recorder, tmp_path), db=db, kb=kb)
    other = CHILD + 1
    everyday = "Сегодня в школе была контрольная по алгебре, потом мы пошли в кино. " * 15
    async with polling(app):
        await recorder.next_call("deleteWebhook")
        updates = [recorder.private_message(other, text="привет")] + [
            recorder.private_message(CHILD, text=f"{n} {everyday}") for n in range(99)]
        await recorder.push(*updates)
        last = updates[-1]["update_id"]
        answered = await recorder.text_to(other, "Кто ты", wait=15.0)
        for _ in range(300):
            if any(offset > last for _, offset in recorder.asked):
                break
            await asyncio.sleep(0.05)
        taken_in = min(at for at, offset in recorder.asked if offset > last)
        assert answered.at < taken_in, (
            f"answered {answered.at - taken_in:+.3f} s after the flood was taken in")


async def press_in_hand(api: SlowAnswers) -> dict[str, Any]:
    """A counsellor's Take in the staff group, slow to be answered, taken in and in hand."""
    press = api.press(999, "take:1", chat_id=STAFF_CHAT, thread=7)
    api.slow.add(str(press["callback_query"]["id"]))
    await api.push(press)
    await asyncio.sleep(0.3)
    return press


async def answered(api: FakeTelegram, press: dict[str, Any], wait: float) -> None:
    """Wait until the press's spinner is stopped: its handling is done."""
    await api.next_call("answerCallbackQuery", wait=wait,
                        where=lambda c: c.get("callback_query_id") == press[
                            "callback_query"]["id"])


async def none_kept_soon(db: Database) -> list[str]:
    """The kept staff updates once none are left, or after 5 s."""
    for _ in range(100):
        if not await kept_staff_updates(db):
            break
        await asyncio.sleep(0.05)
    return await kept_staff_updates(db)


async def kept_staff_updates(db: Database) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(text("SELECT update_id FROM desk_updates ORDER BY id"))
        return [str(r[0]) for r in rows]


async def test_a_slow_staff_action_holds_up_no_child_and_is_kept_until_handled(
    slow: SlowAnswers, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """A button pressed in the staff group whose handling takes three seconds (Telegram is
    slow to take the answer) runs in the staff lane: a child's danger message behind it gets
    the contacts and reaches the counsellors at once. The press is kept in the database and
    confirmed to Telegram at once; it is deleted once handled."""
    api = slow
    async with polling(build_app(make_settings(api, tmp_path), db=db, kb=kb)):
        await api.next_call("deleteWebhook")
        press = await press_in_hand(api)
        started = asyncio.get_running_loop().time()
        await api.child_says(CHILD, DANGER)
        told = await api.text_to(CHILD, CONTACTS, wait=2.0)
        assert "112" in told.text
        alert = await api.next_call("sendMessage", chat_id=STAFF_CHAT, wait=2.0,
                                    where=lambda c: "Критическое обращение" in c.text)
        assert DANGER in alert.text or "#" in alert.text
        assert asyncio.get_running_loop().time() - started < 2.5, "not behind the staff action"
        assert max(api.offsets) > press["update_id"], "the press is confirmed at once"
        assert await kept_staff_updates(db) == [str(press["update_id"])], "kept while in hand"
        await answered(api, press, wait=5.0)
        assert await none_kept_soon(db) == [], "deleted once handled"


async def test_danger_more_than_a_batch_behind_a_slow_staff_action_is_answered_at_once(
    slow: SlowAnswers, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """Telegram answers getUpdates with at most 100 updates from the offset. A counsellor's
    press that takes eight seconds, then 150 children's messages, then a child in danger: the
    danger message is taken in, answered with the contacts and alerted to the counsellors
    while the press is still in hand (it held the offset back before it was kept)."""
    api = slow
    api.delay = 8.0
    async with polling(build_app(make_settings(api, tmp_path), db=db, kb=kb)):
        await api.next_call("deleteWebhook")
        press = await press_in_hand(api)
        others = [api.private_message(50_000 + n, text="привет") for n in range(150)]
        await api.push(*others)
        started = asyncio.get_running_loop().time()
        await api.child_says(CHILD, DANGER)
        told = await api.text_to(CHILD, CONTACTS, wait=6.0)
        assert "112" in told.text and "8-800-2000-122" in told.text
        alert = await api.next_call("sendMessage", chat_id=STAFF_CHAT, wait=6.0,
                                    where=lambda c: "Критическое обращение" in c.text)
        assert DANGER in alert.text or "#" in alert.text
        took = asyncio.get_running_loop().time() - started
        assert took < 6.0, "not behind the press"
        assert not api.calls_of("answerCallbackQuery",
                                callback_query_id=press["callback_query"]["id"]), (
            "the press was still in hand: the danger did not wait for it")
        async with db.session() as session:
            [case] = await Repos(session).cases.queue()
        assert case.risk == "critical"
        await answered(api, press, wait=10.0)


async def handled_updates(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM processed_updates")))
                   .scalar_one())


async def test_danger_replies_go_ahead_of_greetings_waiting_for_telegrams_send_limit(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """Telegram lets a bot send about 30 messages a second in all, and the bot keeps to it.
    150 new children have been answered and their greetings wait their turn (about ten
    seconds of them) when a child writes that she wants to die: her first reply and the
    emergency numbers go out ahead of the greetings, and the counsellors are alerted. (The
    numbers took 0.1 s here, ahead of 22 children's greetings; before, the child's replies
    were paced as ordinary ones and came after every greeting, 1.9 s.)"""
    api = recorder
    loop = asyncio.get_running_loop()
    app = build_app(make_settings(api, tmp_path), db=db, kb=kb)
    others = range(50_000, 50_150)
    async with polling(app):
        await api.next_call("deleteWebhook")
        await api.push(*[api.private_message(n, text="привет") for n in others])
        for _ in range(400):  # every greeting written, most of them still to be sent
            if await handled_updates(db) >= len(others):
                break
            await asyncio.sleep(0.05)
        assert await handled_updates(db) >= len(others)
        started = loop.time()
        await api.child_says(CHILD, DANGER)
        told = await api.text_to(CHILD, CONTACTS, wait=20.0)
        took = loop.time() - started
        assert "112" in told.text and "8-800-2000-122" in told.text
        greeted = {c.chat_id for c in api.calls_of("sendMessage") if c.chat_id in others}
        assert took < 1.5 and len(greeted) < len(others), (
            f"the numbers took {took:.1f} s, after {len(greeted)} children's greetings")
        alert = await api.next_call("sendMessage", chat_id=STAFF_CHAT, wait=5.0,
                                    where=lambda c: "Критическое обращение" in c.text)
        assert loop.time() - started < 5.0 and (DANGER in alert.text or "#" in alert.text)
        async with db.session() as session:
            [case] = await Repos(session).cases.queue()
        assert case.risk == "critical"


async def test_a_staff_action_a_crash_cut_off_is_handled_at_the_next_start(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
) -> None:
    """A process died with a counsellor's press kept but not handled: it was confirmed to
    Telegram, which will not send it again. The next start handles it from the database,
    once, before anything newer from the staff group, and deletes it."""
    api = recorder
    cut_off = api.press(999, "take:1", chat_id=STAFF_CHAT, thread=7)
    cut_off["update_id"] = 900  # long confirmed: Telegram holds nothing for the bot
    assert await StaffKeeper(db).keep(900, cut_off)  # what the dead process left
    later = api.press(999, "take:2", chat_id=STAFF_CHAT, thread=8)
    async with polling(build_app(make_settings(api, tmp_path), db=db, kb=kb)):
        await answered(api, cut_off, wait=10.0)
        await api.push(later)
        await answered(api, later, wait=10.0)
        assert await none_kept_soon(db) == [], "deleted once handled"
        answers = [c.get("callback_query_id") for c in api.calls_of("answerCallbackQuery")]
        assert answers == [cut_off["callback_query"]["id"], later["callback_query"]["id"]]


async def test_a_malformed_update_is_skipped_by_id_and_polling_goes_on(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(make_settings(recorder, tmp_path), db=db, kb=kb)
    async with polling(app):
        await recorder.next_call("deleteWebhook")
        # A message with no chat and a date that is not a date: aiogram cannot read it.
        await recorder.push({"message": {"message_id": 1, "date": "secret words",
                                         "text": "secret words"}})
        bad_id = recorder.updates[-1]["update_id"]
        await recorder.child_says(CHILD, "привет")
        await recorder.text_to(CHILD, "Кто ты", wait=10.0)
        assert str(bad_id) in caplog.text
        assert "secret words" not in caplog.text


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_webhook_answers_5xx_until_journalled_and_400_to_garbage(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = JournalOutage(sqlite_path(db))
    port = free_port()
    settings = make_settings(
        fake, tmp_path, telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret=SECRET, webhook_host="127.0.0.1", webhook_port=port)
    app = build_app(settings, db=db, kb=kb)
    url = f"http://127.0.0.1:{port}/telegram/hook"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    update = fake.private_message(CHILD, text=DANGER)
    update["update_id"] = 4242
    async with polling(app):
        await fake.next_call("setWebhook")
        async with aiohttp.ClientSession() as http:
            caplog.clear()
            with caplog.at_level(logging.INFO):
                for body in (b"\xff\xfe{", b"{not json", b"[1, 2]",
                             b'{"update_id": 5, "message": {"text": "secret words"}}'):
                    async with http.post(url, data=body, headers=headers) as resp:
                        assert resp.status == 400, body
            assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
            assert "secret words" not in caplog.text
            outage.begin()
            async with http.post(url, json=update, headers=headers) as resp:
                assert resp.status >= 500
            told = await fake.text_to(CHILD, CONTACTS)
            assert "112" in told.text
            async with http.post(url, json=update, headers=headers) as resp:
                assert resp.status >= 500  # Telegram sends it again: still refused
            outage.end()
            async with http.post(url, json=update, headers=headers) as resp:
                assert resp.status == 200
        await fake.next_call("sendMessage", chat_id=STAFF_CHAT, wait=15.0,
                             where=lambda c: "Критическое обращение" in c.text)
        await app.drain()
        from_memory = [c for c in fake.sent_to(CHILD) if CONTACTS in c.text]
        assert len(from_memory) == 2  # once from memory (not per retry), then the engine
