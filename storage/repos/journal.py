"""The inbound journal: updates seen (dedupe) and updates journalled before handling."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.models import (
    InboxUpdate,
    ProcessedUpdate,
    utcnow,
)
from storage.repos.base import _Repo


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
    async def add(self, channel: str, update_id: str, body: dict[str, Any]) -> int | None:
        """Store an inbound update; None if it was stored before (a repeat)."""
        values = {
            "channel": channel,
            "update_id": update_id,
            "received_at": utcnow(),
            "body": body,
        }
        if self.dialect == "postgresql":
            stmt: Any = pg_insert(InboxUpdate).values(values).on_conflict_do_nothing()
        else:
            stmt = sqlite_insert(InboxUpdate).values(values).on_conflict_do_nothing()
        result = await self.session.execute(stmt.returning(InboxUpdate.id))
        row = result.first()
        return int(row[0]) if row else None

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
