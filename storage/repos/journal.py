"""The inbound journal: updates seen (dedupe) and updates journalled before handling."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from storage.driver import Statements
from storage.models import (
    DeskUpdate,
    InboxUpdate,
    ProcessedUpdate,
    utcnow,
)
from storage.repos.base import _address_hash, _aware, _Repo


def chat_key(channel: str, chat_id: str) -> str:
    """The keyed hash a chat's mailbox is known by (the outbox's `chat_id` column holds the
    same hash): the database alone cannot tell which chat it is."""
    return _address_hash(channel, chat_id)


# The statements of every update, built once (their construction and cache key are not paid
# again): the journal's insert and check, the turn's claim and the closing of its entry.
def _claim(insert: Any) -> Any:
    return insert(ProcessedUpdate).values(
        channel=bindparam("b_channel"), update_id=bindparam("b_update_id"),
        created_at=bindparam("b_created_at"),
    ).on_conflict_do_nothing()


def _unless_in(insert: Any, model: Any, columns: tuple[str, ...], other: Any) -> Any:
    """Insert a row of `model` from the bound `columns` (parameters ``b_<column>``) unless
    `other` holds the same (channel, update_id) or `model` does (its unique key)."""
    table = model.__table__
    held = (
        select(other.channel)
        .where(other.channel == bindparam("b_channel"),
               other.update_id == bindparam("b_update_id"))
        .exists()
    )
    row = select(*(bindparam(f"b_{c}", type_=table.c[c].type) for c in columns)).where(~held)
    return insert(model).from_select(list(columns), row).on_conflict_do_nothing()


def _add(insert: Any) -> Any:
    """Journal an update unless it is open already (the unique key) or was handled already
    (its id is in `processed_updates`: a handled entry is deleted, see `InboxRepo.take`).
    Returns the new entry's id, and whether it is its chat's first open entry (nothing older
    open in the chat), in the same statement."""
    columns = ("channel", "update_id", "received_at", "body", "chat_key")
    older = aliased(InboxUpdate, name="older")
    # Every other open entry of the chat is older: on SQLite one writer at a time takes ids
    # in order; on PostgreSQL the subquery sees what committed before this statement began,
    # whose ids were taken before this one's.
    other_open = (
        select(older.id)
        .where(
            older.channel == bindparam("b_channel"),
            older.chat_key == bindparam("b_chat_key"),
            older.processed_at.is_(None),
            older.update_id != bindparam("b_update_id"),
        )
        .exists()
    )
    inbox = _unless_in(insert, InboxUpdate, columns, ProcessedUpdate)
    return inbox.returning(InboxUpdate.id, ~other_open)


def _claim_unjournalled(insert: Any) -> Any:
    """`_claim`, only for an update the journal does not hold (one it holds is claimed by
    closing its entry: `InboxRepo.take`)."""
    columns = ("channel", "update_id", "created_at")
    return _unless_in(insert, ProcessedUpdate, columns, InboxUpdate)


_CLAIM_PG, _CLAIM_SQLITE = _claim(pg_insert), _claim(sqlite_insert)
_CLAIM_OTHER_PG = _claim_unjournalled(pg_insert)
_CLAIM_OTHER_SQLITE = _claim_unjournalled(sqlite_insert)
_ADD_PG, _ADD_SQLITE = _add(pg_insert), _add(sqlite_insert)
# A handled entry is deleted and its id recorded in `processed_updates` (`_claim`; the dedupe,
# see `_add`): the update's body goes at once, and its space is reused (an entry kept with its
# body until the retention purge held about 6 MB per 1,000 conversations on SQLite).
_CLOSE = delete(InboxUpdate).where(
    InboxUpdate.channel == bindparam("b_channel"),
    InboxUpdate.update_id == bindparam("b_update_id"),
    InboxUpdate.processed_at.is_(None),
)


def _close_and_record() -> Any:
    """PostgreSQL: `_CLOSE` and `_claim` in one statement (a data-modifying CTE): the entry is
    deleted and its id recorded as handled, and the statement answers how many entries it
    closed (0 or 1). SQLite has no data-modifying CTE: two statements there."""
    closed = _CLOSE.returning(InboxUpdate.channel, InboxUpdate.update_id).cte("closed")
    created = bindparam("b_created_at", type_=ProcessedUpdate.__table__.c.created_at.type)
    recorded = (
        pg_insert(ProcessedUpdate)
        .from_select(
            ["channel", "update_id", "created_at"],
            select(closed.c.channel, closed.c.update_id, created),
        )
        .on_conflict_do_nothing()
        .cte("recorded")
    )
    return select(func.count()).select_from(closed).add_cte(recorded)


_CLOSE_AND_RECORD_PG = _close_and_record()
# Has a chat an open entry (the mailbox's look after each update it handled)?
_WAITING = (
    select(InboxUpdate.id)
    .where(
        InboxUpdate.channel == bindparam("b_channel"),
        InboxUpdate.chat_key == bindparam("b_chat"),
        InboxUpdate.processed_at.is_(None),
    )
    .limit(1)
)


async def add_first(
    on: Statements, channel: str, update_id: str, body: dict[str, Any], chat: str | None = None
) -> tuple[int | None, bool]:
    """`InboxRepo.add_first`, where `on` runs it (a repository's session, or `Database.lone`)."""
    values = {
        "b_channel": channel,
        "b_update_id": update_id,
        "b_received_at": utcnow(),
        "b_body": body,
        "b_chat_key": chat,
    }
    stmt = _ADD_PG if on.dialect == "postgresql" else _ADD_SQLITE
    row: Any = (await on.run(stmt, values)).first()
    return (int(row[0]), bool(row[1])) if row is not None else (None, False)


async def chat_waiting(on: Statements, channel: str, chat: str) -> bool:
    """`InboxRepo.chat_waiting`, where `on` runs it."""
    params = {"b_channel": channel, "b_chat": chat}
    return (await on.run(_WAITING, params)).first() is not None


class UpdateRepo(_Repo):
    async def claim(self, channel: str, update_id: str) -> bool:
        """Record an inbound update; False if it was already recorded (a repeat)."""
        values = {"b_channel": channel, "b_update_id": update_id, "b_created_at": utcnow()}
        stmt = _CLAIM_PG if self.dialect == "postgresql" else _CLAIM_SQLITE
        result = await self._core(stmt, values)
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
        return (await self.add_first(channel, update_id, body, chat))[0]

    async def add_first(
        self, channel: str, update_id: str, body: dict[str, Any], chat: str | None = None
    ) -> tuple[int | None, bool]:
        """`add`, and whether the new entry is its chat's first open one (nothing older in the
        chat waits), in one statement: (None, False) for a repeat. On PostgreSQL "older"
        means committed before this statement began (another transaction's entry not yet
        committed is not seen, as it was not by a read after the insert either)."""
        return await add_first(self, channel, update_id, body, chat)

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
        return await chat_waiting(self, channel, chat)

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
        """Close entry `inbox_id` (see `_close`)."""
        row = (
            await self.session.execute(
                delete(InboxUpdate)
                .where(InboxUpdate.id == inbox_id, InboxUpdate.processed_at.is_(None))
                .returning(InboxUpdate.channel, InboxUpdate.update_id)
            )
        ).first()
        if row is not None:
            await self._record(str(row[0]), str(row[1]), utcnow())

    async def _record(self, channel: str, update_id: str, now: datetime) -> None:
        stmt = _CLAIM_PG if self.dialect == "postgresql" else _CLAIM_SQLITE
        await self._core(
            stmt, {"b_channel": channel, "b_update_id": update_id, "b_created_at": now}
        )

    async def _close(self, channel: str, update_id: str, now: datetime) -> bool:
        """Close an open entry: delete it and record its id as handled. False if none was
        open."""
        if self.dialect == "postgresql":
            params = {"b_channel": channel, "b_update_id": update_id, "b_created_at": now}
            return int((await self._core(_CLOSE_AND_RECORD_PG, params)).scalar_one()) == 1
        params = {"b_channel": channel, "b_update_id": update_id}
        if getattr(await self._core(_CLOSE, params), "rowcount", 0) != 1:
            return False
        await self._record(channel, update_id, now)
        return True

    async def take(self, channel: str, update_id: str) -> bool:
        """Claim an update for the turn that handles it, in the turn's transaction: True when
        this turn may handle it, False for a repeat. A journalled update is claimed by closing
        its open entry (deleted, its id recorded in `processed_updates`); one the journal does
        not hold, by recording its id there (as `UpdateRepo.claim`)."""
        now = utcnow()
        if await self._close(channel, update_id, now):
            return True
        stmt = _CLAIM_OTHER_PG if self.dialect == "postgresql" else _CLAIM_OTHER_SQLITE
        result = await self._core(
            stmt, {"b_channel": channel, "b_update_id": update_id, "b_created_at": now}
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def mark_handled(self, channel: str, update_id: str) -> None:
        """Mark a journalled update processed inside the transaction that handled it (saves the
        handler a transaction of its own; nothing happens if it was not journalled)."""
        await self._close(channel, update_id, utcnow())

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


class DeskJournalRepo(_Repo):
    """Staff-group updates kept until handled (`DeskUpdate`)."""

    async def keep(self, channel: str, update_id: str, body: dict[str, Any]) -> bool:
        """Keep one; False when it is kept already (Telegram sent it again)."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = insert(DeskUpdate).values(
            channel=channel, update_id=update_id, body=body, received_at=utcnow()
        ).on_conflict_do_nothing()
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def done(self, channel: str, update_id: str) -> None:
        await self.session.execute(
            delete(DeskUpdate).where(
                DeskUpdate.channel == channel, DeskUpdate.update_id == update_id
            )
        )

    async def waiting(self, channel: str) -> list[tuple[str, dict[str, Any]]]:
        """Those left unhandled (by a crash), in the order they came."""
        stmt = select(DeskUpdate.update_id, DeskUpdate.body).where(
            DeskUpdate.channel == channel
        ).order_by(DeskUpdate.id)
        return [(str(u), dict(b)) for u, b in (await self.session.execute(stmt)).all()]
