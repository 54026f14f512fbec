"""People writing to the bot, and erasing them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, or_, select, update

from storage import crypto
from storage.models import (
    Attachment,
    AuditEvent,
    Block,
    Case,
    Conversation,
    InboxUpdate,
    Message,
    OutboxMessage,
    User,
    utcnow,
)
from storage.repos.base import (
    BLOCK_ANSWERS,
    LEFT,
    OPEN_STATUSES,
    CaseStatus,
    _address_hash,
    _Repo,
)
from storage.repos.blocks import active_block

# Statements of every turn, built once (their construction and cache key are not paid again).
_FIND = select(User).where(
    User.channel == bindparam("b_channel"), User.external_id == bindparam("b_external_id")
)

# The block in force for the user (`BlockRepo.blocking`'s question), as a column of the
# turn's first read: every turn asks it, and it is one round trip less.
_BLOCKED = active_block(
    Block.id, channel=User.channel, external_id=User.external_id
).scalar_subquery()

# The user and their conversation in one read. PostgreSQL cannot lock the nullable side of an
# outer join: there the join is inner, and a user without a conversation is read on its own.
_WITH_CONVERSATION = (
    select(User, Conversation, _BLOCKED)
    .outerjoin(Conversation, Conversation.user_id == User.id)
    .where(User.channel == bindparam("b_channel"), User.external_id == bindparam("b_external_id"))
)
_WITH_CONVERSATION_PG = (
    select(User, Conversation, _BLOCKED)
    .join(Conversation, Conversation.user_id == User.id)
    .where(User.channel == bindparam("b_channel"), User.external_id == bindparam("b_external_id"))
    .with_for_update(of=Conversation)
)

DESK_CHANNEL = "desk"  # dialogs.messages.DESK: the desk's notices, addressed by case id


class UserRepo(_Repo):
    async def find(self, channel: str, external_id: str) -> User | None:
        """Find a user by their platform id (stored only as a keyed hash)."""
        hashed = crypto.current().hash_id(f"user:{channel}", external_id)
        params = {"b_channel": channel, "b_external_id": hashed}
        return (await self.session.execute(_FIND, params)).scalar_one_or_none()

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

    async def with_conversation(
        self, channel: str, external_id: str, address: str, locale: str,
        now: datetime | None = None,
    ) -> tuple[User, Conversation | None]:
        """`get_or_create` and the user's conversation (locked on PostgreSQL, as
        `ConversationRepo.for_user` locks it), read in one statement when both exist: a
        turn's first reads. The same statement answers whether a block is in force at `now`
        (default: the current time); `BlockRepo.blocking` takes that answer once, in this
        session, instead of asking the database again."""
        hashed = crypto.current().hash_id(f"user:{channel}", external_id)
        params = {"b_channel": channel, "b_external_id": hashed, "b_now": now or utcnow()}
        stmt = _WITH_CONVERSATION_PG if self.dialect == "postgresql" else _WITH_CONVERSATION
        row = (await self.session.execute(stmt, params)).first()
        if row is None:  # a new user, or (PostgreSQL) one without a conversation yet
            user, _created = await self.get_or_create(channel, external_id, address, locale)
            return user, None
        user, conv, blocked = row
        self.session.info.setdefault(BLOCK_ANSWERS, {})[(channel, hashed)] = blocked
        if user.address != address:
            user.address = address
            user.address_hash = _address_hash(channel, address)
        return user, conv

    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def mark_unreachable(self, channel: str, address: str) -> None:
        await self.session.execute(
            update(User)
            .where(User.channel == channel, User.address_hash == _address_hash(channel, address))
            .values(unreachable=True)
        )

    async def erase(self, user_id: int) -> list[str]:
        """Erase everything a user told us, in every table: messages (notes included),
        answers and evidence, the journal's copies of their updates, the outbox's copies of the
        replies to them and of the desk notices quoting them, the free text of their cases'
        audit trail; their cases keep anonymous counts only (an open one is closed as "child
        erased their data"). Returns the stored evidence files, for the caller to delete."""
        user = await self.get(user_id)
        if user is None:
            return []
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
        cases = select(Case.id).where(Case.user_id == user_id).scalar_subquery()
        await self._erase_copies(user, cases)
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

    async def purge_idle_before(self, moment: datetime) -> int:
        """Delete the people not seen since `moment` of whom nothing else is kept (retention):
        no conversation, message or evidence left, no case open or closed since `moment`.
        Their platform address goes with them; their closed cases stay, anonymous (no user),
        and a block stays (it is keyed by the hashed platform id)."""
        kept_case = exists().where(
            Case.user_id == User.id,
            or_(
                Case.status != CaseStatus.CLOSED,
                Case.closed_at.is_(None),
                Case.closed_at >= moment,
            ),
        )
        idle = select(User.id).where(
            User.last_seen_at < moment,
            ~kept_case,
            ~exists().where(Conversation.user_id == User.id),
            ~exists().where(Message.user_id == User.id),
            ~exists().where(Attachment.user_id == User.id),
        )
        ids = list((await self.session.execute(idle)).scalars())
        if not ids:
            return 0
        await self.session.execute(update(Case).where(Case.user_id.in_(ids)).values(user_id=None))
        await self.session.execute(
            update(Block).where(Block.user_id.in_(ids)).values(user_id=None)
        )
        await self.session.execute(delete(User).where(User.id.in_(ids)))
        return len(ids)

    async def _erase_copies(self, user: User, cases: Any) -> None:
        """The copies outside the user's own rows: journal, outbox, audit detail text."""
        key = _address_hash(user.channel, user.address)
        await self.session.execute(
            delete(InboxUpdate).where(InboxUpdate.channel == user.channel,
                                      InboxUpdate.chat_key == key)
        )
        await self.session.execute(
            delete(OutboxMessage).where(
                or_(
                    and_(OutboxMessage.channel == user.channel, OutboxMessage.chat_id == key),
                    and_(OutboxMessage.channel == DESK_CHANNEL, OutboxMessage.case_id.in_(cases)),
                )
            )
        )
        # Who did what and when stays; what was written (notes, reasons, risk notes) goes.
        await self.session.execute(
            update(AuditEvent).where(AuditEvent.case_id.in_(cases)).values(detail="")
        )
