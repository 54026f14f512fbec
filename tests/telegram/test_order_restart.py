"""Order survives a crash: no reply overtakes one that a dead process had claimed.

The process that died had answered the child's "привет" (the replies are in the outbox, claimed
by that process for sending, never sent) and had journalled the child's next message, danger words,
without handling it. The main job starts again (`bot.cli._run`, in this process, against the fake
Bot API): the child must see the old replies first, and the emergency contacts after it, each once.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import build_app
from bot.cli import _run
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

from .conftest import make_settings
from .fake_api import FakeTelegram

CHILD = 9201
GREETING = "Кто ты"  # what "привет" gets
CONTACTS = "Спасибо, что рассказываешь"
LEASE = 2.0  # what is left of the dead process's claim on the old reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def says(text: str, update_id: int) -> Inbound:
    return Inbound(channel=Channel.TELEGRAM, user_id=str(CHILD), chat_id=str(CHILD),
                   text=text, locale_hint="ru", update_id=str(update_id))


async def test_after_a_restart_the_older_claimed_reply_goes_before_the_danger_reply(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    if not db.is_sqlite:
        pytest.skip("the main job here runs on the test's SQLite file")
    settings = make_settings(fake, tmp_path, webhook_host="127.0.0.1", webhook_port=free_port())
    # The process that died: no channel was live, so its replies stayed in the outbox.
    crashed = build_app(settings, db=db, kb=kb)
    await crashed.handle(says("привет", 1))
    async with db.session() as session:
        repos = Repos(session)
        old = list(await repos.outbox.pending("telegram", str(CHILD)))
        assert any(GREETING in row.body["text"] for row in old)
        # It had claimed the replies to send them, and died before they were sent.
        for row in old:
            assert await repos.outbox.claim(row.id, utcnow(),
                                            utcnow() + timedelta(seconds=LEASE))
    assert await crashed.receive(says("я хочу умереть", 2)) not in (True, False)

    run = asyncio.create_task(_run(settings, argparse.Namespace(user="local")))
    try:
        await fake.text_to(CHILD, CONTACTS, wait=15.0 + LEASE)
        await asyncio.sleep(1.5)  # a repeat would come within the outbox worker's next pass
        seen = [c.text for c in fake.sent_to(CHILD)]
        first = [row.body["text"] for row in old]
        contacts = [i for i, text in enumerate(seen) if CONTACTS in text]
        assert len(contacts) == 1, seen
        assert seen[:len(first)] == first, f"a newer reply overtook the older ones: {seen}"
        assert contacts[0] >= len(first)
        assert "112" in seen[contacts[0]]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
