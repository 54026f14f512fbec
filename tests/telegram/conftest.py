"""The Telegram channel end to end: the real aiogram Bot and Dispatcher, polling a fake Bot API on
127.0.0.1, over a temporary SQLite database with the real knowledge base and triage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.app import App, build_app
from bot.pacing import Pacer
from bot.settings import Settings
from bot.telegram import TelegramChannels, build_telegram
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Case, Counsellor, User
from storage.repositories import Repos

from .fake_api import STAFF_CHAT, TOKEN, Call, FakeTelegram

CHILD = 9001
ANNA = 501  # a registered counsellor
BORIS = 502  # another registered counsellor
STRANGER = 666  # a member of the staff group who is not a counsellor


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    yield api
    await api.stop()


def make_settings(fake: FakeTelegram, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'test.db'}",
        "telegram_bot_token": TOKEN,
        "telegram_api_url": fake.url,
        "telegram_staff_chat_id": STAFF_CHAT,
        "evidence_dir": tmp_path / "evidence",
        "default_locale": "ru",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class PlainHttpSession(AiohttpSession):
    """aiogram's session without its 250 ms wait on close, which is for TLS connections; the
    fake API is plain HTTP on 127.0.0.1 (the wait made up a third of this suite's time)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@dataclass
class Harness:
    """One running Telegram channel, the fake platform around it, and shortcuts for tests."""

    fake: FakeTelegram
    app: App
    bot: Bot
    dp: Dispatcher
    channels: TelegramChannels

    async def case(self, case_id: int) -> Case:
        async with self.app.db.session() as session:
            case = await Repos(session).cases.get(case_id)
            assert case is not None
            return case

    async def child_user(self, user_id: int = CHILD) -> User | None:
        async with self.app.db.session() as session:
            return await Repos(session).users.find("telegram", str(user_id))

    async def audit(self, case_id: int) -> list[str]:
        return [action for _, _, action, _ in await self.app.desk.audit_trail(case_id)]

    async def press(self, user_id: int, contains: str, label: str, lang: str = "ru") -> None:
        """Wait for a message to the child containing `contains`, press its button `label`."""
        call = await self.fake.next_call(
            "sendMessage", chat_id=user_id,
            where=lambda c: contains.casefold() in c.text.casefold() and bool(c.buttons))
        await self.fake.child_presses(user_id, call.button(label), lang=lang)

    async def start_as_child(self, user_id: int = CHILD) -> None:
        await self.fake.child_says(user_id, "привет")
        await self.press(user_id, "Кто ты", "ребёнок")

    async def open_case(self, user_id: int = CHILD) -> tuple[int, int, Call]:
        """The child asks for a person: returns (case id, topic thread id, the card call)."""
        await self.start_as_child(user_id)
        await self.press(user_id, "Чем я могу помочь", "Поговорить с человеком")
        waiting = await self.fake.text_to(user_id, "Я передал твоё обращение")
        case_id = int(waiting.text.split("№")[1].split()[0])
        topic = await self.fake.next_call("createForumTopic",
                                          where=lambda c: f"#{case_id} " in c["name"])
        thread = next(t for t, name in self.fake.topics.items() if name == topic["name"])
        card = await self.fake.next_call("sendMessage", chat_id=STAFF_CHAT,
                                         message_thread_id=thread)
        return case_id, thread, card

    async def take(self, case_id: int, thread: int, counsellor: int = ANNA) -> None:
        await self.fake.staff_presses(counsellor, f"dk|take|{case_id}", thread=thread)
        await self.fake.text_to(STAFF_CHAT, "взял", thread=thread)


async def add_counsellors(app: App) -> dict[int, Counsellor]:
    return {
        ANNA: await app.desk.add_counsellor("anna", "telegram", str(ANNA)),
        BORIS: await app.desk.add_counsellor("boris", "telegram", str(BORIS)),
    }


async def start_channel(fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase,
                        *, pacer: Pacer | None = None,
                        **overrides: Any) -> tuple[Harness, asyncio.Task[None]]:
    app = build_app(make_settings(fake, tmp_path, **overrides), db=db, kb=kb)
    # Tests press a dozen buttons in a fraction of a second: no flood limit for the fake people.
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    await add_counsellors(app)
    # Telegram's real pace (a message a second per chat) would only make the tests slow.
    bot, dp, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=pacer or Pacer(global_rate=10_000, chat_rate=10_000))
    await channels.start_up()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    return Harness(fake, app, bot, dp, channels), task


async def stop_channel(harness: Harness, task: asyncio.Task[None]) -> None:
    await harness.dp.stop_polling()
    await asyncio.wait_for(task, 5)


async def restart_channel(fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase,
                          **overrides: Any) -> tuple[Harness, asyncio.Task[None], Database]:
    """A new process on the same database: new app, bot and desk, nothing in memory (the
    counsellors are registered already). Telegram does not send again the updates the first
    process confirmed. The caller disposes of the returned database."""
    fresh = Database(db.url)
    app = build_app(make_settings(fake, tmp_path, database_url=db.url, **overrides), db=fresh,
                    kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    bot, dp, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=Pacer(global_rate=10_000, chat_rate=10_000))
    fake.updates.clear()
    await channels.start_up()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    return Harness(fake, app, bot, dp, channels), task, fresh


@pytest.fixture
async def tg(fake: FakeTelegram, tmp_path: Path, db: Database,
             kb: KnowledgeBase) -> AsyncIterator[Harness]:
    """The channel polling the fake API, with two counsellors registered (anna, boris)."""
    harness, task = await start_channel(fake, tmp_path, db, kb)
    try:
        yield harness
    finally:
        await stop_channel(harness, task)
