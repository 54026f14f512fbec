"""Transcript lines of children, counsellors and the bot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update

from storage.models import (
    Case,
    Message,
)
from storage.repos.base import CaseStatus, _Repo

# Statements built once: triage's context on every typed message (the child's recent texts,
# only the column: no transcript rows loaded), and the latest line's id.
_RECENT_CHILD_TEXTS = (
    select(Message.text)
    .where(
        Message.user_id == bindparam("b_user"),
        Message.sender == "child",
        Message.created_at >= bindparam("b_since", type_=Message.__table__.c.created_at.type),
        Message.id > bindparam("b_after"),
    )
    .order_by(Message.id.desc())
    .limit(bindparam("b_limit"))
)
_LAST_ID = select(func.max(Message.id)).where(Message.user_id == bindparam("b_user"))


class MessageRepo(_Repo):
    async def add(
        self,
        user_id: int,
        sender: str,
        text: str,
        *,
        case_id: int | None = None,
        counsellor_id: int | None = None,
        created_at: datetime | None = None,
    ) -> Message:
        msg = Message(
            user_id=user_id, sender=sender, text=text, case_id=case_id, counsellor_id=counsellor_id
        )
        if created_at is not None:
            msg.created_at = created_at
        self.session.add(msg)
        return msg

    async def last_id(self, user_id: int) -> int:
        """The id of the user's latest transcript line (0 when there is none)."""
        # Through the session: its autoflush counts a line added in this unit and not yet
        # written.
        result = await self.session.execute(_LAST_ID, {"b_user": user_id})
        return int(result.scalar_one_or_none() or 0)

    async def recent_child_texts(
        self, user_id: int, since: datetime, limit: int, after_id: int = 0
    ) -> list[str]:
        """The child's last ``limit`` texts written since ``since`` (and after message
        ``after_id``), oldest first: triage reads them as the conversation's context."""
        params = {"b_user": user_id, "b_since": since, "b_after": after_id, "b_limit": limit}
        rows = (await self._core(_RECENT_CHILD_TEXTS, params)).all()
        return [str(row[0]) for row in reversed(rows)]

    async def for_case(self, case_id: int) -> Sequence[Message]:
        stmt = select(Message).where(Message.case_id == case_id).order_by(Message.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def for_user(self, user_id: int) -> Sequence[Message]:
        stmt = select(Message).where(Message.user_id == user_id).order_by(Message.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def attach_recent_to_case(self, user_id: int, case_id: int) -> None:
        """Link the user's messages not yet in a case to this case (the context it grew from)."""
        await self.session.execute(
            update(Message)
            .where(Message.user_id == user_id, Message.case_id.is_(None))
            .values(case_id=case_id)
        )

    async def purge_loose_before(self, moment: datetime) -> int:
        """Delete messages that never became part of a case, older than `moment`."""
        result = await self.session.execute(
            delete(Message).where(Message.case_id.is_(None), Message.created_at < moment)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_closed_before(self, moment: datetime) -> int:
        """Delete transcripts of cases closed before `moment`."""
        closed = select(Case.id).where(Case.status == CaseStatus.CLOSED, Case.closed_at < moment)
        result = await self.session.execute(delete(Message).where(Message.case_id.in_(closed)))
        return int(getattr(result, "rowcount", 0) or 0)
