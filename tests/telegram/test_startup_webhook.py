"""Start-up (the staff group check, `run_telegram`) and webhook mode with its secret token."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import build_app
from bot.telegram import build_telegram, run_telegram
from bot.telegram.webhook import webhook_app
from knowledge_base import KnowledgeBase
from storage.db import Database

from .conftest import CHILD, make_settings, start_channel, stop_channel
from .fake_api import FakeTelegram

SECRET = "s3cret-token_for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_staff_chat_that_is_not_a_forum_is_reported_and_children_are_served(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.staff_is_forum = False
    fake.bot_can_manage_topics = False
    with caplog.at_level(logging.ERROR, logger="bot.telegram.setup"):
        tg, task = await start_channel(fake, tmp_path, db, kb)
    try:
        problems = await tg.channels.start_up()
        assert len(problems) == 2
        assert "is not a forum" in problems[0] and "\"Topics\"" in problems[0]
        assert "\"Manage topics\"" in problems[1]
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("TELEGRAM_STAFF_CHAT_ID=" in m and "Topics" in m for m in logged)
        # The children's side runs regardless.
        await fake.child_says(CHILD, "привет")
        await fake.text_to(CHILD, "Кто ты")
    finally:
        await stop_channel(tg, task)


async def test_a_bot_that_is_not_an_administrator_is_told_what_to_fix(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    fake.bot_status = "member"
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb)
    bot, _, channels = build_telegram(app)
    try:
        problems = await channels.start_up()
    finally:
        await bot.session.close()
    assert problems == [
        f"TELEGRAM_STAFF_CHAT_ID={app.settings.telegram_staff_chat_id}: the bot is not an "
        "administrator of the staff group. Promote it with the rights \"Manage topics\" and "
        "\"Pin messages\" (admins also see all messages, which the desk needs)."
    ]


def update_json(fake: FakeTelegram, text: str) -> dict[str, Any]:
    update = fake.private_message(CHILD, text=text)
    update["update_id"] = 777
    return update


async def test_the_webhook_refuses_requests_without_the_secret(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb)
    bot, dp, _ = build_telegram(app)
    runner = web.AppRunner(webhook_app(bot, dp, secret=SECRET, path="/tg/hook"))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/tg/hook"
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update_json(fake, "привет"),
                                     headers=headers) as resp:
                    assert resp.status == 401
            assert await app.desk.queue() == []
            assert not fake.sent_to(CHILD)
            async with db.session() as session:
                from storage.repositories import Repos

                assert await Repos(session).users.find("telegram", str(CHILD)) is None
            # With the secret, the update is journalled before Telegram gets its answer, then
            # handled.
            async with http.post(url, json=update_json(fake, "привет"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200
            await app.drain()
            assert any("Кто ты" in c.text for c in fake.sent_to(CHILD))
            # Telegram sends it again (a lost answer): the engine ignores the repeat.
            before = len(fake.sent_to(CHILD))
            async with http.post(url, json=update_json(fake, "привет"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200
            await app.drain()
            assert len(fake.sent_to(CHILD)) == before
    finally:
        await runner.cleanup()
        await bot.session.close()


async def test_run_telegram_polls_by_default(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb)
    task = asyncio.create_task(run_telegram(app))
    try:
        await fake.next_call("deleteWebhook")
        await fake.child_says(CHILD, "привет")
        await fake.text_to(CHILD, "Кто ты")
        assert {c.get("language_code") for c in fake.calls_of("setMyCommands")} >= {"ru", "en"}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_run_telegram_serves_a_webhook_when_its_url_is_set(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    port = free_port()
    settings = make_settings(
        fake, tmp_path, telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret=SECRET, webhook_host="127.0.0.1", webhook_port=port)
    app = build_app(settings, db=db, kb=kb)
    task = asyncio.create_task(run_telegram(app))
    try:
        hook = await fake.next_call("setWebhook")
        assert hook["url"] == "https://bot.example.org/telegram/hook"
        assert hook["secret_token"] == SECRET
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/telegram/hook",
                                 json=update_json(fake, "привет")) as resp:
                assert resp.status == 401
            async with http.post(f"http://127.0.0.1:{port}/telegram/hook",
                                 json=update_json(fake, "привет"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200
        await fake.text_to(CHILD, "Кто ты")
        assert fake.polls == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
