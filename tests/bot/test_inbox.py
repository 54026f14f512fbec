"""Every inbound update is journalled before it is acknowledged: a crash after the journal and
before handling loses nothing, and a repeated update is handled once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import build_app
from bot.settings import Settings
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase
from storage.repositories import Repos


async def test_journalled_update_survives_a_crash_and_repeats_are_ignored(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'i.db'}"
    app = build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)
    await app.db.create_all()
    inbound = Inbound(Channel.TELEGRAM, "42", "42", text="привет", update_id="1001")
    stored = await app.receive(inbound)
    assert isinstance(stored, int) and stored is not True
    assert await app.receive(inbound) is False, "the platform resent it: a repeat"
    # The worker died here. After a restart, another App on the same database recovers it.
    await app.close()
    restarted = build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)
    assert await restarted.recover(older_than=0) == 1
    assert await restarted.recover(older_than=0) == 0
    async with restarted.db.session() as s:
        replies = [row.body["text"] for row in await Repos(s).outbox.pending("telegram", "42")]
    assert any("Кто ты?" in text for text in replies), "the reply waits in the outbox"
    assert await restarted.handle(inbound) == [], "and a late repeat changes nothing"
    await restarted.close()


async def test_after_shutdowns_grace_nothing_starts_again_and_close_is_prompt(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """Past the grace period the handling in hand is cut short. A recovery pass still running
    then (it kicks every chat with open entries) must not start them again: the close after
    it would wait for the whole backlog. The entries stay open for the next start."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'i.db'}"
    settings = Settings(database_url=url, keys_file=tmp_path / "keys.json")
    app = build_app(settings, kb=kb)
    await app.db.create_all()
    for n in range(20):
        await app.receive(Inbound(Channel.TELEGRAM, str(500 + n), str(500 + n), text="привет",
                                  update_id=str(2000 + n)))
    app.cancel_pending()
    assert await asyncio.wait_for(app.recover(older_than=0), 2) == 20
    assert not app.mailbox.working, "no chat started after the cut"
    await asyncio.wait_for(app.close(), 2)
    restarted = build_app(settings, kb=kb)
    assert await restarted.recover(older_than=0) == 20, "every entry waits for the next start"
    async with restarted.db.session() as s:
        replies = [row.body["text"] for row in await Repos(s).outbox.pending("telegram", "519")]
    assert any("Кто ты?" in text for text in replies)
    await restarted.close()
