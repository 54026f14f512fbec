"""SQLAlchemy 2 models: the help line's whole schema.

Timestamps are timezone-aware UTC and come from a default factory at insert time, never from
import time. Texts a child wrote live only in `messages` and `cases.answers`, so `/forget` and the
retention purge know exactly what to erase.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.crypto import EncryptedJSON, EncryptedJSONFromPlain, EncryptedText


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as aware UTC (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class User(Base):
    """A person writing to the bot on one channel. `external_id` is a keyed hash of their
    platform id; `address` (where replies go) is encrypted, `address_hash` finds it."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(EncryptedText)
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    locale: Mapped[str] = mapped_column(String(8), default="ru")
    locale_fixed: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str | None] = mapped_column(String(16), default=None)
    notice_shown: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """Where a user is in the dialog: flow, state, collected answers, a saved resume point."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    flow: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    # Encrypted since 0007; rows from before it hold plain JSON until their next save.
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSONFromPlain, default=dict)
    resume_flow: Mapped[str | None] = mapped_column(String(32), default=None)
    resume_state: Mapped[str | None] = mapped_column(String(32), default=None)
    case_id: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """One line of a transcript. `sender` is child, bot, counsellor or note (never sent)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), default=None, index=True
    )
    sender: Mapped[str] = mapped_column(String(16))
    counsellor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    text: Mapped[str] = mapped_column(EncryptedText, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """A request for a person: what happened, how urgent, who holds it and how it ended."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_queue", "status", "risk_rank", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    channel: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    risk: Mapped[str] = mapped_column(String(16))
    risk_rank: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    signals: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answers: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("counsellors.id", ondelete="SET NULL"), default=None
    )
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    rating_comment: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    desk_thread_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The desk's minute sweep: when the case was last re-announced to the desk, and when the
    # waiting child was last told their place in the queue (each at most once per interval).
    last_announced_at: Mapped[datetime | None] = mapped_column(default=None)
    child_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    # The Telegram desk's messages for the case, kept here (never in a worker's memory) so a
    # restart or another worker edits and unpins them instead of posting them again. A claim is
    # taken in the database before the Bot API call that creates a message and its id saved
    # right after it (see bot/telegram/desk.py): the claim on the topic covers its card too.
    # Each claim names its worker as the outbox's do (`OutboxMessage.claimed_by`), so a live
    # worker gives back a dead one's at once instead of waiting for it to go stale.
    desk_topic_claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    desk_topic_claimed_by: Mapped[int | None] = mapped_column(Integer, default=None)
    desk_card_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    desk_announcement_claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    desk_announcement_claimed_by: Mapped[int | None] = mapped_column(Integer, default=None)
    desk_announcement_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    desk_announcement_pinned_at: Mapped[datetime | None] = mapped_column(default=None)
    # The staff group (Telegram chat id) the case's topic lives in, chosen with its first topic
    # under the topic claim and never changed. None with a topic: a case made before the group
    # was kept, which lives in the first group of TELEGRAM_STAFF_CHAT_ID.
    desk_chat_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Attachment(Base):
    """Evidence a child sent: the platform's file reference and, once fetched, the stored file."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), default=None, index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    file_ref: Mapped[str] = mapped_column(EncryptedText)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    mime: Mapped[str | None] = mapped_column(String(64), default=None)
    stored_path: Mapped[str | None] = mapped_column(String(512), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counsellor(Base):
    """Staff registered by an administrator; nobody else may act on the desk."""

    __tablename__ = "counsellors"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="counsellor")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did or saw what to which case, and when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counsellor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    case_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(EncryptedText, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxUpdate(Base):
    """An inbound update, stored before the platform is told it arrived, so a crash while
    handling it loses nothing: unprocessed rows are handled again after a restart."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "update_id"),
        Index("ix_inbox_pending", "processed_at", "id"),
        Index("ix_inbox_chat", "channel", "chat_key", "processed_at", "id"),
        # A handled entry is deleted: an id is never given again (ids are held in memory by
        # the mailbox and the danger lane), as on PostgreSQL's sequences.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    # The chat's mailbox (bot/mailbox.py): a keyed hash of the chat id, the same as the outbox's
    # `chat_id` column, so a chat's journal and its replies are found together. The raw id lives
    # only in the encrypted body. None on rows journalled before 0005 (recovery fills it in).
    chat_key: Mapped[str | None] = mapped_column(String(64), default=None)
    body: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)


class DeskUpdate(Base):
    """A staff-group update (a counsellor's button press, message or command) kept until it
    is handled, so that polling can confirm it to Telegram at once instead of holding every
    later update back behind it (`bot/telegram/polling.py`). Deleted once handled; rows left
    by a crash are handled at the next start."""

    __tablename__ = "desk_updates"
    __table_args__ = (UniqueConstraint("channel", "update_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedUpdate(Base):
    """Platform update ids already taken in, so a repeated update is ignored."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """A message waiting to be delivered, so nothing a counsellor writes is silently dropped."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "channel", "delivered_at", "id"),
        # A chat's undelivered messages in order: every send checks that none older waits.
        Index("ix_outbox_chat", "channel", "chat_id", "delivered_at", "id"),
        # A delivered message is deleted: an id is never given again (senders hold ids in
        # memory), as on PostgreSQL's sequences.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON, default=dict)
    case_id: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    # Which worker holds the claim (PostgreSQL: its presence connection's backend pid,
    # `storage.advisory.Presence`): a live worker gives a dead one's claims back at once
    # instead of waiting for `claimed_until`. None on SQLite and for a process that sends
    # without joining the workers.
    claimed_by: Mapped[int | None] = mapped_column(Integer, default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)


class StaffCredential(Base):
    """A counsellor's web-console sign-in: an argon2 password hash, an optional TOTP secret
    (encrypted at rest) and the failed attempts behind the lockout. No row: no web sign-in."""

    __tablename__ = "staff_credentials"

    counsellor_id: Mapped[int] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    # The last TOTP time step accepted, so a code cannot be used twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in web-console session. Only a SHA-256 of the cookie's token is stored, so the
    table alone cannot be used to sign in; `csrf_token` is checked on every form."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    counsellor_id: Mapped[int] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Block(Base):
    """A user blocked for abusing the line, by a counsellor, with a reason and an expiry.

    Keyed by the channel and the keyed hash of the platform id (as `users.external_id`), so a
    block outlives `/forget`. A blocked user gets one neutral reply (`notified_at`); danger
    signals from them still reach a supervisor."""

    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_identity", "channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    case_id: Mapped[int | None] = mapped_column(Integer, default=None)
    counsellor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str] = mapped_column(EncryptedText, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime] = mapped_column()
    lifted_at: Mapped[datetime | None] = mapped_column(default=None)
    lifted_by: Mapped[int | None] = mapped_column(Integer, default=None)
    notified_at: Mapped[datetime | None] = mapped_column(default=None)


class RateBucket(Base):
    """A token bucket of a platform's send limit, shared by every worker (PostgreSQL): the
    tokens left and when they were counted. Keys name the bot-wide limit, a chat or a group;
    a chat's key is a keyed hash of its id."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseRead(Base):
    """How far one counsellor has read one case's transcript: the id of the last line they saw.
    The web console's unread counts are the child's lines after it. Ids only, no content."""

    __tablename__ = "case_reads"

    counsellor_id: Mapped[int] = mapped_column(
        ForeignKey("counsellors.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    last_message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=0
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
