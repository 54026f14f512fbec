"""A conversation's flow, state and answers (one per user)."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import (
    Conversation,
)
from storage.repos.base import _Repo


class ConversationRepo(_Repo):
    async def for_user(self, user_id: int, *, lock: bool = True) -> Conversation | None:
        stmt = select(Conversation).where(Conversation.user_id == user_id)
        if lock and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def create(self, user_id: int, flow: str, state: str) -> Conversation:
        conv = Conversation(user_id=user_id, flow=flow, state=state, data={})
        self.session.add(conv)
        await self.session.flush()
        return conv

    async def for_case(self, case_id: int) -> Conversation | None:
        stmt = select(Conversation).where(Conversation.case_id == case_id)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
