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
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import build_app
from bot.telegram import run_telegram
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

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "getUpdates":
            form = await request.post()
            if form.get("offset"):
                self.offsets.append(int(str(form["offset"])))
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
    task = asyncio.create_task(run_telegram(app))
    try:
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
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_malformed_update_is_skipped_by_id_and_polling_goes_on(
    recorder: OffsetRecorder, tmp_path: Path, db: Database, kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = build_app(make_settings(recorder, tmp_path), db=db, kb=kb)
    task = asyncio.create_task(run_telegram(app))
    try:
        await recorder.next_call("deleteWebhook")
        # A message with no chat and a date that is not a date: aiogram cannot read it.
        await recorder.push({"message": {"message_id": 1, "date": "secret words",
                                         "text": "secret words"}})
        bad_id = recorder.updates[-1]["update_id"]
        await recorder.child_says(CHILD, "привет")
        await recorder.text_to(CHILD, "Кто ты", wait=10.0)
        assert str(bad_id) in caplog.text
        assert "secret words" not in caplog.text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


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
    task = asyncio.create_task(run_telegram(app))
    url = f"http://127.0.0.1:{port}/telegram/hook"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    update = fake.private_message(CHILD, text=DANGER)
    update["update_id"] = 4242
    try:
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
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
