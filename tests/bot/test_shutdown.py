"""`shut_down` ends within its grace period whatever the tasks it stops do: a channel that
swallows its cancel (or waits in a cleanup for something that never comes) is left behind with
its stack logged, and the process then exits without waiting for it."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot import runner
from bot.app import build_app
from bot.settings import Settings
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase


async def _stubborn_channel(never: asyncio.Event) -> None:
    """A channel whose cleanup, once cancelled, waits for an event nobody sets."""
    try:
        await asyncio.sleep(3600)
    finally:
        await never.wait()  # the cleanup "must" finish


async def test_a_channel_that_will_not_end_is_left_behind_within_the_grace(
    tmp_path: Path, kb: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
                        keys_file=tmp_path / "keys.json")
    app = build_app(settings, kb=kb)
    await app.db.create_all()
    await app.receive(Inbound(Channel.TELEGRAM, "77", "77", text="привет", update_id="9001"))
    never = asyncio.Event()
    channel = asyncio.create_task(_stubborn_channel(never), name="telegram polling")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.runner"):
        left = await asyncio.wait_for(runner.shut_down(app, [channel], [], grace=2.0), 5)
    took = time.monotonic() - started
    assert took < 2.5, f"shutdown took {took:.1f}s with a grace of 2s"
    assert left == {channel} and not channel.done()
    assert "telegram polling did not end after it was cancelled" in caplog.text
    assert "_stubborn_channel" in caplog.text, "its stack is logged, to find why"
    # What the stopped process had journalled is handled at the next start.
    restarted = build_app(settings, kb=kb)
    assert await restarted.recover(older_than=0) == 1
    await restarted.close()
    never.set()
    await asyncio.gather(channel, return_exceptions=True)
