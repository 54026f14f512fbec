"""People writing to the bot, and erasing them."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from storage import crypto
from storage.models import (
    Attachment,
    Case,
    Conversation,
    Message,
    User,
    utcnow,
)
from storage.repos.base import LEFT, OPEN_STATUSES, CaseStatus, _address_hash, _Repo


class UserRepo(_Repo):
    async def find(self, channel: str, external_id: str) -> User | None:
        """Find a user by their platform id (stored only as a keyed hash)."""
        hashed = crypto.current().hash_id(f"user:{channel}", external_id)
        stmt = select(User).where(User.channel == channel, User.external_id == hashed)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_or_create(
        self, channel: str, external_id: str, address: str, locale: str
    ) -> tuple[User, bool]:
        user = await self.find(channel, external_id)
        if user is not None:
            if user.address != address:
                user.address = address
                user.address_hash = _address_hash(channel, address)
            return user, False
        user = User(
            channel=channel,
            external_id=crypto.current().hash_id(f"user:{channel}", external_id),
            address=address,
            address_hash=_address_hash(channel, address),
            locale=locale,
        )
        self.session.add(user)
        await self.session.flush()
        return user, True

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def mark_unreachable(self, channel: str, address: str) -> None:
        await self.session.execute(
            update(User)
            .where(User.channel == channel, User.address_hash == _address_hash(channel, address))
            .values(unreachable=True)
        )

    async def erase(self, user_id: int) -> list[str]:
        """Erase a user's messages, answers and evidence; cases keep anonymous counts only.
        Returns the stored evidence files, for the caller to delete."""
        files = [
            str(p)
            for p in (
                await self.session.execute(
                    select(Attachment.stored_path).where(
                        Attachment.user_id == user_id, Attachment.stored_path.is_not(None)
                    )
                )
            ).scalars()
        ]
        await self.session.execute(delete(Message).where(Message.user_id == user_id))
        await self.session.execute(delete(Attachment).where(Attachment.user_id == user_id))
        # A case still open is closed: nobody is left to answer.
        await self.session.execute(
            update(Case)
            .where(Case.user_id == user_id, Case.status.in_((*OPEN_STATUSES, LEFT)))
            .values(status=CaseStatus.CLOSED, outcome="child-erased", closed_at=utcnow())
        )
        await self.session.execute(
            update(Case)
            .where(Case.user_id == user_id)
            .values(user_id=None, answers={}, rating_comment=None, signals={})
        )
        await self.session.execute(delete(Conversation).where(Conversation.user_id == user_id))
        await self.session.execute(delete(User).where(User.id == user_id))
        return files
