"""The outbox: replies written in the turn's transaction, delivered by the worker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from storage.driver import Statements
from storage.models import (
    OutboxMessage,
    utcnow,
)
from storage.repos.base import _address_hash, _aware, _Repo

# The statements of every reply, built once (their construction and cache key are not paid
# again).
_WRITE = (
    insert(OutboxMessage)
    .values(
        channel=bindparam("b_channel"),
        chat_id=bindparam("b_chat"),
        body=bindparam("b_body"),
        case_id=bindparam("b_case"),
        claimed_until=bindparam("b_claimed"),
        claimed_by=bindparam("b_by"),
        attempts=bindparam("b_attempts"),
        created_at=bindparam("b_created"),
    )
    .returning(OutboxMessage.id)
)


def _write_if_idle() -> Any:
    """`_WRITE` of a message that is claimed (`b_claimed`, one attempt counted) only if
    nothing undelivered (nor given up on) waits for its chat: the question and the insert in
    one statement. Returns the id and the attempts (1: claimed)."""
    waiting = aliased(OutboxMessage, name="waiting")
    busy = (
        select(waiting.id)
        .where(
            waiting.channel == bindparam("b_channel"),
            waiting.chat_id == bindparam("b_chat"),
            waiting.delivered_at.is_(None),
            waiting.failed_at.is_(None),
        )
        .exists()
    )
    idle = select((~busy).label("idle")).subquery("chat")
    table = OutboxMessage.__table__
    columns = ("channel", "chat_id", "body", "case_id", "created_at")
    names = ("b_channel", "b_chat", "b_body", "b_case", "b_created")
    row = select(
        *(bindparam(n, type_=table.c[c].type) for c, n in zip(columns, names, strict=True)),
        case((idle.c.idle, bindparam("b_claimed", type_=table.c.claimed_until.type)),
             else_=null()),
        case((idle.c.idle, bindparam("b_by", type_=table.c.claimed_by.type)), else_=null()),
        case((idle.c.idle, 1), else_=0),
    ).select_from(idle)
    return (
        insert(OutboxMessage)
        .from_select([*columns, "claimed_until", "claimed_by", "attempts"], row)
        .returning(OutboxMessage.id, OutboxMessage.attempts)
    )


_WRITE_IF_IDLE = _write_if_idle()
# Delivered: a batch of messages deleted (PostgreSQL: the ids as one array parameter, so the
# statement is built and prepared once whatever the batch's size).
# SQLite has no array parameter: a batch of marks is one statement with a placeholder per id,
# built once for each size up to `_MARKS_AT_ONCE` (bigger batches go in chunks).
_MARKS_AT_ONCE = 32
_DELIVERED_SQLITE: dict[int, Any] = {}


def _delivered(count: int) -> Any:
    stmt = _DELIVERED_SQLITE.get(count)
    if stmt is None:
        stmt = _DELIVERED_SQLITE[count] = delete(OutboxMessage).where(
            OutboxMessage.id.in_([bindparam(f"b_id{i}") for i in range(count)]),
            OutboxMessage.delivered_at.is_(None),
        )
    return stmt


_DELIVERED_PG = delete(OutboxMessage).where(
    OutboxMessage.id == any_(bindparam("b_ids", type_=ARRAY(BigInteger))),
    OutboxMessage.delivered_at.is_(None),
)


async def mark_delivered_many(on: Statements, message_ids: Sequence[int]) -> None:
    """`OutboxRepo.mark_delivered_many`, where `on` runs it (a repository's session, or
    `Database.lone`)."""
    if on.dialect == "postgresql":
        await on.run(_DELIVERED_PG, {"b_ids": list(message_ids)})
        return
    ids = list(message_ids)
    for start in range(0, len(ids), _MARKS_AT_ONCE):  # SQLite: a statement per size, built once
        chunk = ids[start:start + _MARKS_AT_ONCE]
        await on.run(_delivered(len(chunk)), {f"b_id{i}": m for i, m in enumerate(chunk)})


def claims_given_back(live: Any = None) -> Any:
    """Every claim on an undelivered reply (not one given up on), given back: due again at
    once for any sender. `live` (a query of worker ids): only the claims of workers not in it
    (`storage.advisory.Presence.release_dead`); None: all of them (`release_all`)."""
    held = [] if live is None else [OutboxMessage.claimed_by.is_not(None),
                                    OutboxMessage.claimed_by.not_in(live)]
    return (
        update(OutboxMessage)
        .where(
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.claimed_until.is_not(None),
            *held,
        )
        .values(claimed_until=None, claimed_by=None)
    )


def _message(
    channel: str,
    chat_id: str,
    body: dict[str, Any],
    case_id: int | None,
    claimed_until: datetime | None,
    worker: int | None,
) -> dict[str, Any]:
    """The parameters `_WRITE` and `_WRITE_IF_IDLE` share."""
    return {
        "b_channel": channel,
        "b_chat": _address_hash(channel, chat_id),
        "b_body": body,
        "b_case": case_id,
        "b_claimed": claimed_until,
        "b_by": None if claimed_until is None else worker,
        "b_created": utcnow(),
    }


class OutboxRepo(_Repo):
    async def add(
        self, channel: str, chat_id: str, body: dict[str, Any], case_id: int | None = None
    ) -> OutboxMessage:
        """`write`, returning the row (for tools and tests that look at it or change it)."""
        row = await self.session.get(OutboxMessage, await self.write(channel, chat_id, body,
                                                                      case_id))
        assert row is not None
        return row

    async def write(
        self,
        channel: str,
        chat_id: str,
        body: dict[str, Any],
        case_id: int | None = None,
        *,
        claimed_until: datetime | None = None,
    ) -> int:
        """A message to send, in one INSERT (no unit-of-work flush); returns its id. With
        `claimed_until`, written already taken by the sender that will send it at commit (one
        attempt counted, as `claim` counts it). The address itself travels only inside the
        encrypted body; the column holds its hash, enough to keep a chat's messages in order."""
        params = _message(channel, chat_id, body, case_id, claimed_until, self.worker)
        params["b_attempts"] = 0 if claimed_until is None else 1
        return int((await self._core(_WRITE, params)).scalar_one())

    async def write_if_idle(
        self,
        channel: str,
        chat_id: str,
        body: dict[str, Any],
        case_id: int | None = None,
        *,
        claimed_until: datetime,
    ) -> tuple[int, bool]:
        """`write`, claimed until `claimed_until` only when the chat is idle (nothing
        undelivered, nor given up on, waits for it), in one statement: the message's id, and
        whether the chat was idle (it was written claimed). On PostgreSQL "idle" is as of the
        statement's start, as a read just before the insert saw it."""
        params = _message(channel, chat_id, body, case_id, claimed_until, self.worker)
        row: Any = (await self._core(_WRITE_IF_IDLE, params)).one()
        return int(row[0]), row[1] == 1

    async def pending(
        self, channel: str, chat_id: str | None = None, limit: int = 100
    ) -> Sequence[OutboxMessage]:
        stmt = select(OutboxMessage).where(
            OutboxMessage.channel == channel,
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.failed_at.is_(None),
        )
        if chat_id is not None:
            stmt = stmt.where(OutboxMessage.chat_id == _address_hash(channel, chat_id))
        return (
            (await self.session.execute(stmt.order_by(OutboxMessage.id).limit(limit)))
            .scalars()
            .all()
        )

    async def purge_done_before(self, moment: datetime) -> int:
        """Delete delivered (or permanently failed) messages older than `moment`."""
        result = await self.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.created_at < moment,
                (OutboxMessage.delivered_at.is_not(None)) | (OutboxMessage.failed_at.is_not(None)),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def oldest_pending(self) -> datetime | None:
        """When the oldest message not yet delivered (nor given up on) was written."""
        stmt = select(func.min(OutboxMessage.created_at)).where(
            OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)
        )
        return _aware((await self.session.execute(stmt)).scalar_one())

    async def backlog(self) -> int:
        stmt = select(func.count(OutboxMessage.id)).where(
            OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def due(
        self, channels: Sequence[str], now: datetime, limit: int = 200
    ) -> Sequence[OutboxMessage]:
        """Undelivered messages whose time has come, oldest first, for these channels."""
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.channel.in_(channels),
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                (OutboxMessage.next_attempt_at.is_(None)) | (OutboxMessage.next_attempt_at <= now),
                (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def earlier_pending(self, message: OutboxMessage) -> bool:
        """Is an older message to the same chat still undelivered? (Order per chat.)"""
        stmt = select(func.count(OutboxMessage.id)).where(
            OutboxMessage.channel == message.channel,
            OutboxMessage.chat_id == message.chat_id,
            OutboxMessage.id < message.id,
            OutboxMessage.delivered_at.is_(None),
            OutboxMessage.failed_at.is_(None),
        )
        return int((await self.session.execute(stmt)).scalar_one()) > 0

    async def claim(self, message_id: int, now: datetime, until: datetime) -> bool:
        """Atomically take a message for sending, so two workers never send it both."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.delivered_at.is_(None),
                (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until < now),
            )
            .values(claimed_until=until, claimed_by=self.worker,
                    attempts=OutboxMessage.attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_in_turn(self, message_id: int, now: datetime, until: datetime) -> bool:
        """`claim`, only if no older message to the same chat is undelivered (its turn has
        come): one statement for the common case of a chat with nothing waiting."""
        older = aliased(OutboxMessage)
        earlier = (
            select(older.id)
            .where(
                older.channel == OutboxMessage.channel,
                older.chat_id == OutboxMessage.chat_id,
                older.id < OutboxMessage.id,
                older.delivered_at.is_(None),
                older.failed_at.is_(None),
            )
            .exists()
        )
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until < now),
                ~earlier,
            )
            .values(claimed_until=until, claimed_by=self.worker,
                    attempts=OutboxMessage.attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def reschedule(self, message_id: int, at: datetime, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=at, claimed_until=None, last_error=error[:200])
        )

    async def mark_failed(self, message_id: int, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(failed_at=utcnow(), claimed_until=None, last_error=error[:200])
        )

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def mark_delivered_many(self, message_ids: Sequence[int]) -> None:
        """`mark_delivered` for many messages in one statement (a batch of senders)."""
        if self.dialect == "postgresql":
            await mark_delivered_many(self, message_ids)
            return
        await self.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.id.in_(message_ids), OutboxMessage.delivered_at.is_(None)
            )
        )

    async def extend_claims(self, message_ids: Sequence[int], until: datetime) -> None:
        """Renew live claims (a send waiting for its turn): not one that was delivered, failed,
        rescheduled or given back meanwhile."""
        await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(message_ids),
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.claimed_until.is_not(None),
            )
            .values(claimed_until=until)
        )

    async def release(self, message_ids: Sequence[int]) -> None:
        """Give back claims that will not be used now: due again at once, for any sender."""
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids), OutboxMessage.delivered_at.is_(None))
            .values(claimed_until=None)
        )

    async def release_all(self) -> int:
        """Give back every claim on an undelivered message: at the start of the only worker
        (`bot.app.App.take_over`), every claim is a dead process's, whose lease would
        otherwise hold the chat (a danger reply and its alert among them) until it ran out.
        Returns how many."""
        result = await self.session.execute(claims_given_back())
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_delivered(self, message_id: int) -> None:
        """A delivered message is deleted: nothing reads it again (a send waits only for its
        chat's undelivered messages), its words and the recipient's address go at once (a copy
        kept until the outbox's retention would outlive a child's /forget, whose confirming
        reply is written after it), and its space is reused at once (a row kept with its body
        emptied still holds its pages: about 11 MB per 1,000 conversations on SQLite).
        Idempotent: a second mark finds nothing. What failed for good stays for the operators
        until the retention purge."""
        await self.mark_delivered_many([message_id])
