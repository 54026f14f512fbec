"""Seams the dialogs depend on, defined here and implemented elsewhere.

- The knowledge base and triage (``KnowledgeSource``, ``Triage``).
- The stores (``UnitOfWork`` → ``Stores``): one transaction per unit, the records it hands out
  are domain records described here. ``storage/`` implements them with SQLAlchemy; ``dialogs/``
  never imports ``storage`` or SQLAlchemy (``tests/test_boundaries.py`` checks).

Records are plain dataclasses (detached: no database behind them). A unit hands out one record
per stored row; what the dialogs change on a record is saved when the unit commits (and is
seen by the unit's later reads). Front-ends hand the desk who acts as a ``Staff`` and, for the
permission table, a case as ``CaseFacts``: anything with those fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from dialogs.taxonomy import Risk, Signal


class StoreUnavailable(RuntimeError):
    """The database could not be reached or failed mid-transaction (the unit was rolled back)."""


class StoreConflict(StoreUnavailable):
    """The database rolled the unit back to break a deadlock or a serialisation conflict: trying
    the same work again is safe and will almost always succeed."""


class CaseStatus(StrEnum):
    """A case's life: waiting in the queue, held by a counsellor, the child left (the counsellor's
    place is freed; the case waits for an outcome, or for the child to come back), closed."""

    WAITING = "waiting"
    ACTIVE = "active"
    LEFT = "left"
    CLOSED = "closed"


OPEN_STATUSES = (CaseStatus.WAITING, CaseStatus.ACTIVE)


@dataclass(slots=True, eq=False)
class UserRecord:
    id: int
    channel: str
    external_id: str
    address: str
    locale: str
    locale_fixed: bool
    role: str | None
    notice_shown: bool
    unreachable: bool
    created_at: datetime
    last_seen_at: datetime


@dataclass(slots=True, eq=False)
class ConversationRecord:
    id: int
    user_id: int
    flow: str
    state: str
    data: dict[str, Any]
    resume_flow: str | None
    resume_state: str | None
    case_id: int | None
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class MessageRecord:
    id: int
    user_id: int
    case_id: int | None
    sender: str
    counsellor_id: int | None
    text: str
    created_at: datetime


@dataclass(slots=True, eq=False)
class CaseRecord:
    id: int
    user_id: int | None
    channel: str
    category: str
    risk: str
    risk_rank: int
    status: str
    signals: dict[str, Any]
    answers: dict[str, Any]
    owner_id: int | None
    outcome: str | None
    rating: int | None
    rating_comment: str | None
    desk_thread_id: int | None
    created_at: datetime
    taken_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    last_announced_at: datetime | None
    child_updated_at: datetime | None


@dataclass(frozen=True, slots=True, eq=False)
class AttachmentRecord:
    id: int
    user_id: int | None
    case_id: int | None
    channel: str
    kind: str
    file_ref: str
    size: int | None
    mime: str | None
    stored_path: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class CounsellorRecord:
    id: int
    name: str
    channel: str
    external_id: str
    role: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class AuditRecord:
    id: int
    counsellor_id: int | None
    case_id: int | None
    action: str
    detail: str
    created_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class BlockRecord:
    id: int
    channel: str
    external_id: str
    user_id: int | None
    case_id: int | None
    counsellor_id: int | None
    reason: str
    created_at: datetime
    until: datetime
    lifted_at: datetime | None
    lifted_by: int | None
    notified_at: datetime | None


class Staff(Protocol):
    """Who acts at a desk, as a front-end hands them over: a counsellor's record, or the
    front-end's own read of them. Read only."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def active(self) -> bool: ...


class CaseFacts(Protocol):
    """What the desk's permission table reads of a case: a record, or a front-end's read of it."""

    @property
    def id(self) -> int: ...
    @property
    def owner_id(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def risk(self) -> str: ...
    @property
    def risk_rank(self) -> int: ...


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


class ArticleLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...
    @property
    def summary(self) -> str: ...
    def chat_pages(self, limit: int = ...) -> Sequence[str]:
        """The summary, then the rest in pages of at most `limit` characters (markdown)."""
        ...


class HitLike(Protocol):
    @property
    def article(self) -> ArticleLike: ...
    @property
    def score(self) -> float: ...
    @property
    def snippet(self) -> str: ...


class KnowledgeSource(Protocol):
    """What the engine needs from the knowledge base."""

    def search(
        self, query: str, locale: str, audience: str | None = None, limit: int = 3
    ) -> Sequence[HitLike]: ...

    def by_topic(
        self, topic: str, locale: str, audience: str | None = None
    ) -> Sequence[ArticleLike]: ...

    def get(self, article_id: str, locale: str) -> ArticleLike | None: ...


class AssessmentLike(Protocol):
    @property
    def danger(self) -> bool: ...
    @property
    def signals(self) -> Sequence[Signal]: ...
    @property
    def category(self) -> str: ...
    @property
    def risk(self) -> Risk: ...
    @property
    def check_in(self) -> bool: ...
    @property
    def about(self) -> str: ...


class Triage(Protocol):
    """Runs on every inbound text before any flow sees it; ``context`` is the same
    conversation's earlier texts, oldest first."""

    def __call__(self, text: str, locale: str, context: Sequence[str] = ()) -> AssessmentLike: ...


class AttachmentStore(Protocol):
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
    ) -> AttachmentRecord: ...
    async def bind_pending(self, user_id: int, case_id: int) -> None: ...
    async def stale_files(self, moment: datetime) -> list[str]: ...
    async def purge_closed_before(self, moment: datetime) -> int: ...
    async def purge_loose_before(self, moment: datetime) -> int: ...
    async def for_case(self, case_id: int) -> Sequence[AttachmentRecord]: ...
    async def for_user(self, user_id: int) -> Sequence[AttachmentRecord]: ...


class AuditStore(Protocol):
    async def record(
        self, action: str, *, counsellor_id: int | None, case_id: int | None, detail: str = ""
    ) -> None: ...
    async def for_case(self, case_id: int) -> Sequence[AuditRecord]: ...
    async def strip_detail_before(self, moment: datetime) -> int: ...


class BlockStore(Protocol):
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
    ) -> BlockRecord: ...
    async def active_for(
        self, channel: str, external_id: str, now: datetime
    ) -> BlockRecord | None: ...
    async def blocking(self, channel: str, external_id: str, now: datetime) -> int | None: ...
    async def mark_notified(self, block_id: int, now: datetime) -> bool: ...
    async def lift(self, block_id: int, counsellor_id: int, now: datetime) -> bool: ...
    async def purge_ended_before(self, moment: datetime) -> int: ...


class CaseStore(Protocol):
    async def get(self, case_id: int) -> CaseRecord | None: ...
    async def open_for_user(self, user_id: int) -> CaseRecord | None: ...
    async def for_user(self, user_id: int) -> Sequence[CaseRecord]: ...
    async def mark_left(self, case_id: int) -> bool: ...
    async def reopen_left(self, user_id: int) -> CaseRecord | None: ...
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
    ) -> CaseRecord: ...
    async def queue(self, limit: int = 50) -> Sequence[CaseRecord]: ...
    async def held_by(self, counsellor_id: int) -> Sequence[CaseRecord]: ...
    async def position(self, case: CaseRecord) -> int: ...
    async def release(self, case_id: int, counsellor_id: int) -> bool: ...
    async def close(self, case_id: int, counsellor_id: int, outcome: str) -> bool: ...
    async def strip_closed_before(self, moment: datetime) -> None: ...


class ConversationStore(Protocol):
    async def for_user(self, user_id: int, *, lock: bool = True) -> ConversationRecord | None: ...
    async def create(self, user_id: int, flow: str, state: str) -> ConversationRecord: ...
    async def for_case(self, case_id: int) -> ConversationRecord | None: ...
    async def lock_for_case(self, case_id: int) -> None: ...
    async def purge_idle_before(self, moment: datetime) -> int: ...


class CounsellorStore(Protocol):
    async def add(
        self, name: str, channel: str, external_id: str, role: str
    ) -> CounsellorRecord: ...
    async def by_identity(self, channel: str, external_id: str) -> CounsellorRecord | None: ...
    async def by_name(self, name: str) -> CounsellorRecord | None: ...
    async def get(self, counsellor_id: int) -> CounsellorRecord | None: ...
    async def all(self) -> Sequence[CounsellorRecord]: ...


class DeskStore(Protocol):
    async def held_count(self, counsellor_id: int) -> int: ...
    async def take_within(
        self, case_id: int, counsellor_id: int, capacity: int, now: datetime
    ) -> bool: ...
    async def assign(
        self,
        case_id: int,
        *,
        from_owner: int | None,
        to_owner: int,
        capacity: int,
        now: datetime,
    ) -> bool: ...
    async def open_cases(self, limit: int = 200) -> Sequence[CaseRecord]: ...
    async def recent_first_responses(self, since: datetime, limit: int = 50) -> list[float]: ...
    async def due_announcements(self, before: datetime) -> Sequence[CaseRecord]: ...
    async def due_child_updates(self, before: datetime) -> Sequence[CaseRecord]: ...
    async def claim_announcement(self, case_id: int, now: datetime, before: datetime) -> bool: ...
    async def claim_child_update(self, case_id: int, now: datetime, before: datetime) -> bool: ...
    async def report_rows(self, start: datetime, end: datetime) -> list[ReportRow]: ...
    async def supervisors(self) -> Sequence[CounsellorRecord]: ...


class InboxStore(Protocol):
    async def take(self, channel: str, update_id: str) -> bool: ...
    async def mark_handled(self, channel: str, update_id: str) -> None: ...
    async def purge_processed_before(self, moment: datetime) -> int: ...


class MessageStore(Protocol):
    async def add(
        self,
        user_id: int,
        sender: str,
        text: str,
        *,
        case_id: int | None = None,
        counsellor_id: int | None = None,
        created_at: datetime | None = None,
    ) -> MessageRecord: ...
    async def last_id(self, user_id: int) -> int: ...
    async def recent_child_texts(
        self, user_id: int, since: datetime, limit: int, after_id: int = 0
    ) -> list[str]: ...
    async def for_case(self, case_id: int) -> Sequence[MessageRecord]: ...
    async def attach_recent_to_case(self, user_id: int, case_id: int) -> None: ...
    async def purge_loose_before(self, moment: datetime) -> int: ...
    async def purge_closed_before(self, moment: datetime) -> int: ...


class OutboxStore(Protocol):
    async def write(
        self,
        channel: str,
        chat_id: str,
        body: dict[str, Any],
        case_id: int | None = None,
        *,
        claimed_until: datetime | None = None,
    ) -> int: ...
    async def write_if_idle(
        self,
        channel: str,
        chat_id: str,
        body: dict[str, Any],
        case_id: int | None = None,
        *,
        claimed_until: datetime,
    ) -> tuple[int, bool]: ...
    async def purge_done_before(self, moment: datetime) -> int: ...


class SendsOnCommit(Protocol):
    """The process's sender, when it sends a turn's replies itself the moment the turn commits
    (`bot.delivery.Delivery`): replies to a chat with nothing older undelivered are then
    written already claimed for it (no second round trip to claim each), for `lease`."""

    lease: timedelta

    def live(self, channel: str) -> bool: ...


class UpdateStore(Protocol):
    async def claim(self, channel: str, update_id: str) -> bool: ...
    async def purge_before(self, moment: datetime) -> int: ...


class UserStore(Protocol):
    async def get_or_create(
        self, channel: str, external_id: str, address: str, locale: str
    ) -> tuple[UserRecord, bool]: ...
    async def with_conversation(
        self, channel: str, external_id: str, address: str, locale: str,
        now: datetime | None = None,
    ) -> tuple[UserRecord, ConversationRecord | None]: ...
    async def get(self, user_id: int) -> UserRecord | None: ...
    async def erase(self, user_id: int) -> list[str]: ...
    async def purge_idle_before(self, moment: datetime) -> int: ...


class Stores(Protocol):
    """Every store over one unit of work (one transaction)."""

    @property
    def users(self) -> UserStore: ...
    @property
    def conversations(self) -> ConversationStore: ...
    @property
    def messages(self) -> MessageStore: ...
    @property
    def cases(self) -> CaseStore: ...
    @property
    def attachments(self) -> AttachmentStore: ...
    @property
    def counsellors(self) -> CounsellorStore: ...
    @property
    def audit(self) -> AuditStore: ...
    @property
    def updates(self) -> UpdateStore: ...
    @property
    def inbox(self) -> InboxStore: ...
    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def desk(self) -> DeskStore: ...
    @property
    def blocks(self) -> BlockStore: ...

    async def flush(self) -> None:
        """Send pending changes (ids assigned, constraints checked) without committing."""

    async def refresh(self, record: object) -> None:
        """Reload a record's fields from the database (after an atomic update elsewhere)."""


class UnitOfWork(Protocol):
    """Where the stores come from: ``async with uow.unit() as stores`` is one transaction that
    commits on success and rolls back on error; a database failure raises ``StoreUnavailable``."""

    def unit(self) -> AbstractAsyncContextManager[Stores]: ...
