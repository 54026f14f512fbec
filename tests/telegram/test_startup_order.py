"""`helpline run` recovers only once every channel and desk is registered.

A crash left two things behind: a danger message that was handled but none of whose messages
(the child's contacts, the desk's alert) were sent, and a danger message that was journalled but
not handled. The main job (`bot.cli._run`, in this process, against the fake Bot API) must send
both children their contacts and alert the staff group once per case: desk notices recovered
before the Telegram desk is registered would be "delivered" to nobody.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path

import pytest

from bot.app import build_app
from bot.cli import _run
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos

from .conftest import make_settings
from .fake_api import STAFF_CHAT, FakeTelegram

HANDLED_CHILD = 9101  # handled before the crash, nothing sent
JOURNALLED_CHILD = 9102  # journalled before the crash, not handled
DANGER = "я хочу умереть"
CONTACTS = "Спасибо, что рассказываешь"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def danger_from(child: int, update_id: int) -> Inbound:
    return Inbound(channel=Channel.TELEGRAM, user_id=str(child), chat_id=str(child),
                   text=DANGER, locale_hint="ru", update_id=str(update_id))


def announcements(fake: FakeTelegram) -> list[str]:
    return [c.text for c in fake.calls_of("sendMessage", chat_id=STAFF_CHAT)
            if c.status == 200 and c.thread is None and "Критическое обращение" in c.text]


async def test_recovery_after_a_crash_reaches_the_staff_group_once_and_the_children(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    if not db.is_sqlite:
        pytest.skip("the main job here runs on the test's SQLite file")
    settings = make_settings(fake, tmp_path, webhook_host="127.0.0.1", webhook_port=free_port())
    # The process that crashed: no channel was live, so everything stayed in the outbox.
    crashed = build_app(settings, db=db, kb=kb)
    await crashed.handle(danger_from(HANDLED_CHILD, 1))
    assert await crashed.receive(danger_from(JOURNALLED_CHILD, 2)) not in (True, False)
    async with db.session() as session:
        repos = Repos(session)
        assert len(await repos.cases.queue()) == 1
        assert await repos.outbox.pending("desk", limit=5)

    run = asyncio.create_task(_run(settings, argparse.Namespace(user="local")))
    try:
        for child in (HANDLED_CHILD, JOURNALLED_CHILD):
            told = await fake.text_to(child, CONTACTS, wait=15.0)
            assert "112" in told.text
        for _ in range(150):
            if len(announcements(fake)) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a repeat would come within the outbox worker's next pass
        said = announcements(fake)
        assert len(said) == 2, said
        assert len(fake.calls_of("createForumTopic")) == 2
        async with db.session() as session:
            cases = await Repos(session).cases.queue()
        assert sorted(f"#{c.id}" in " ".join(said) for c in cases) == [True, True]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
