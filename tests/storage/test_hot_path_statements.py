"""The SQL statements of an ordinary update (issue 20), and the promises they keep.

A child's report, walked through the app as `helpline run` builds it (journal, mailbox, the
engine's turn, the outbox, delivery): each ordinary step (a button press in the report flow)
costs at most `CEILING` statements, on SQLite and on PostgreSQL (`scripts/with-postgres.sh`).
Before the changes that set these ceilings an ordinary step cost 10 statements on SQLite and
13 on PostgreSQL; what each change took away:

- the journal's insert tells whether the entry is its chat's first open one (`add_first`);
- a reply is written claimed when its chat is idle in the same statement (`write_if_idle`);
- the block check reads the block's id with a Core select (`blocking`), no ORM row, and then
  as a column of the turn's first read (`with_conversation`), no statement of its own;
- the turn's changed rows are saved by Core UPDATEs (`RecordStores.save`), not the ORM flush;
- PostgreSQL: closing the journal entry records the update's id in the same statement.

And the behaviour stays: the replies reach the child, the conversation is saved, a repeat is
ignored, a blocked child is refused (one neutral notice, nothing saved).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select

from bot.app import App, build_app
from bot.settings import Settings
from dialogs.messages import Channel, Inbound, Outbound
from knowledge_base import KnowledgeBase
from storage import crypto
from storage.db import Database
from storage.models import Conversation, InboxUpdate, ProcessedUpdate, User, utcnow
from storage.repositories import Repos
from tests.conftest import database_url

# Statements per ordinary update, at most. PostgreSQL adds the chat's advisory lock and its
# release around the turn, and the mailbox's look at the chat's journal.
CEILING = {"sqlite": 7, "postgresql": 9}

REPORT = [
    "st|role|child",
    "st|menu|report",
    "cr|what|insults",
    "cr|where|vk",
    "cr|ongoing|yes",
    "cr|safe_now|yes",
    "cr|evidence|none",
]


class Phone:
    """The child's messenger: what reached them, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, message: Outbound) -> None:
        self.texts.append(message.text)


async def _app(tmp_path: Path, kb: KnowledgeBase) -> tuple[App, Phone, list[str]]:
    url = database_url(tmp_path)
    app = build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)
    if not app.db.is_sqlite:
        await app.db.drop_all()
    await app.db.create_all()
    phone = Phone()
    app.delivery.register(str(Channel.TELEGRAM), phone)
    return app, phone, _recorded(app.db)


def _recorded(db: Database) -> list[str]:
    """Every statement the database runs from now on, as one line each."""
    seen: list[str] = []

    def on_statement(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    return seen


def _press(chat: str, payload: str, update_id: int) -> Inbound:
    return Inbound(Channel.TELEGRAM, chat, chat, payload=payload, locale_hint="ru",
                   update_id=str(update_id))


async def _conversation(db: Database, chat: str) -> Conversation:
    hashed = crypto.current().hash_id("user:telegram", chat)
    async with db.session() as s:
        conv = (await s.execute(
            select(Conversation).join(User, User.id == Conversation.user_id)
            .where(User.channel == "telegram", User.external_id == hashed)
        )).scalar_one()
        return conv


async def test_an_ordinary_update_costs_at_most_the_ceiling_and_keeps_its_promises(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    app, phone, statements = await _app(tmp_path, kb)
    ceiling = CEILING[app.db.engine.dialect.name]
    await app.handle(Inbound(Channel.TELEGRAM, "71", "71", text="/start", locale_hint="ru",
                             update_id="1"))
    assert phone.texts and phone.texts[0].startswith("Привет!")
    per_update: list[int] = []
    version = (await _conversation(app.db, "71")).version
    for n, payload in enumerate(REPORT, start=2):
        statements.clear()
        heard = len(phone.texts)
        replies = await app.handle(_press("71", payload, n))
        per_update.append(len(statements))
        assert replies, f"{payload}: a reply"
        assert phone.texts[heard:] == [r.text for r in replies], f"{payload}: it reached the child"
        updates = [s for s in statements if s.startswith("UPDATE conversations")]
        assert len(updates) == 1, f"{payload}: the conversation saved once: {statements}"
        conv = await _conversation(app.db, "71")
        assert conv.version == version + 1, f"{payload}: the turn's state was saved"
        version = conv.version
    # The first press also saves the child's role on the user: one statement more.
    ordinary = per_update[1:]
    assert max(ordinary) <= ceiling, (per_update, ceiling)
    conv = await _conversation(app.db, "71")
    assert conv.flow == "child_report"
    assert conv.data.get("what") == "insults" and conv.data.get("where") == "vk", conv.data
    async with app.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(InboxUpdate)) == 0
        assert await s.scalar(select(func.count()).select_from(ProcessedUpdate)) == 1 + len(
            REPORT)
        assert await Repos(s).outbox.backlog() == 0, "every reply delivered"
    # A repeat (a webhook's retry of the last press) says nothing and saves nothing.
    heard = len(phone.texts)
    assert await app.handle(_press("71", REPORT[-1], 1 + len(REPORT))) == []
    assert len(phone.texts) == heard
    assert (await _conversation(app.db, "71")).version == version
    await app.close()


async def test_a_blocked_child_is_refused_once_and_nothing_is_saved(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    app, phone, statements = await _app(tmp_path, kb)
    await app.handle(Inbound(Channel.TELEGRAM, "72", "72", text="/start", locale_hint="ru",
                             update_id="1"))
    await app.handle(_press("72", "st|role|child", 2))
    before = await _conversation(app.db, "72")
    async with app.db.session() as s:
        user = (await Repos(s).users.with_conversation("telegram", "72", "72", "ru"))[0]
        await Repos(s).blocks.add(channel="telegram", external_id=user.external_id,
                                  user_id=user.id, case_id=None, counsellor_id=1,
                                  reason="abuse", until=utcnow() + timedelta(days=1))
    heard = len(phone.texts)
    statements.clear()
    refused = await app.handle(_press("72", "st|menu|report", 3))
    assert [r.text.split("\n")[0] for r in refused] == [
        "Сейчас этот чат для тебя недоступен. Если тебе угрожает опасность, звони:"
    ]
    assert phone.texts[heard:] == [r.text for r in refused], "the notice reached the child"
    assert not [s for s in statements if s.startswith("SELECT blocks.id, blocks.channel")], (
        "the block is found by its id alone, no ORM row"
    )
    assert await app.handle(_press("72", "st|menu|report", 4)) == [], "one notice per block"
    after = await _conversation(app.db, "72")
    assert (after.flow, after.state) == (before.flow, before.state), "the report did not start"
    await app.close()


async def test_the_journal_says_whether_an_entry_is_its_chats_first_open_one(
    db: Database,
) -> None:
    async with db.session() as s:
        inbox = Repos(s).inbox
        first, is_first = await inbox.add_first("telegram", "1", {"text": "a"}, "chat-a")
        assert first is not None and is_first
        second, is_first = await inbox.add_first("telegram", "2", {"text": "b"}, "chat-a")
        assert second is not None and second > first and not is_first, "behind the first"
        other, is_first = await inbox.add_first("telegram", "3", {"text": "c"}, "chat-b")
        assert other is not None and is_first, "another chat's first"
        assert await inbox.add_first("telegram", "1", {"text": "a"}, "chat-a") == (None, False)
    async with db.session() as s:
        inbox = Repos(s).inbox
        assert await inbox.take("telegram", "1")
        assert not await inbox.take("telegram", "1"), "closed once"
    async with db.session() as s:
        held = (await s.execute(select(ProcessedUpdate.update_id))).scalars().all()
        assert held == ["1"], "the closed entry's id recorded"
        assert await Repos(s).inbox.add_first("telegram", "1", {"text": "a"}, "chat-a") == (
            None, False), "handled already: not journalled again"
        third, is_first = await Repos(s).inbox.add_first("telegram", "4", {"t": "d"}, "chat-a")
        assert third is not None and not is_first, "entry 2 is still open before it"


async def test_a_reply_is_written_claimed_only_when_its_chat_is_idle(db: Database) -> None:
    until = utcnow() + timedelta(minutes=2)
    async with db.session() as s:
        outbox = Repos(s).outbox
        first, idle = await outbox.write_if_idle("telegram", "9", {"text": "a"},
                                                 claimed_until=until)
        assert idle, "nothing waited"
        second, idle = await outbox.write_if_idle("telegram", "9", {"text": "b"},
                                                  claimed_until=until)
        assert second > first and not idle, "the first is undelivered"
        elsewhere, idle = await outbox.write_if_idle("telegram", "8", {"text": "c"},
                                                     claimed_until=until)
        assert idle, "another chat"
    async with db.session() as s:
        outbox = Repos(s).outbox
        rows = {m.id: m for m in await outbox.pending("telegram", limit=10)}
        assert rows[first].claimed_until is not None and rows[first].attempts == 1
        assert rows[second].claimed_until is None and rows[second].attempts == 0
        assert rows[elsewhere].attempts == 1
        await outbox.mark_delivered_many([first, second])
        _, idle = await outbox.write_if_idle("telegram", "9", {"text": "d"}, claimed_until=until)
        assert idle, "all delivered: idle again"


async def test_a_units_record_changes_are_saved_and_the_rows_left_clean(db: Database) -> None:
    async with db.unit() as stores:
        user, _conv = await stores.users.with_conversation("telegram", "5", "5", "ru")
        conv = await stores.conversations.create(user.id, "start", "role")
    statements = _recorded(db)
    async with db.unit() as stores:
        user, conv = await stores.users.with_conversation("telegram", "5", "5", "ru")
        assert conv is not None
        conv.flow, conv.state = "child_report", "what"
        conv.data = {"role": "child", "what": "threats"}
        user.locale, user.locale_fixed = "en", True
        row = stores.records.row_of(conv)
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == 2, updates  # the conversation and the user, once each
    assert row is not None and not inspect(row).modified, "clean after the save, as after a flush"
    async with db.unit() as stores:
        user, conv = await stores.users.with_conversation("telegram", "5", "5", "ru")
        assert conv is not None
        assert (conv.flow, conv.state, conv.data) == (
            "child_report", "what", {"role": "child", "what": "threats"})
        assert (user.locale, user.locale_fixed) == ("en", True)


async def _a_child(db: Database, chat: str) -> None:
    """A child with a conversation, on the Telegram chat `chat`."""
    async with db.unit() as stores:
        user, _ = await stores.users.with_conversation("telegram", chat, chat, "ru")
        await stores.conversations.create(user.id, "start", "role")


@pytest.mark.parametrize("unchanged", [True, False])
async def test_a_record_set_back_to_its_value_writes_nothing(
    db: Database, unchanged: bool
) -> None:
    await _a_child(db, "6")
    statements = _recorded(db)
    async with db.unit() as stores:
        _user, conv = await stores.users.with_conversation("telegram", "6", "6", "ru")
        assert conv is not None
        conv.state = "menu"
        await stores.blocks.blocking("telegram", "x", utcnow())  # the change goes to the row
        conv.state = "role" if unchanged else "menu"
    updates = [s for s in statements if s.startswith("UPDATE")]
    assert len(updates) == (0 if unchanged else 1), updates


async def test_the_turns_first_read_answers_the_block_check_once(db: Database) -> None:
    """The block in force comes with the user and conversation: `blocking` asks nothing of
    the database then; a block added in the same session is seen at once, not the stale
    answer; a second question asks the database again."""
    await _a_child(db, "8")
    statements = _recorded(db)
    async with db.unit() as stores:
        user, conv = await stores.users.with_conversation("telegram", "8", "8", "ru")
        assert conv is not None
        statements.clear()
        assert await stores.blocks.blocking("telegram", user.external_id, utcnow()) is None
        assert statements == [], "answered by the first read"
        block = await stores.blocks.add(channel="telegram", external_id=user.external_id,
                                        user_id=user.id, case_id=None, counsellor_id=1,
                                        reason="abuse", until=utcnow() + timedelta(days=1))
        await stores.users.with_conversation("telegram", "8", "8", "ru")
        assert await stores.blocks.blocking("telegram", user.external_id, utcnow()) == block.id
    async with db.unit() as stores:
        user, _ = await stores.users.with_conversation("telegram", "8", "8", "ru")
        await stores.blocks.add(channel="telegram", external_id=user.external_id,
                                user_id=user.id, case_id=None, counsellor_id=1,
                                reason="again", until=utcnow() + timedelta(days=2))
        # Added after the read: the read's answer (the first block) is stale and not used.
        newest = await stores.blocks.blocking("telegram", user.external_id, utcnow())
        assert newest is not None and newest != block.id
