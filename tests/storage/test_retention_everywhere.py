"""Retention reaches every copy: audit free text, photos outside a case, the journal and the
outbox, each on its own schedule; `days=0` purges everything closed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from dialogs.escalation import Desk
from dialogs.retention import purge
from storage.db import Database
from storage.models import (
    AuditEvent,
    Conversation,
    Counsellor,
    InboxUpdate,
    OutboxMessage,
    utcnow,
)
from storage.repositories import Repos
from tests.conftest import Chat

NOTE = "lives at Lenina 5, flat 12"


async def _closed_case_with_note(chat: Chat, desk: Desk, counsellor: Counsellor) -> int:
    await chat.start_as_child()
    await chat.press("человеком")
    await chat.say("меня травят")
    [case] = await desk.queue()
    await desk.take(counsellor, case.id)
    await desk.note(counsellor, case.id, NOTE)
    await desk.close(counsellor, case.id, "advice-given")
    return case.id


async def _age_case(db: Database, case_id: int, when: datetime) -> None:
    async with db.session() as s:
        row = await Repos(s).cases.get(case_id)
        assert row is not None
        row.closed_at = when


async def _trail(db: Database, case_id: int) -> list[tuple[int | None, str, datetime, str]]:
    async with db.session() as s:
        events = await Repos(s).audit.for_case(case_id)
        return [(e.counsellor_id, e.action, e.created_at, e.detail) for e in events]


async def test_audit_text_of_an_old_closed_case_goes_who_when_what_stay(
    db: Database, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    case_id = await _closed_case_with_note(chat_factory(), desk, counsellor)
    before = await _trail(db, case_id)
    assert any(detail == NOTE for *_, detail in before)
    await _age_case(db, case_id, utcnow() - timedelta(days=40))

    await purge(db, days=30)

    after = await _trail(db, case_id)
    assert [(who, what, when) for who, what, when, _ in after] == [
        (who, what, when) for who, what, when, _ in before
    ]
    assert all(detail == "" for *_, detail in after)


async def test_audit_text_of_a_recent_case_stays_until_the_period_ends(
    db: Database, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    case_id = await _closed_case_with_note(chat_factory(), desk, counsellor)
    await _age_case(db, case_id, utcnow() - timedelta(days=10))
    await purge(db, days=30)
    assert any(detail == NOTE for *_, detail in await _trail(db, case_id))


async def test_old_audit_events_without_a_case_lose_their_text(db: Database) -> None:
    async with db.session() as s:
        await Repos(s).audit.record("blocked", counsellor_id=7, case_id=None, detail=NOTE)
    async with db.session() as s:
        await s.execute(update(AuditEvent).values(created_at=utcnow() - timedelta(days=31)))
    await purge(db, days=30)
    async with db.session() as s:
        [event] = (await s.execute(select(AuditEvent))).scalars().all()
        assert (event.counsellor_id, event.action, event.detail) == (7, "blocked", "")


async def _photo(db: Database, tmp_path: Path, name: str, age_days: int) -> tuple[int, Path]:
    stored = tmp_path / name
    stored.write_bytes(b"photo")
    async with db.session() as s:
        repos = Repos(s)
        user, _ = await repos.users.get_or_create("console", f"u-{name}", f"chat-{name}", "ru")
        att = await repos.attachments.add(
            user_id=user.id,
            channel="console",
            kind="photo",
            file_ref=f"ref-{name}",
            size=5,
            mime="image/jpeg",
        )
        att.stored_path = str(stored)
        att.created_at = utcnow() - timedelta(days=age_days)
        return att.user_id or 0, stored


async def test_a_photo_sent_outside_any_case_goes_after_the_period_with_its_file(
    db: Database, tmp_path: Path
) -> None:
    old_user, old_file = await _photo(db, tmp_path, "old.jpg", age_days=31)
    new_user, new_file = await _photo(db, tmp_path, "new.jpg", age_days=1)

    counts = await purge(db, days=30)

    assert counts["evidence"] == 1
    assert not old_file.exists() and new_file.exists()
    async with db.session() as s:
        repos = Repos(s)
        assert list(await repos.attachments.for_user(old_user)) == []
        assert len(await repos.attachments.for_user(new_user)) == 1


async def _journal_and_outbox(db: Database, age_days: int) -> None:
    when = utcnow() - timedelta(days=age_days)
    async with db.session() as s:
        repos = Repos(s)
        inbox_id = await repos.inbox.add("telegram", f"u{age_days}", {"text": "secret"})
        assert inbox_id is not None
        row = await s.get(InboxUpdate, inbox_id)
        assert row is not None
        row.received_at = row.processed_at = when
        sent = await repos.outbox.add("telegram", "777", {"text": "reply"})
        sent.created_at = sent.delivered_at = when


async def _journal_ages(db: Database) -> tuple[list[str], int]:
    """The journal's update ids and the count of sent outbox messages."""
    async with db.session() as s:
        inbox = (await s.execute(select(InboxUpdate.update_id))).scalars().all()
        done = OutboxMessage.delivered_at.is_not(None)
        outbox = (await s.execute(select(OutboxMessage.id).where(done))).scalars().all()
        return sorted(inbox), len(outbox)


async def test_journal_and_outbox_go_on_the_schedule_the_settings_say(db: Database) -> None:
    for age in (1, 3, 5):
        await _journal_and_outbox(db, age)

    counts = await purge(db, days=30, journal_days=2, outbox_days=4)

    inbox, outbox = await _journal_ages(db)
    assert inbox == ["u1"]  # 3 and 5 days old: past the journal's 2 days
    assert outbox == 2  # 1 and 3 days old kept; 5 days old past the outbox's 4 days
    assert counts["sent messages"] == 1


async def test_days_zero_purges_everything_closed(
    db: Database,
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    tmp_path: Path,
) -> None:
    case_id = await _closed_case_with_note(chat_factory(), desk, counsellor)
    _, photo = await _photo(db, tmp_path, "loose.jpg", age_days=0)
    await _journal_and_outbox(db, 0)
    await _age_case(db, case_id, utcnow() - timedelta(seconds=1))

    await purge(db, days=0)

    assert all(detail == "" for *_, detail in await _trail(db, case_id))
    assert not photo.exists()
    assert await _journal_ages(db) == ([], 0)
    async with db.session() as s:
        repos = Repos(s)
        assert list(await repos.messages.for_case(case_id)) == []
        kept = await repos.cases.get(case_id)
        assert kept is not None and kept.answers == {} and kept.outcome == "advice-given"


async def _conversation_aged(db: Database, user: str, age_days: int) -> int:
    async with db.session() as s:
        repos = Repos(s)
        row, _ = await repos.users.get_or_create("console", user, f"chat-{user}", "ru")
        conv = await repos.conversations.create(row.id, "start", "menu")
        conv.data = {"link": "https://example.org/secret"}
        conv.updated_at = utcnow() - timedelta(days=age_days)
        return row.id


async def test_idle_conversations_go_unless_their_case_is_still_open(
    db: Database, chat_factory: Callable[..., Chat]
) -> None:
    idle = await _conversation_aged(db, "idle", age_days=31)
    recent = await _conversation_aged(db, "recent", age_days=1)
    waiting = chat_factory(user="waiting")
    await waiting.start_as_child()
    await waiting.press("человеком")
    await waiting.say("меня травят")
    async with db.session() as s:
        await s.execute(update(Conversation).values(updated_at=utcnow() - timedelta(days=31)))
        await s.execute(
            update(Conversation)
            .where(Conversation.user_id == recent)
            .values(updated_at=utcnow() - timedelta(days=1))
        )

    counts = await purge(db, days=30)

    assert counts["conversations"] == 1
    async with db.session() as s:
        users = (await s.execute(select(Conversation.user_id))).scalars().all()
    assert idle not in users and recent in users and len(users) == 2
