"""Backpressure with long polling: a full process does not take more updates from Telegram.

The real polling loop (`run_telegram`) against the fake Bot API, with a process allowed one
waiting update and an engine that is stuck for now: the child's later messages stay at Telegram
(not journalled, not confirmed, nothing queued in memory) until there is room; then every reply
arrives, in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import build_app
from bot.mailbox import MailboxLimits
from bot.telegram import run_telegram
from dialogs.engine import DialogEngine
from dialogs.messages import Address, Inbound, Outbound, outbound_to_dict
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

from .conftest import CHILD, make_settings
from .fake_api import FakeTelegram


class StuckEcho(DialogEngine):
    """An echo under the engine's contract that answers only once `go` is set."""

    go: asyncio.Event

    async def gate(self, inbound: Inbound) -> None:
        await self.go.wait()

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        await self.gate(inbound)
        reply = Outbound(to=Address(str(inbound.channel), inbound.chat_id),
                         text=f"эхо {inbound.text}")
        async with self.db.unit() as repos:
            assert inbound.update_id is not None
            if not await repos.updates.claim(str(inbound.channel), inbound.update_id):
                return []
            await repos.inbox.mark_handled(str(inbound.channel), inbound.update_id)
            row = await repos.outbox.add(reply.to.channel, reply.to.chat_id,
                                         outbound_to_dict(reply))
        return [replace(reply, meta={"outbox_id": str(row.id)})]


async def journalled(db: Database) -> int:
    async with db.session() as s:
        return len(await Repos(s).inbox.unprocessed(utcnow()))


async def test_a_full_process_leaves_updates_at_telegram_until_there_is_room(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb,
                    limits=MailboxLimits(chats=1, backlog=1))
    engine = StuckEcho(db, kb=kb)
    engine.go = asyncio.Event()
    app.engine = engine
    task = asyncio.create_task(run_telegram(app))
    try:
        await fake.next_call("deleteWebhook")
        for n in range(1, 4):
            await fake.child_says(CHILD, f"сообщение {n}")
        await asyncio.sleep(1.0)
        assert await journalled(db) == 1, "only what there is room for is taken in"
        assert app.mailbox.backlog == 1
        engine.go.set()
        for n in range(1, 4):
            await fake.text_to(CHILD, f"эхо сообщение {n}", wait=10.0)
        seen = [c.text for c in fake.sent_to(CHILD)]
        assert seen == [f"эхо сообщение {n}" for n in range(1, 4)], seen
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await app.close()


class StuckButDanger(StuckEcho):
    """Stuck for ordinary messages; a message that reads as danger is answered at once."""

    async def gate(self, inbound: Inbound) -> None:
        if not self.urgent(inbound):
            await self.go.wait()


async def test_a_full_process_still_takes_in_danger_behind_ordinary_updates_at_once(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    """The danger lane starts at Telegram: the process is full, the batch in hand has three
    ordinary messages and then a child's danger; the danger is journalled and answered while
    the others wait, and nothing is taken in twice."""
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb,
                    limits=MailboxLimits(chats=1, backlog=1))
    engine = StuckButDanger(db, kb=kb)
    engine.go = asyncio.Event()
    app.engine = engine
    other = CHILD + 1
    for n in range(1, 4):  # all in Telegram's queue before the first getUpdates
        await fake.child_says(CHILD, f"сообщение {n}")
    await fake.child_says(other, "я хочу умереть")
    task = asyncio.create_task(run_telegram(app))
    try:
        reply = await fake.text_to(other, "эхо я хочу умереть", wait=10.0)
        assert reply is not None
        assert fake.sent_to(CHILD) == [], "the ordinary messages still wait"
        assert await journalled(db) == 1, "only the one there was room for, and no other"
        engine.go.set()
        for n in range(1, 4):
            await fake.text_to(CHILD, f"эхо сообщение {n}", wait=10.0)
        assert [c.text for c in fake.sent_to(CHILD)] == [
            f"эхо сообщение {n}" for n in range(1, 4)]
        assert [c.text for c in fake.sent_to(other)] == ["эхо я хочу умереть"], "once"
    finally:
        engine.go.set()  # a failed wait must not leave the engine stuck for close()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await app.close()
