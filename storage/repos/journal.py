"""The inbound journal: updates seen (dedupe) and updates journalled before handling."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import (
    InboxUpdate,
    ProcessedUpdate,
    utcnow,
)
from storage.repos.base import _address_hash, _aware, _Repo


def chat_key(channel: str, chat_id: str) -> str:
    """The keyed hash a chat's mailbox is known by (the outbox's `chat_id` column holds the
    same hash): the database alone cannot tell which chat it is."""
    return _address_hash(channel, chat_id)


class UpdateRepo(_Repo):
    async def claim(self, channel: str, update_id: str) -> bool:
        """Record an inbound update; False if it was already recorded (a repeat)."""
        values = {"channel": channel, "update_id": update_id, "created_at": utcnow()}
        if self.dialect == "postgresql":
            stmt: Any = pg_insert(ProcessedUpdate).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite_insert(ProcessedUpdate).values(values).on_conflict_do_nothing()
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge_before(self, moment: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedUpdate).where(ProcessedUpdate.created_at < moment)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class InboxRepo(_Repo):
    async def oldest_open(self) -> datetime | None:
        """When the oldest journalled update not yet handled arrived."""
        stmt = select(func.min(InboxUpdate.received_at)).where(InboxUpdate.processed_at.is_(None))
        return _aware((await self.session.execute(stmt)).scalar_one())

    async def add(
        self, channel: str, update_id: str, body: dict[str, Any], chat: str | None = None
    ) -> int | None:
        """Store an inbound update for the chat keyed `chat` (see `chat_key`); None if it was
        stored before (a repeat)."""
        values = {
            "channel": channel,
            "update_id": update_id,
            "received_at": utcnow(),
            "body": body,
            "chat_key": chat,
        }
        if self.dialect == "postgresql":
            stmt: Any = pg_insert(InboxUpdate).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite_insert(InboxUpdate).values(values).on_conflict_do_nothing()
        result = await self.session.execute(stmt.returning(InboxUpdate.id))
        row = result.first()
        return int(row[0]) if row else None

    async def first_open(self, channel: str, chat: str, inbox_id: int) -> bool:
        """Is entry `inbox_id` the chat's oldest unprocessed one (nothing older waits)?"""
        stmt = select(InboxUpdate.id).where(
            InboxUpdate.channel == channel,
            InboxUpdate.chat_key == chat,
            InboxUpdate.processed_at.is_(None),
            InboxUpdate.id < inbox_id,
        )
        return (await self.session.execute(stmt.limit(1))).first() is None

    async def for_chat(self, channel: str, chat: str, limit: int = 20) -> Sequence[InboxUpdate]:
        """A chat's unprocessed updates, in journal order (the order they arrived in)."""
        stmt = (
            select(InboxUpdate)
            .where(
                InboxUpdate.channel == channel,
                InboxUpdate.chat_key == chat,
                InboxUpdate.processed_at.is_(None),
            )
            .order_by(InboxUpdate.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def open_by_ids(self, ids: Sequence[int]) -> Sequence[InboxUpdate]:
        """Those of `ids` not yet processed, in journal order (the danger lane's entries)."""
        if not ids:
            return []
        stmt = (
            select(InboxUpdate)
            .where(InboxUpdate.id.in_(list(ids)), InboxUpdate.processed_at.is_(None))
            .order_by(InboxUpdate.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def chat_waiting(self, channel: str, chat: str) -> bool:
        """Has the chat an unprocessed update?"""
        stmt = select(InboxUpdate.id).where(
            InboxUpdate.channel == channel,
            InboxUpdate.chat_key == chat,
            InboxUpdate.processed_at.is_(None),
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def waiting_chats(self, before: datetime, limit: int = 500) -> list[tuple[str, str]]:
        """Chats with an update journalled before `before` and still unprocessed, oldest
        first."""
        oldest = func.min(InboxUpdate.id)
        stmt = (
            select(InboxUpdate.channel, InboxUpdate.chat_key)
            .where(
                InboxUpdate.processed_at.is_(None),
                InboxUpdate.received_at < before,
                InboxUpdate.chat_key.is_not(None),
            )
            .group_by(InboxUpdate.channel, InboxUpdate.chat_key)
            .order_by(oldest)
            .limit(limit)
        )
        return [(str(c), str(k)) for c, k in (await self.session.execute(stmt)).all()]

    async def without_chat(self, limit: int = 500) -> Sequence[InboxUpdate]:
        """Unprocessed updates journalled before chats had keys (migration 0005)."""
        stmt = (
            select(InboxUpdate)
            .where(InboxUpdate.processed_at.is_(None), InboxUpdate.chat_key.is_(None))
            .order_by(InboxUpdate.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def set_chat(self, inbox_id: int, chat: str) -> None:
        await self.session.execute(
            update(InboxUpdate).where(InboxUpdate.id == inbox_id).values(chat_key=chat)
        )

    async def mark_processed(self, inbox_id: int) -> None:
        await self.session.execute(
            update(InboxUpdate).where(InboxUpdate.id == inbox_id).values(processed_at=utcnow())
        )

    async def mark_handled(self, channel: str, update_id: str) -> None:
        """Mark a journalled update processed inside the transaction that handled it (saves the
        handler a transaction of its own; nothing happens if it was not journalled)."""
        await self.session.execute(
            update(InboxUpdate)
            .where(
                InboxUpdate.channel == channel,
                InboxUpdate.update_id == update_id,
                InboxUpdate.processed_at.is_(None),
            )
            .values(processed_at=utcnow())
        )

    async def unprocessed(self, before: datetime, limit: int = 500) -> Sequence[InboxUpdate]:
        stmt = (
            select(InboxUpdate)
            .where(InboxUpdate.processed_at.is_(None), InboxUpdate.received_at < before)
            .order_by(InboxUpdate.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def purge_processed_before(self, moment: datetime) -> int:
        result = await self.session.execute(
            delete(InboxUpdate).where(
                InboxUpdate.processed_at.is_not(None), InboxUpdate.processed_at < moment
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
