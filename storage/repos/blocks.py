"""Blocks of abusive users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update

from storage.models import (
    Block,
)
from storage.repos.base import BLOCK_ANSWERS, _Repo


def active_block(*what: Any, channel: Any = None, external_id: Any = None) -> Any:
    """The block in force at `b_now` (the longest-lasting) for a user: the bound `b_channel`
    and `b_external_id`, or the given columns (a subquery correlated with `users`)."""
    return (
        select(*what)
        .where(
            Block.channel == (bindparam("b_channel") if channel is None else channel),
            Block.external_id == (
                bindparam("b_external_id") if external_id is None else external_id),
            Block.lifted_at.is_(None),
            Block.until > bindparam("b_now"),
        )
        .order_by(Block.until.desc())
        .limit(1)
    )


# Built once: every turn asks whether its user is blocked (`blocking`, the id alone: no row
# loaded into the session for the common answer, none).
_ACTIVE = active_block(Block)
_ACTIVE_ID = active_block(Block.id)


class BlockRepo(_Repo):
    """Users blocked for abusing the line."""

    async def add(
        self,
        *,
        channel: str,
        external_id: str,
        user_id: int | None,
        case_id: int | None,
        counsellor_id: int,
        reason: str,
        until: datetime,
    ) -> Block:
        block = Block(
            channel=channel,
            external_id=external_id,
            user_id=user_id,
            case_id=case_id,
            counsellor_id=counsellor_id,
            reason=reason,
            until=until,
        )
        self.session.add(block)
        await self.session.flush()
        self.session.info.pop(BLOCK_ANSWERS, None)  # the turn's answer is stale now
        return block

    async def active_for(self, channel: str, external_id: str, now: datetime) -> Block | None:
        """The block in force for this user (the longest-lasting if several), or None."""
        params = {"b_channel": channel, "b_external_id": external_id, "b_now": now}
        return (await self.session.execute(_ACTIVE, params)).scalar_one_or_none()

    async def blocking(self, channel: str, external_id: str, now: datetime) -> int | None:
        """The id of `active_for`'s block, read as a plain row (a Core select, no ORM object):
        the question every turn asks. Answered without a statement when this session's
        `UserRepo.with_conversation` read it already (once)."""
        answers = self.session.info.get(BLOCK_ANSWERS)
        if answers and (channel, external_id) in answers:
            return answers.pop((channel, external_id))  # type: ignore[no-any-return]
        params = {"b_channel": channel, "b_external_id": external_id, "b_now": now}
        row = (await self._core(_ACTIVE_ID, params)).first()
        return None if row is None else int(row[0])

    async def mark_notified(self, block_id: int, now: datetime) -> bool:
        """True once per block: the first caller sends the neutral reply."""
        result = await self.session.execute(
            update(Block)
            .where(Block.id == block_id, Block.notified_at.is_(None))
            .values(notified_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def lift(self, block_id: int, counsellor_id: int, now: datetime) -> bool:
        self.session.info.pop(BLOCK_ANSWERS, None)
        result = await self.session.execute(
            update(Block)
            .where(Block.id == block_id, Block.lifted_at.is_(None))
            .values(lifted_at=now, lifted_by=counsellor_id)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def purge_ended_before(self, moment: datetime) -> int:
        """Blocks that ended (lifted, or run out) before `moment`: their reason and the keyed
        identity go; the audit trail keeps that a block happened."""
        result = await self.session.execute(
            delete(Block).where(
                or_(Block.lifted_at < moment, Block.until < moment)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def in_force(self, now: datetime) -> Sequence[Block]:
        stmt = select(Block).where(Block.lifted_at.is_(None), Block.until > now)
        return (await self.session.execute(stmt.order_by(Block.id))).scalars().all()
