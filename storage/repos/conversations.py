"""A conversation's flow, state and answers (one per user)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select

from storage.models import (
    Case,
    Conversation,
)
from storage.repos.base import CaseStatus, _Repo

# Built once: every turn reads its conversation.
_FOR_USER = select(Conversation).where(Conversation.user_id == bindparam("b_user_id"))
_FOR_USER_LOCKED = _FOR_USER.with_for_update()


class ConversationRepo(_Repo):
    """Lock order (PostgreSQL), the same on every path: the user, then the conversation, then
    the counsellor, then the case. The engine's turn locks the conversation before it reads the
    case; a desk action that moves a child's conversation locks it (`lock_for_case`) before it
    touches the counsellor or the case. SQLite has one writer at a time: nothing to order."""

    async def for_user(self, user_id: int, *, lock: bool = True) -> Conversation | None:
        stmt = _FOR_USER_LOCKED if lock and self.dialect == "postgresql" else _FOR_USER
        return (await self.session.execute(stmt, {"b_user_id": user_id})).scalar_one_or_none()

    async def create(self, user_id: int, flow: str, state: str) -> Conversation:
        conv = Conversation(user_id=user_id, flow=flow, state=state, data={})
        self.session.add(conv)
        await self.session.flush()
        return conv

    async def lock_for_case(self, case_id: int) -> None:
        """Lock the conversation of the case's child, before the case (the lock order)."""
        if self.dialect != "postgresql":
            return
        child = select(Case.user_id).where(Case.id == case_id).scalar_subquery()
        stmt = select(Conversation.id).where(Conversation.user_id == child).with_for_update()
        await self.session.execute(stmt)

    async def for_case(self, case_id: int) -> Conversation | None:
        stmt = select(Conversation).where(Conversation.case_id == case_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def purge_idle_before(self, moment: datetime) -> int:
        """Delete conversations (their data holds typed links and captions) untouched since
        `moment` whose user has no case still open or left; the user starts afresh next time."""
        unclosed = select(Case.user_id).where(
            Case.status != CaseStatus.CLOSED, Case.user_id.is_not(None)
        )
        result = await self.session.execute(
            delete(Conversation).where(
                Conversation.updated_at < moment, Conversation.user_id.not_in(unclosed)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
