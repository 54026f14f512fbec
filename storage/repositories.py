"""Repositories: the only place that builds queries. Each works inside one caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage import crypto
from storage.models import (
    Attachment,
    AuditEvent,
    Block,
    Case,
    Conversation,
    Counsellor,
    InboxUpdate,
    Message,
    OutboxMessage,
    ProcessedUpdate,
    StaffCredential,
    User,
    WebSession,
    utcnow,
)

OPEN_STATUSES = ("waiting", "active")
# The child ended the chat (or left): the counsellor is told, their place is freed, and the
# case waits to be closed with an outcome; if the child comes back it returns to the queue.
LEFT = "left"


def _address_hash(channel: str, address: str) -> str:
    return crypto.current().hash_id(f"address:{channel}", address)


def _aware(value: object) -> datetime | None:
    """Aggregates bypass the UTC column type: SQLite hands back strings or naive values."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Repos:
    """All repositories over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepo(session)
        self.conversations = ConversationRepo(session)
        self.messages = MessageRepo(session)
        self.cases = CaseRepo(session)
        self.attachments = AttachmentRepo(session)
        self.counsellors = CounsellorRepo(session)
        self.audit = AuditRepo(session)
        self.updates = UpdateRepo(session)
        self.outbox = OutboxRepo(session)
        self.inbox = InboxRepo(session)
        self.credentials = CredentialRepo(session)
        self.web_sessions = WebSessionRepo(session)
        self.board = BoardRepo(session)
        self.desk = DeskRepo(session)
        self.blocks = BlockRepo(session)

    async def flush(self) -> None:
        await self.session.flush()


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name


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
            .values(status="closed", outcome="child-erased", closed_at=utcnow())
        )
        await self.session.execute(
            update(Case)
            .where(Case.user_id == user_id)
            .values(user_id=None, answers={}, rating_comment=None, signals={})
        )
        await self.session.execute(delete(Conversation).where(Conversation.user_id == user_id))
        await self.session.execute(delete(User).where(User.id == user_id))
        return files


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
        stmt = select(func.max(Message.id)).where(Message.user_id == user_id)
        return int((await self.session.execute(stmt)).scalar_one_or_none() or 0)

    async def recent_child_texts(
        self, user_id: int, since: datetime, limit: int, after_id: int = 0
    ) -> list[str]:
        """The child's last ``limit`` texts written since ``since`` (and after message
        ``after_id``), oldest first: triage reads them as the conversation's context."""
        stmt = (
            select(Message)
            .where(
                Message.user_id == user_id,
                Message.sender == "child",
                Message.created_at >= since,
                Message.id > after_id,
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).scalars().all()
        return [m.text for m in reversed(rows)]

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
        closed = select(Case.id).where(Case.status == "closed", Case.closed_at < moment)
        result = await self.session.execute(delete(Message).where(Message.case_id.in_(closed)))
        return int(getattr(result, "rowcount", 0) or 0)


class CaseRepo(_Repo):
    async def get(self, case_id: int) -> Case | None:
        return await self.session.get(Case, case_id)

    async def open_for_user(self, user_id: int) -> Case | None:
        stmt = (
            select(Case)
            .where(Case.user_id == user_id, Case.status.in_(OPEN_STATUSES))
            .order_by(Case.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def mark_left(self, case_id: int) -> bool:
        """The child ended a chat a counsellor holds: the case says so and frees the place."""
        result = await self.session.execute(
            update(Case).where(Case.id == case_id, Case.status == "active").values(status=LEFT)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def reopen_left(self, user_id: int) -> Case | None:
        """The child who ended a chat is back: their case returns to the queue."""
        stmt = (
            select(Case)
            .where(Case.user_id == user_id, Case.status == LEFT)
            .order_by(Case.id.desc())
            .limit(1)
        )
        case = (await self.session.execute(stmt)).scalar_one_or_none()
        if case is not None:
            case.status, case.owner_id = "waiting", None
        return case

    async def open(
        self,
        *,
        user_id: int,
        channel: str,
        category: str,
        risk: str,
        risk_rank: int,
        answers: dict[str, Any],
        signals: dict[str, Any],
    ) -> Case:
        case = Case(
            user_id=user_id,
            channel=channel,
            category=category,
            risk=risk,
            risk_rank=risk_rank,
            answers=answers,
            signals=signals,
            status="waiting",
        )
        self.session.add(case)
        await self.session.flush()
        return case

    async def queue(self, limit: int = 50) -> Sequence[Case]:
        """Waiting cases: highest risk first, then oldest."""
        stmt = (
            select(Case)
            .where(Case.status == "waiting")
            .order_by(Case.risk_rank, Case.created_at, Case.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def held_by(self, counsellor_id: int) -> Sequence[Case]:
        stmt = select(Case).where(Case.status == "active", Case.owner_id == counsellor_id)
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()

    async def position(self, case: Case) -> int:
        """1-based place of a waiting case in the queue."""
        ahead = select(func.count(Case.id)).where(
            Case.status == "waiting",
            (Case.risk_rank < case.risk_rank)
            | ((Case.risk_rank == case.risk_rank) & (Case.created_at < case.created_at))
            | (
                (Case.risk_rank == case.risk_rank)
                & (Case.created_at == case.created_at)
                & (Case.id < case.id)
            ),
        )
        return int((await self.session.execute(ahead)).scalar_one()) + 1

    async def take(self, case_id: int, counsellor_id: int) -> bool:
        """Atomically give a waiting case to a counsellor; False if someone else was first."""
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == "waiting")
            .values(status="active", owner_id=counsellor_id, taken_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, case_id: int, counsellor_id: int) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == "active", Case.owner_id == counsellor_id)
            .values(status="waiting", owner_id=None)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def close(self, case_id: int, counsellor_id: int, outcome: str) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.status.in_(("active", LEFT)),
                Case.owner_id == counsellor_id,
            )
            .values(status="closed", outcome=outcome, closed_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def queue_stats(self) -> dict[str, tuple[int, datetime | None]]:
        """Per risk: how many cases wait and since when the oldest has waited."""
        stmt = (
            select(Case.risk, func.count(Case.id), func.min(Case.created_at))
            .where(Case.status == "waiting")
            .group_by(Case.risk)
        )
        rows = (await self.session.execute(stmt)).all()
        return {str(risk): (int(count), _aware(oldest)) for risk, count, oldest in rows}

    async def strip_closed_before(self, moment: datetime) -> None:
        """Drop the answers of cases closed before `moment`; category, risk and times stay."""
        await self.session.execute(
            update(Case)
            .where(Case.status == "closed", Case.closed_at < moment)
            .values(answers={}, rating_comment=None)
        )

    async def closed_between(self, start: datetime, end: datetime) -> Sequence[Case]:
        stmt = select(Case).where(Case.created_at >= start, Case.created_at < end)
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()

    async def set_desk_thread(self, case_id: int, thread_id: int | None) -> None:
        """Remember the staff-group topic (forum thread) where a case is discussed."""
        await self.session.execute(
            update(Case).where(Case.id == case_id).values(desk_thread_id=thread_id)
        )

    async def by_desk_thread(self, thread_id: int) -> Case | None:
        """The case discussed in a staff-group topic; the newest if a thread id was reused."""
        stmt = (
            select(Case).where(Case.desk_thread_id == thread_id).order_by(Case.id.desc()).limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()


class AttachmentRepo(_Repo):
    async def add(
        self,
        *,
        user_id: int,
        channel: str,
        kind: str,
        file_ref: str,
        size: int | None,
        mime: str | None,
        case_id: int | None = None,
    ) -> Attachment:
        att = Attachment(
            user_id=user_id,
            channel=channel,
            kind=kind,
            file_ref=file_ref,
            size=size,
            mime=mime,
            case_id=case_id,
        )
        self.session.add(att)
        await self.session.flush()
        return att

    async def bind_pending(self, user_id: int, case_id: int) -> None:
        await self.session.execute(
            update(Attachment)
            .where(Attachment.user_id == user_id, Attachment.case_id.is_(None))
            .values(case_id=case_id)
        )

    def _closed_before(self, moment: datetime) -> Any:
        return select(Case.id).where(Case.status == "closed", Case.closed_at < moment)

    async def stale_files(self, moment: datetime) -> list[str]:
        stmt = select(Attachment.stored_path).where(
            Attachment.case_id.in_(self._closed_before(moment)),
            Attachment.stored_path.is_not(None),
        )
        return [str(p) for p in (await self.session.execute(stmt)).scalars().all()]

    async def purge_closed_before(self, moment: datetime) -> int:
        result = await self.session.execute(
            delete(Attachment).where(Attachment.case_id.in_(self._closed_before(moment)))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def for_case(self, case_id: int) -> Sequence[Attachment]:
        stmt = select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def for_user(self, user_id: int) -> Sequence[Attachment]:
        stmt = select(Attachment).where(Attachment.user_id == user_id).order_by(Attachment.id)
        return (await self.session.execute(stmt)).scalars().all()


class CounsellorRepo(_Repo):
    async def add(self, name: str, channel: str, external_id: str, role: str) -> Counsellor:
        c = Counsellor(name=name, channel=channel, external_id=external_id, role=role)
        self.session.add(c)
        await self.session.flush()
        return c

    async def by_identity(self, channel: str, external_id: str) -> Counsellor | None:
        stmt = select(Counsellor).where(
            Counsellor.channel == channel,
            Counsellor.external_id == external_id,
            Counsellor.active.is_(True),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_name(self, name: str) -> Counsellor | None:
        stmt = select(Counsellor).where(Counsellor.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, counsellor_id: int) -> Counsellor | None:
        return await self.session.get(Counsellor, counsellor_id)

    async def all(self) -> Sequence[Counsellor]:
        return (
            (await self.session.execute(select(Counsellor).order_by(Counsellor.id)))
            .scalars()
            .all()
        )


class AuditRepo(_Repo):
    async def record(
        self, action: str, *, counsellor_id: int | None, case_id: int | None, detail: str = ""
    ) -> None:
        self.session.add(
            AuditEvent(counsellor_id=counsellor_id, case_id=case_id, action=action, detail=detail)
        )

    async def for_case(self, case_id: int) -> Sequence[AuditEvent]:
        stmt = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.id)
        return (await self.session.execute(stmt)).scalars().all()


class OutboxRepo(_Repo):
    async def add(
        self, channel: str, chat_id: str, body: dict[str, Any], case_id: int | None = None
    ) -> OutboxMessage:
        # The address itself travels only inside the encrypted body; the column holds its hash,
        # enough to keep messages to one chat in order.
        msg = OutboxMessage(
            channel=channel, chat_id=_address_hash(channel, chat_id), body=body, case_id=case_id
        )
        self.session.add(msg)
        await self.session.flush()
        return msg

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
            .values(claimed_until=until, attempts=OutboxMessage.attempts + 1)
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

    async def mark_delivered(self, message_id: int) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(delivered_at=utcnow())
        )


class CredentialRepo(_Repo):
    """Web-console sign-in data: password hashes, TOTP secrets, failed attempts and lockouts."""

    async def get(self, counsellor_id: int) -> StaffCredential | None:
        return await self.session.get(StaffCredential, counsellor_id)

    async def set_password(self, counsellor_id: int, password_hash: str) -> StaffCredential:
        """Set (or replace) a password; a new password also lifts a lockout."""
        cred = await self.get(counsellor_id)
        if cred is None:
            cred = StaffCredential(counsellor_id=counsellor_id, password_hash=password_hash)
            self.session.add(cred)
        cred.password_hash = password_hash
        cred.failed_attempts = 0
        cred.locked_until = None
        cred.updated_at = utcnow()
        await self.session.flush()
        return cred

    async def set_totp(self, counsellor_id: int, secret: str | None) -> bool:
        """Turn the second factor on (a new secret) or off (None); False without a password."""
        cred = await self.get(counsellor_id)
        if cred is None:
            return False
        cred.totp_secret = secret
        cred.totp_last_step = None
        cred.updated_at = utcnow()
        return True

    async def failed(self, counsellor_id: int, *, limit: int, lock_until: datetime) -> bool:
        """Count a failed sign-in; at `limit` failures lock the account until `lock_until` and
        start counting again. True when this failure locked it."""
        await self.session.execute(
            update(StaffCredential)
            .where(StaffCredential.counsellor_id == counsellor_id)
            .values(failed_attempts=StaffCredential.failed_attempts + 1)
        )
        result = await self.session.execute(
            update(StaffCredential)
            .where(
                StaffCredential.counsellor_id == counsellor_id,
                StaffCredential.failed_attempts >= limit,
            )
            .values(failed_attempts=0, locked_until=lock_until)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def succeeded(self, counsellor_id: int, totp_step: int | None) -> None:
        values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
        if totp_step is not None:
            values["totp_last_step"] = totp_step
        await self.session.execute(
            update(StaffCredential)
            .where(StaffCredential.counsellor_id == counsellor_id)
            .values(**values)
        )


class WebSessionRepo(_Repo):
    """Web-console sessions, found by the SHA-256 of their cookie token."""

    async def add(
        self, id_hash: str, counsellor_id: int, csrf_token: str, expires_at: datetime
    ) -> WebSession:
        row = WebSession(
            id_hash=id_hash,
            counsellor_id=counsellor_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, id_hash: str) -> WebSession | None:
        return await self.session.get(WebSession, id_hash)

    async def touch(self, id_hash: str, now: datetime, expires_at: datetime) -> None:
        await self.session.execute(
            update(WebSession)
            .where(WebSession.id_hash == id_hash)
            .values(last_seen_at=now, expires_at=expires_at)
        )

    async def delete(self, id_hash: str) -> None:
        await self.session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))

    async def delete_for(self, counsellor_id: int) -> int:
        """Sign a counsellor out everywhere (a new password, a disabled account)."""
        result = await self.session.execute(
            delete(WebSession).where(WebSession.counsellor_id == counsellor_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(delete(WebSession).where(WebSession.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)


class BoardRepo(_Repo):
    """Read-only views for the supervisors' board: who holds what, and the day's cases."""

    async def active(self) -> Sequence[Case]:
        stmt = (
            select(Case)
            .where(Case.status == "active")
            .order_by(Case.owner_id, Case.risk_rank, Case.created_at, Case.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def touched_since(self, moment: datetime) -> Sequence[Case]:
        """Cases opened, taken or closed since `moment`."""
        stmt = select(Case).where(
            (Case.created_at >= moment) | (Case.taken_at >= moment) | (Case.closed_at >= moment)
        )
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One case as a report sees it."""

    category: str
    channel: str
    risk: str
    status: str
    outcome: str | None
    rating: int | None
    created_at: datetime
    taken_at: datetime | None
    first_response_at: datetime | None


class DeskRepo(_Repo):
    """Queries of the desk's operations: capacity, transfers, the minute sweep, wait estimates
    and reports."""

    async def held_count(self, counsellor_id: int) -> int:
        stmt = select(func.count(Case.id)).where(
            Case.status == "active", Case.owner_id == counsellor_id
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def _lock_holder(self, counsellor_id: int) -> None:
        """Serialise one counsellor's takes (PostgreSQL): two concurrent UPDATEs of different
        cases would each count the cases held in their own snapshot and both pass the capacity
        check. In READ COMMITTED the next statement, once this lock is granted, sees what the
        other transaction committed. FOR NO KEY UPDATE: rows referencing the counsellor (audit,
        messages) are not blocked. SQLite writes one transaction at a time anyway."""
        if self.dialect == "postgresql":
            await self.session.execute(
                select(Counsellor.id)
                .where(Counsellor.id == counsellor_id)
                .with_for_update(key_share=True)
            )

    async def take_within(
        self, case_id: int, counsellor_id: int, capacity: int, now: datetime
    ) -> bool:
        """Atomically give a waiting case to a counsellor who holds fewer than `capacity`."""
        await self._lock_holder(counsellor_id)
        held = (
            select(func.count(Case.id))
            .where(Case.status == "active", Case.owner_id == counsellor_id)
            .scalar_subquery()
        )
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == "waiting", held < capacity)
            .values(status="active", owner_id=counsellor_id, taken_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def assign(
        self,
        case_id: int,
        *,
        from_owner: int | None,
        to_owner: int,
        capacity: int,
        now: datetime,
    ) -> bool:
        """Move an open case from its current owner (None: the queue) to another counsellor,
        if nobody changed it meanwhile and the new owner has room."""
        await self._lock_holder(to_owner)
        held = (
            select(func.count(Case.id))
            .where(Case.status == "active", Case.owner_id == to_owner)
            .scalar_subquery()
        )
        owner = Case.owner_id.is_(None) if from_owner is None else Case.owner_id == from_owner
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status.in_(OPEN_STATUSES), owner, held < capacity)
            .values(
                status="active",
                owner_id=to_owner,
                taken_at=func.coalesce(Case.taken_at, now),
                last_announced_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def open_cases(self, limit: int = 200) -> Sequence[Case]:
        """Every waiting and held case: highest risk first, then oldest."""
        stmt = (
            select(Case)
            .where(Case.status.in_(OPEN_STATUSES))
            .order_by(Case.risk_rank, Case.created_at, Case.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def recent_first_responses(self, since: datetime, limit: int = 50) -> list[float]:
        """Minutes from opening to the first counsellor reply, for the latest answered cases."""
        stmt = (
            select(Case.created_at, Case.first_response_at)
            .where(Case.first_response_at.is_not(None), Case.first_response_at >= since)
            .order_by(Case.first_response_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            max(0.0, (answered - created).total_seconds() / 60)
            for created, answered in rows
            if created is not None and answered is not None
        ]

    async def due_announcements(self, before: datetime) -> Sequence[Case]:
        """Cases nobody has answered since `before`: waiting ones, and held ones with no reply
        yet, whose last announcement (or start) is older than that."""
        waiting = (Case.status == "waiting") & (
            func.coalesce(Case.last_announced_at, Case.created_at) <= before
        )
        silent = (
            (Case.status == "active")
            & Case.first_response_at.is_(None)
            & (func.coalesce(Case.last_announced_at, Case.taken_at, Case.created_at) <= before)
        )
        stmt = select(Case).where(waiting | silent).order_by(Case.risk_rank, Case.created_at)
        return (await self.session.execute(stmt)).scalars().all()

    async def due_child_updates(self, before: datetime) -> Sequence[Case]:
        """Waiting cases whose child was last told their place (or joined) before `before`."""
        stmt = (
            select(Case)
            .where(
                Case.status == "waiting",
                Case.user_id.is_not(None),
                func.coalesce(Case.child_updated_at, Case.created_at) <= before,
            )
            .order_by(Case.risk_rank, Case.created_at)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def claim_announcement(self, case_id: int, now: datetime, before: datetime) -> bool:
        """Atomically mark a case announced at `now`, unless another worker just did."""
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.last_announced_at.is_(None) | (Case.last_announced_at <= before),
            )
            .values(last_announced_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_child_update(self, case_id: int, now: datetime, before: datetime) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.child_updated_at.is_(None) | (Case.child_updated_at <= before),
            )
            .values(child_updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def created_between(self, start: datetime, end: datetime) -> Sequence[Case]:
        """Cases opened in [start, end): the rows a report counts."""
        stmt = select(Case).where(Case.created_at >= start, Case.created_at < end)
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()

    async def report_rows(self, start: datetime, end: datetime) -> list[ReportRow]:
        """The plain facts of the cases opened in [start, end): no answers, no transcripts."""
        stmt = (
            select(
                Case.category,
                Case.channel,
                Case.risk,
                Case.status,
                Case.outcome,
                Case.rating,
                Case.created_at,
                Case.taken_at,
                Case.first_response_at,
            )
            .where(Case.created_at >= start, Case.created_at < end)
            .order_by(Case.id)
        )
        return [ReportRow(*row) for row in (await self.session.execute(stmt)).all()]

    async def supervisors(self) -> Sequence[Counsellor]:
        stmt = select(Counsellor).where(
            Counsellor.role == "supervisor", Counsellor.active.is_(True)
        )
        return (await self.session.execute(stmt.order_by(Counsellor.id))).scalars().all()


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
        return block

    async def active_for(self, channel: str, external_id: str, now: datetime) -> Block | None:
        """The block in force for this user (the longest-lasting if several), or None."""
        stmt = (
            select(Block)
            .where(
                Block.channel == channel,
                Block.external_id == external_id,
                Block.lifted_at.is_(None),
                Block.until > now,
            )
            .order_by(Block.until.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def mark_notified(self, block_id: int, now: datetime) -> bool:
        """True once per block: the first caller sends the neutral reply."""
        result = await self.session.execute(
            update(Block)
            .where(Block.id == block_id, Block.notified_at.is_(None))
            .values(notified_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def lift(self, block_id: int, counsellor_id: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(Block)
            .where(Block.id == block_id, Block.lifted_at.is_(None))
            .values(lifted_at=now, lifted_by=counsellor_id)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def in_force(self, now: datetime) -> Sequence[Block]:
        stmt = select(Block).where(Block.lifted_at.is_(None), Block.until > now)
        return (await self.session.execute(stmt.order_by(Block.id))).scalars().all()
