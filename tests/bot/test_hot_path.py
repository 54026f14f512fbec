"""The hot path's shortcuts (issue 20) keep every promise of the slow path.

- SQLite runs on the event loop's thread (`storage.sqlite_inline`): transactions commit and roll
  back as before, and a constraint still fails as an integrity error.
- A turn's replies to a chat with nothing older undelivered are written already claimed for the
  sender that sends them at commit: the child gets them in order, once, and no claim statement
  runs; a reply behind an older undelivered one waits its turn.
- An update journalled with nothing older open in its chat is handled from memory, without
  reading the journal back; one behind an older open entry is read from the journal, in order.
- Deliveries are marked in batches (a group commit): every concurrent send is marked, in fewer
  statements than sends.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError

from bot.app import App, build_app
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.messages import Address, Channel, Inbound, Outbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import InboxUpdate, ProcessedUpdate, utcnow
from storage.repositories import Repos
from storage.sqlite_inline import DRIVER


class Phone:
    """A child's messenger: what reached the child, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.chats: list[str] = []

    async def send(self, message: Outbound) -> None:
        self.texts.append(message.text)
        self.chats.append(message.to.chat_id)


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    def on_statement(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    return seen


async def _app(tmp_path: Path, kb: KnowledgeBase) -> tuple[App, Phone, list[str]]:
    """The app as `helpline run` builds it, a child's phone on Telegram, the SQL it runs."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hot.db'}"
    app = build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)
    await app.db.create_all()
    phone = Phone()
    app.delivery.register(str(Channel.TELEGRAM), phone)
    return app, phone, _statements(app.db)


async def test_sqlite_runs_inline_and_keeps_transactions(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    assert db.engine.dialect.driver == DRIVER
    await db.create_all()
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            await Repos(s).users.get_or_create("telegram", "1", "1", "ru")
            raise RuntimeError("a bug mid-turn")
    async with db.session() as s:
        assert await Repos(s).users.find("telegram", "1") is None, "rolled back"
    insert = text("INSERT INTO processed_updates (channel, update_id, created_at) "
                  "VALUES ('telegram', '7', '2026-12-02 00:00:00')")
    async with db.session() as s:
        await Repos(s).users.get_or_create("telegram", "1", "1", "ru")
        await s.execute(insert)
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            await s.execute(insert)
    async with db.session() as s:
        assert await Repos(s).users.find("telegram", "1") is not None, "the first is kept"
    await db.dispose()


async def test_a_turns_replies_go_out_in_order_with_no_claim_round_trip(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    app, phone, statements = await _app(tmp_path, kb)
    replies = await app.handle(
        Inbound(Channel.TELEGRAM, "42", "42", text="/start", locale_hint="ru", update_id="1")
    )
    assert len(replies) >= 2, "the greeting and the question who is writing"
    assert phone.texts == [r.text for r in replies], "each once, in order"
    assert phone.texts[0].startswith("Привет!")
    assert not [s for s in statements if s.startswith("UPDATE outbox SET claimed_until")], (
        "written claimed at commit: no claim statement per reply"
    )
    assert not [s for s in statements if s.startswith("SELECT inbox.id, inbox.channel")], (
        "nothing older was open: the update is handled from memory, not read back"
    )
    async with app.db.session() as s:
        assert await Repos(s).outbox.backlog() == 0, "every reply marked delivered"
    await app.close()


async def test_a_reply_behind_an_older_undelivered_one_waits_its_turn(db: Database) -> None:
    """Another sender holds the chat's older message (claimed, not yet sent): the new one is
    not written claimed, and is not sent before the older one."""
    to = Address("telegram", "555")
    other, mine = Delivery(db), Delivery(db)
    stuck = Phone()
    other.register("telegram", stuck)
    async with db.session() as s:
        older = await Repos(s).outbox.add("telegram", "555", {"to": {"channel": "telegram",
                                          "chat_id": "555"}, "text": "older"})
    async with db.session() as s:
        assert await Repos(s).outbox.claim(older.id, utcnow(), utcnow() + other.lease)
    phone = Phone()
    mine.register("telegram", phone)
    [written] = await mine._persist([Outbound(to=to, text="newer")])
    assert "claimed" not in written.meta, "its turn has not come: not claimed at write"
    await mine.deliver([written], wait=False)
    assert phone.texts == [], "the newer reply does not overtake the older one"


async def test_concurrent_deliveries_are_all_marked_in_fewer_statements(db: Database) -> None:
    delivery = Delivery(db)
    phone = Phone()
    delivery.register("telegram", phone)
    statements = _statements(db)
    messages = [Outbound(to=Address("telegram", str(chat)), text=f"hi {chat}")
                for chat in range(30)]
    await asyncio.gather(*(delivery.deliver([m]) for m in messages))
    assert sorted(phone.texts) == sorted(m.text for m in messages)
    marks = [s for s in statements if s.startswith("DELETE FROM outbox")]
    assert 1 <= len(marks) < len(messages), f"{len(marks)} mark statements for 30 sends"
    async with db.session() as s:
        assert await Repos(s).outbox.backlog() == 0


async def test_updates_behind_an_open_one_are_read_back_and_handled_in_order(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    app, phone, statements = await _app(tmp_path, kb)
    # Three updates of one chat accepted back to back: the first is handled from memory, the
    # others were journalled behind it (still open) and are read back, in their order.
    for n, words in enumerate(["/start", "/start", "/help"], start=1):
        await app.accept(Inbound(Channel.TELEGRAM, "9", "9", text=words, locale_hint="ru",
                                 update_id=str(n)))
    await app.drain()
    assert [s for s in statements if s.startswith("SELECT inbox.id, inbox.channel")], (
        "the later ones were read back from the journal"
    )
    # /start (the greeting, then "who are you?"), /start again (the question only), /help.
    assert phone.texts[0].startswith("Привет!"), phone.texts
    assert phone.texts[1:3] == ["Кто ты?", "Кто ты?"], phone.texts
    assert phone.texts[3].startswith("Я бот линии помощи"), "the /help answer comes last"
    async with app.db.session() as s:
        assert await Repos(s).inbox.unprocessed(utcnow()) == [], "every entry closed"
    await app.close()


async def test_a_batch_of_updates_is_journalled_in_one_transaction_danger_first(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """What a poller does with one getUpdates answer (`App.batching`): ten messages from five
    children are taken in without a write, journalled by one commit, and then every child is
    answered in their own order; the child who wrote danger gets the emergency contacts."""
    app, phone, statements = await _app(tmp_path, kb)
    commits: list[int] = []
    event.listen(app.db.engine.sync_engine, "commit", lambda _c: commits.append(1))
    words = {"1": ["/start", "/help"], "2": ["/start", "/help"], "3": ["/start", "/help"],
             "4": ["/start", "/help"], "5": ["/start", "я больше не хочу жить"]}
    with app.batching() as batch:
        n = 0
        for turn in range(2):
            for chat, said in words.items():
                n += 1
                await app.accept(Inbound(Channel.TELEGRAM, chat, chat, text=said[turn],
                                         locale_hint="ru", update_id=str(n)))
        assert len(batch.entries) == 10
        assert not [s for s in statements if s.startswith("INSERT INTO inbox")], (
            "nothing is written before the commit"
        )
        assert app.mailbox.full is False and app.mailbox._admitting == 10, "counted as taken"
        await batch.commit()
        assert len(commits) == 1, "one transaction journals the whole batch"
        assert len([s for s in statements if s.startswith("INSERT INTO inbox")]) == 10
    assert app.mailbox._admitting == 0
    await app.drain()
    async with app.db.session() as s:
        assert await Repos(s).inbox.unprocessed(utcnow()) == [], "every entry handled"
    by_chat: dict[str, list[str]] = {}
    for message, text_ in zip(phone.chats, phone.texts, strict=True):
        by_chat.setdefault(message, []).append(text_)
    for chat in "1234":
        said = by_chat[chat]
        assert said[0].startswith("Привет!"), said
        assert [t for t in said[1:] if t.startswith("Я бот линии помощи")], "then /help's answer"
    assert any("112" in t for t in by_chat["5"]), "the emergency contacts reach the child"
    await app.close()


async def test_the_turns_claim_is_closing_its_journal_entry_and_a_repeat_is_ignored(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """A journalled update is claimed by closing its entry: the entry (the update's body) is
    deleted and only its id kept in `processed_updates`. The same update handed to the engine
    again, or journalled again (a webhook's retry), is a repeat and says nothing. An update
    the journal does not hold (the engine called directly) is claimed once through
    `processed_updates`."""
    app, phone, statements = await _app(tmp_path, kb)
    start = Inbound(Channel.TELEGRAM, "31", "31", text="/start", locale_hint="ru",
                    update_id="501")
    replies = await app.handle(start)
    assert replies and phone.texts[0].startswith("Привет!")
    assert [s for s in statements if s.startswith("DELETE FROM inbox")]
    async with app.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(InboxUpdate)) == 0
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1
    assert await app.handle(start) == [], "journalled again after it was handled: a repeat"
    assert await app.engine.handle(start) == [], "handled already: a repeat"
    assert len(phone.texts) == len(replies), "nothing said twice"
    loose = Inbound(Channel.TELEGRAM, "32", "32", text="/start", locale_hint="ru",
                    update_id="502")
    assert await app.engine.handle(loose), "not journalled: handled"
    assert [s for s in statements if s.startswith("INSERT INTO processed_updates")]
    assert await app.engine.handle(loose) == [], "and its repeat ignored"
    await app.close()


async def test_a_returning_childs_turn_reads_user_and_conversation_in_one_statement(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    app, phone, statements = await _app(tmp_path, kb)
    await app.handle(Inbound(Channel.TELEGRAM, "41", "41", text="/start", locale_hint="ru",
                             update_id="1"))
    statements.clear()
    await app.handle(Inbound(Channel.TELEGRAM, "41", "41", text="/help", locale_hint="ru",
                             update_id="2"))
    assert any(s.startswith("Я бот линии помощи") for s in phone.texts), phone.texts
    reads = [s for s in statements if s.startswith("SELECT") and "FROM users" in s]
    assert len(reads) == 1 and "JOIN conversations" in reads[0], reads
    assert not [s for s in statements if s.startswith("SELECT conversations.")], (
        "the conversation came with the user"
    )
    await app.close()
