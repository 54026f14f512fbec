"""The turn's claim of an update (`InboxRepo.take`): exactly one turn handles an update, however
many try at once, whether the journal holds it or not (on PostgreSQL under `make test-pg`)."""

from __future__ import annotations

import asyncio

from storage.db import Database
from storage.repositories import Repos


async def _take(db: Database, update_id: str, go: asyncio.Event) -> bool:
    async with db.session() as s:
        await go.wait()
        return await Repos(s).inbox.take("telegram", update_id)


async def test_one_turn_takes_an_update_however_many_try(db: Database) -> None:
    async with db.session() as s:
        assert await Repos(s).inbox.add("telegram", "900", {"text": "привет"}, "chat") is not None
    for update_id in ("900", "901"):  # journalled, and one the journal does not hold
        go = asyncio.Event()
        tries = [asyncio.create_task(_take(db, update_id, go)) for _ in range(4)]
        await asyncio.sleep(0.05)
        go.set()
        results = await asyncio.gather(*tries)
        assert sorted(results) == [False, False, False, True], (update_id, results)
    async with db.session() as s:
        repos = Repos(s)
        assert await repos.inbox.take("telegram", "900") is False, "closed: a repeat"
        assert await repos.inbox.take("telegram", "901") is False, "recorded: a repeat"
        assert await repos.inbox.chat_waiting("telegram", "chat") is False, "its entry closed"
