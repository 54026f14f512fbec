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


async def test_handled_entries_and_delivered_messages_are_deleted_and_their_ids_never_reused(
    db: Database,
) -> None:
    """A handled journal entry and a delivered message are deleted at once (the update's and
    the reply's words go, their space is reused), the update's id stays known (a repeat is
    not journalled again), and a later row never gets the id of a deleted one: ids are held
    in memory by the mailbox, the danger lane and the senders."""
    async with db.session() as s:
        repos = Repos(s)
        first = await repos.inbox.add("telegram", "910", {"text": "привет"}, "chat")
        reply = await repos.outbox.write("telegram", "910", {"text": "Привет!"}, None)
    assert first is not None
    async with db.session() as s:
        repos = Repos(s)
        assert await repos.inbox.take("telegram", "910")
        await repos.outbox.mark_delivered(reply)
    async with db.session() as s:
        repos = Repos(s)
        assert list(await repos.inbox.for_chat("telegram", "chat")) == []
        assert await repos.outbox.get(reply) is None, "delivered: deleted with its words"
        assert await repos.inbox.add("telegram", "910", {"text": "привет"}, "chat") is None, (
            "handled already: the platform's repeat is not journalled again")
        later = await repos.inbox.add("telegram", "911", {"text": "ещё"}, "chat")
        second = await repos.outbox.write("telegram", "911", {"text": "Да?"}, None)
    assert later is not None and later > first, "a new entry, a new id"
    assert second > reply, "a new message, a new id"
