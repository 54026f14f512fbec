"""The per-chat mailbox's contract, seen from a channel: what the child receives.

- An update the engine could not handle (its replies flagged `meta["retry"]`: the database was
  away) stays open, its reply is still sent, and it is handled again before the chat's next one.
  (Here a stand-in engine sets the flag; the dialog engine sets it once it follows the contract.)
- Backpressure: a full process refuses an update with `Busy` before journalling it, except one
  that reads as danger; `room()` waits until there is room again.
- On PostgreSQL a chat's claim is one worker's at a time, and dies with its process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from bot.app import App
from bot.delivery import Delivery
from bot.locks import AdvisoryClaims
from bot.mailbox import Busy, MailboxLimits
from bot.settings import Settings
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import Address, Channel, Inbound, Outbound, outbound_to_dict
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos
from tests.production.conftest import own_pg_database

DANGER = "я хочу умереть"


class Phone:
    """The child's screen: every text the channel delivered."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def send(self, message: Outbound) -> None:
        self.seen.append(message.text)


class FlakyEngine(DialogEngine):
    """Echoes each message under the engine's contract; the first attempt at a text in `away`
    finds the database away and answers with a `retry` reply instead."""

    away: set[str]
    gate: asyncio.Event | None = None
    # Called with each text once it is handled (a child who answers at once).
    then: Callable[[Inbound], Awaitable[None]] | None = None

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        if self.gate is not None:
            await self.gate.wait()
        to = Address(str(inbound.channel), inbound.chat_id)
        if inbound.text in self.away:
            self.away.discard(inbound.text)
            return [Outbound(to=to, text="Напиши ещё раз", meta={"retry": "1"})]
        reply = Outbound(to=to, text=f"эхо {inbound.text}")
        async with self.db.unit() as repos:
            assert inbound.update_id is not None
            if not await repos.updates.claim(str(inbound.channel), inbound.update_id):
                return []
            await repos.inbox.mark_handled(str(inbound.channel), inbound.update_id)
            row = await repos.outbox.add(to.channel, to.chat_id, outbound_to_dict(reply))
        if self.then is not None:
            await self.then(inbound)
        return [replace(reply, meta={"outbox_id": str(row.id)})]


def make_app(db: Database, kb: KnowledgeBase, limits: MailboxLimits | None = None,
             ) -> tuple[App, FlakyEngine, Phone]:
    engine = FlakyEngine(db, kb=kb)
    engine.away = set()
    app = App(settings=Settings.model_construct(default_locale="ru"), db=db, kb=kb,
              engine=engine, desk=Desk(engine), delivery=Delivery(db),
              limits=limits or MailboxLimits())
    phone = Phone()
    app.delivery.register("telegram", phone)
    return app, engine, phone


def says(text: str, update_id: int, chat: str = "77") -> Inbound:
    return Inbound(Channel.TELEGRAM, chat, chat, text=text, locale_hint="ru",
                   update_id=str(update_id))


async def open_entries(db: Database) -> int:
    async with db.session() as s:
        return len(await Repos(s).inbox.unprocessed(utcnow()))


async def test_an_update_the_engine_could_not_handle_stays_open_and_keeps_its_place(
    db: Database, kb: KnowledgeBase
) -> None:
    app, engine, phone = make_app(db, kb)
    engine.away = {"второе"}
    await app.accept(says("первое", 1))
    await app.accept(says("второе", 2))
    await app.drain()
    assert phone.seen == ["эхо первое", "Напиши ещё раз"], "the retry reply is still sent"
    assert await open_entries(db) == 1, "and its journal entry stays open"
    # The database is back; the child writes again: the open entry goes first.
    await app.accept(says("третье", 3))
    await app.drain()
    assert phone.seen == ["эхо первое", "Напиши ещё раз", "эхо второе", "эхо третье"]
    assert await open_entries(db) == 0
    await app.close()


async def test_a_full_process_refuses_updates_before_journalling_but_never_danger(
    db: Database, kb: KnowledgeBase
) -> None:
    app, engine, phone = make_app(db, kb, MailboxLimits(chats=1, backlog=2))
    engine.gate = asyncio.Event()  # the engine is slow: nothing finishes for now
    await app.accept(says("раз", 1, chat="1"))
    await app.accept(says("два", 2, chat="2"))
    with pytest.raises(Busy):
        await app.accept(says("три", 3, chat="3"))
    assert await open_entries(db) == 2, "a refused update is not journalled"
    await app.accept(says(DANGER, 4, chat="4"))  # danger is always taken in
    room = asyncio.create_task(app.mailbox.room())
    await asyncio.sleep(0.05)
    assert not room.done(), "room() waits while the process is full"
    engine.gate.set()
    await asyncio.wait_for(room, 5)
    await app.drain()
    assert sorted(phone.seen) == sorted(["эхо раз", "эхо два", f"эхо {DANGER}"])
    await app.close()


async def test_a_child_who_answers_at_once_does_not_keep_the_others_waiting(
    db: Database, kb: KnowledgeBase
) -> None:
    """One chat worked on at a time, and a child whose every message brings the next before
    the reply is out: another child who wrote meanwhile is answered after the first child's
    next message, not after all ten of them."""
    app, engine, phone = make_app(db, kb, MailboxLimits(chats=1))
    sent = iter(range(2, 11))

    async def answers_at_once(inbound: Inbound) -> None:
        if inbound.chat_id == "1":
            n = next(sent, None)
            if n is not None:
                await app.accept(says(f"a{n}", 100 + n, chat="1"))

    engine.then = answers_at_once
    await app.accept(says("a1", 101, chat="1"))
    await app.accept(says("b1", 201, chat="2"))
    await app.drain()
    assert sorted(phone.seen) == sorted([f"эхо a{n}" for n in range(1, 11)] + ["эхо b1"])
    assert phone.seen.index("эхо b1") <= 2, phone.seen
    assert [t for t in phone.seen if t != "эхо b1"] == [f"эхо a{n}" for n in range(1, 11)]
    await app.close()


async def test_a_chat_claim_on_postgresql_is_one_workers_and_dies_with_its_process() -> None:
    """Two workers' claims on one PostgreSQL database: a chat is one worker's at a time; a
    worker whose connection dies (kill -9) loses its claims at once, with no lease to wait."""
    async with own_pg_database("claims", schema=False) as url:
        one, two = Database(url), Database(url)
        try:
            a, b = AdvisoryClaims(one.engine), AdvisoryClaims(two.engine)
            chat = ("telegram", "a-chat-key")
            assert await a.try_claim(chat)
            assert not await b.try_claim(chat), "one worker at a time"
            assert await b.try_claim(("telegram", "another-chat"))
            await a.release(chat)
            assert await b.try_claim(chat), "released: the other worker takes it"
            await b.close()  # the process dies: its connection, and every claim on it, go
            assert await a.try_claim(chat)
            assert a.holds(chat) and not b.holds(chat)
            await a.close()
        finally:
            await one.dispose()
            await two.dispose()
