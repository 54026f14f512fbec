"""The counsellors' desk: the queue, taking a case, relaying, notes, risk changes and closing;
transfers, capacity, canned replies, blocking abusers and the minute sweep.

Every desk channel (console, Telegram staff group, web console) calls this one service. Each call
checks that the caller is a registered, active counsellor and may act on that case; every read of
a case leaves an audit record. Roles: a `counsellor` holds up to `capacity` cases at once and acts
on waiting cases and their own; a `supervisor` also sees every open case and may act on any of
them (reassign, close, block).

Locks: an action that moves the child's conversation (take, release, transfer, close, block)
locks that conversation first, as the engine's turn does, then the counsellor, then the case
(`storage.repos.conversations`): a danger message racing a Take never deadlocks. Should the
database still roll an action back to break a deadlock (`StoreConflict`), it is tried again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from dialogs.canned import CannedReplies, CannedReply, default_canned
from dialogs.clock import utcnow
from dialogs.engine import DialogEngine
from dialogs.messages import DESK, Address, Attachment, Button, ContentKind, DeskEvent, Outbound
from dialogs.operations import AFTER_HOURS, DeskConfig
from dialogs.ports import (
    CaseRecord,
    CaseStatus,
    CounsellorRecord,
    StoreConflict,
    Stores,
    UserRecord,
)
from dialogs.taxonomy import Risk, category_chi_group, is_category, is_outcome

SUPERVISOR = "supervisor"
ROLES = ("counsellor", SUPERVISOR)
BLOCK_OUTCOME = "abusive-contact"


class DeskError(StrEnum):
    NOT_STAFF = "not_staff"
    NO_CASE = "no_case"
    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    BAD_OUTCOME = "bad_outcome"
    BAD_RISK = "bad_risk"
    CLOSED = "closed"
    CHILD_GONE = "child_gone"
    AT_CAPACITY = "at_capacity"
    NO_COUNSELLOR = "no_counsellor"
    BAD_TRANSFER = "bad_transfer"
    SUPERVISOR_ONLY = "supervisor_only"
    NO_CANNED = "no_canned"
    BAD_BLOCK = "bad_block"
    NOT_BLOCKED = "not_blocked"
    BAD_CATEGORY = "bad_category"
    CHILD_LEFT = "child_left"


@dataclass(frozen=True, slots=True)
class DeskResult:
    """What a desk action did: an error (nothing changed), or the messages it produced."""

    ok: bool
    error: DeskError | None = None
    outbound: tuple[Outbound, ...] = ()
    case_id: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CaseSummary:
    id: int
    category: str
    risk: str
    status: str
    channel: str
    created_at: datetime
    owner: str | None
    waiting_minutes: int
    chi_group: str = ""


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    sender: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CaseView:
    """Everything a counsellor may see of a case: never the child's account or address."""

    summary: CaseSummary
    answers: dict[str, object]
    signals: tuple[str, ...]
    transcript: tuple[TranscriptLine, ...]
    attachments: tuple[Attachment, ...]
    outcome: str | None
    rating: int | None


def _may_block(counsellor: CounsellorRecord, case: CaseRecord) -> DeskResult | None:
    """Who may block from a case: its holder, anyone while it waits, a supervisor always; a
    critical case still open only a supervisor."""
    supervisor = counsellor.role == SUPERVISOR
    if not (supervisor or case.owner_id == counsellor.id or case.status == CaseStatus.WAITING):
        return _fail(DeskError.NOT_YOURS, case.id)
    critical = case.risk == Risk.CRITICAL.value and case.status != CaseStatus.CLOSED
    if critical and not supervisor:
        return _fail(DeskError.SUPERVISOR_ONLY, case.id, "the case is critical")
    return None


def _fail(error: DeskError, case_id: int | None = None, detail: str = "") -> DeskResult:
    return DeskResult(ok=False, error=error, case_id=case_id, detail=detail)


log = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")
# How often a desk action the database rolled back to break a deadlock is tried again.
CONFLICT_RETRIES = 4


def _retried(
    action: Callable[Concatenate[Desk, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[Desk, _P], Coroutine[Any, Any, _R]]:
    """Run a desk action again when the database rolled it back to break a deadlock (nothing
    of the failed attempt was committed or returned)."""

    @functools.wraps(action)
    async def run(desk: Desk, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                return await action(desk, *args, **kwargs)
            except StoreConflict:
                if attempt == CONFLICT_RETRIES:
                    raise
                desk.engine.retries["deadlock"] += 1
                log.warning("desk %s rolled back by a deadlock; trying again (%d)",
                            action.__name__, attempt)
                await asyncio.sleep(0.02 * attempt)
        raise AssertionError("unreachable")

    return run


class Desk:
    def __init__(self, engine: DialogEngine, *, canned: CannedReplies | None = None) -> None:
        self.engine = engine
        self.db = engine.db
        self.canned = canned or default_canned()

    @property
    def config(self) -> DeskConfig:
        """The desk's rules, shared with the engine (hours, capacity, sweep intervals)."""
        return self.engine.policy.config

    def _now(self) -> datetime:
        return self.engine.clock()

    @asynccontextmanager
    async def _case_unit(self, case_id: int) -> AsyncIterator[Stores]:
        """A unit of work for an action that moves the child's conversation: the conversation
        is locked first (the one lock order), then the action touches counsellor and case."""
        async with self.db.unit() as repos:
            await repos.conversations.lock_for_case(case_id)
            yield repos

    def _staff_text(self, key: str, **values: object) -> str:
        return self.engine.catalogue.t(key, self.config.staff_locale).format(**values)

    async def identify(self, channel: str, external_id: str) -> CounsellorRecord | None:
        async with self.db.unit() as repos:
            return await repos.counsellors.by_identity(channel, external_id)

    async def add_counsellor(
        self, name: str, channel: str, external_id: str, role: str = "counsellor"
    ) -> CounsellorRecord:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use {' or '.join(ROLES)}")
        async with self.db.unit() as repos:
            counsellor = await repos.counsellors.add(name, channel, external_id, role)
            await repos.audit.record(
                "counsellor_added",
                counsellor_id=counsellor.id,
                case_id=None,
                detail=f"{name} {channel} {role}",
            )
            return counsellor

    # ------------------------------------------------------------------ reading
    async def queue(self, limit: int = 50) -> list[CaseSummary]:
        async with self.db.unit() as repos:
            return [await self._summary(repos, c) for c in await repos.cases.queue(limit)]

    async def held(self, counsellor: CounsellorRecord) -> list[CaseSummary]:
        async with self.db.unit() as repos:
            return [
                await self._summary(repos, c) for c in await repos.cases.held_by(counsellor.id)
            ]

    async def view(self, counsellor: CounsellorRecord, case_id: int) -> CaseView | DeskError:
        """A case's answers and transcript; audited. A counsellor sees waiting cases and their
        own; a supervisor sees every case."""
        async with self.db.unit() as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return DeskError.NO_CASE
            if not self._may_see(counsellor, case):
                await repos.audit.record(
                    "view_refused", counsellor_id=counsellor.id, case_id=case_id
                )
                return DeskError.NOT_YOURS
            await repos.audit.record("viewed", counsellor_id=counsellor.id, case_id=case_id)
            lines = tuple(
                TranscriptLine(m.sender, m.text, m.created_at)
                for m in await repos.messages.for_case(case_id)
            )
            atts = tuple(
                Attachment(
                    kind=ContentKind(a.kind)
                    if a.kind in ContentKind._value2member_map_
                    else ContentKind.OTHER,
                    file_ref=a.file_ref,
                    size=a.size,
                    mime=a.mime,
                    name=a.stored_path,
                )
                for a in await repos.attachments.for_case(case_id)
            )
            return CaseView(
                summary=await self._summary(repos, case),
                answers=dict(case.answers or {}),
                signals=tuple(case.signals.get("signals", [])) if case.signals else (),
                transcript=lines,
                attachments=atts,
                outcome=case.outcome,
                rating=case.rating,
            )

    def _may_see(self, counsellor: CounsellorRecord, case: CaseRecord) -> bool:
        return (
            counsellor.role == "supervisor"
            or case.status == CaseStatus.WAITING
            or case.owner_id == counsellor.id
        )

    async def _summary(self, repos: Stores, case: CaseRecord) -> CaseSummary:
        owner = await repos.counsellors.get(case.owner_id) if case.owner_id else None
        waited = (case.taken_at or utcnow()) - case.created_at
        return CaseSummary(
            id=case.id,
            category=case.category,
            risk=case.risk,
            status=case.status,
            channel=case.channel,
            created_at=case.created_at,
            owner=owner.name if owner else None,
            waiting_minutes=max(0, int(waited.total_seconds() // 60)),
            chi_group=category_chi_group(case.category),
        )

    async def open_cases(self, counsellor: CounsellorRecord) -> list[CaseSummary] | DeskError:
        """Every waiting and held case, highest risk first: for supervisors only."""
        if counsellor.role != SUPERVISOR:
            return DeskError.SUPERVISOR_ONLY
        async with self.db.unit() as repos:
            return [await self._summary(repos, c) for c in await repos.desk.open_cases()]

    async def on_call(self) -> list[CounsellorRecord]:
        """Who is paged for a critical case outside opening hours: the active supervisors."""
        async with self.db.unit() as repos:
            return list(await repos.desk.supervisors())

    def is_open(self, now: datetime | None = None) -> bool:
        """Are counsellors on the desk now, by the opening hours?"""
        return self.config.hours.is_open(now or self._now())

    def canned_replies(self) -> list[CannedReply]:
        """The reviewed ready replies a counsellor can send with `/reply KEY`."""
        return self.canned.all()

    # ------------------------------------------------------------------ acting
    @_retried
    async def take(self, counsellor: CounsellorRecord, case_id: int) -> DeskResult:
        """Atomic: of two counsellors pressing Take at once, exactly one gets the case. Refused
        when the counsellor already holds `capacity` cases."""
        async with self._case_unit(case_id) as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if case.status == CaseStatus.CLOSED:
                return _fail(DeskError.CLOSED, case_id)
            if case.status != CaseStatus.WAITING:
                return _fail(DeskError.TAKEN, case_id)
            limit = self.config.capacity
            if not await repos.desk.take_within(case_id, counsellor.id, limit, self._now()):
                held = await repos.desk.held_count(counsellor.id)
                if held >= limit:
                    return _fail(
                        DeskError.AT_CAPACITY, case_id, f"you hold {held} of {limit} cases"
                    )
                return _fail(DeskError.TAKEN, case_id)
            await repos.refresh(case)
            await repos.audit.record("taken", counsellor_id=counsellor.id, case_id=case_id)
            out = await self.engine.desk_trigger(repos, case, "taken")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    async def _owned(
        self, repos: Stores, counsellor: CounsellorRecord, case_id: int
    ) -> CaseRecord | DeskError:
        case = await repos.cases.get(case_id)
        if case is None:
            return DeskError.NO_CASE
        if case.status == CaseStatus.CLOSED:
            return DeskError.CLOSED
        if case.owner_id != counsellor.id and counsellor.role != SUPERVISOR:
            return DeskError.NOT_YOURS
        if case.status not in (CaseStatus.ACTIVE, CaseStatus.LEFT):
            return DeskError.NOT_YOURS
        return case

    @_retried
    async def reply(
        self,
        counsellor: CounsellorRecord,
        case_id: int,
        text: str,
        attachments: Sequence[Attachment] = (),
    ) -> DeskResult:
        """Send the counsellor's words to the child, with no name or account attached."""
        async with self.db.unit() as repos:
            return await self._reply(repos, counsellor, case_id, lambda _locale: text, attachments)

    @_retried
    async def reply_canned(
        self, counsellor: CounsellorRecord, case_id: int, key: str
    ) -> DeskResult:
        """Send a canned reply (`/reply KEY`) in the child's language, taken from the case."""
        canned = self.canned.get(key)
        if canned is None:
            return _fail(DeskError.NO_CANNED, case_id, ", ".join(self.canned.keys()))
        async with self.db.unit() as repos:
            return await self._reply(repos, counsellor, case_id, canned.text)

    async def _reply(
        self,
        repos: Stores,
        counsellor: CounsellorRecord,
        case_id: int,
        text_for: _TextFor,
        attachments: Sequence[Attachment] = (),
    ) -> DeskResult:
        case = await self._owned(repos, counsellor, case_id)
        if isinstance(case, DeskError):
            return _fail(case, case_id)
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None:
            return _fail(DeskError.CHILD_GONE, case_id)
        if case.status == CaseStatus.LEFT:
            # The child ended the chat: a message now would land in their menu. Close the case
            # with an outcome; if the child comes back, the case returns to the queue.
            return _fail(DeskError.CHILD_LEFT, case_id)
        text = text_for(self._locale(case, user))
        await repos.messages.add(
            user.id, "counsellor", text, case_id=case_id, counsellor_id=counsellor.id
        )
        if case.first_response_at is None:
            case.first_response_at = self._now()
        out = Outbound(
            to=Address(user.channel, user.address),
            text=text,
            attachments=tuple(attachments),
            case_id=case_id,
        )
        return DeskResult(ok=True, outbound=(out,), case_id=case_id)

    def _locale(self, case: CaseRecord, user: UserRecord | None) -> str:
        """The child's language: as the case recorded it, else their account's."""
        locale = (case.answers or {}).get("locale") or (user.locale if user else None)
        return str(locale or self.engine.config.default_locale)

    @_retried
    async def note(self, counsellor: CounsellorRecord, case_id: int, text: str) -> DeskResult:
        """A private note on the case: never sent to the child."""
        async with self.db.unit() as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if not self._may_see(counsellor, case):
                return _fail(DeskError.NOT_YOURS, case_id)
            await self._note(repos, counsellor, case, text)
            await repos.audit.record(
                "note", counsellor_id=counsellor.id, case_id=case_id, detail=text[:2000]
            )
            return DeskResult(ok=True, case_id=case_id)

    async def _note(
        self, repos: Stores, counsellor: CounsellorRecord, case: CaseRecord, text: str
    ) -> None:
        if case.user_id is not None and text.strip():
            await repos.messages.add(
                case.user_id, "note", text, case_id=case.id, counsellor_id=counsellor.id
            )

    @_retried
    async def release(
        self, counsellor: CounsellorRecord, case_id: int, note: str = ""
    ) -> DeskResult:
        """Back to the queue, keeping its place; the note (if any) is left on the case for
        whoever takes it next."""
        async with self._case_unit(case_id) as repos:
            case = await self._owned(repos, counsellor, case_id)
            if isinstance(case, DeskError):
                return _fail(case, case_id)
            owner = case.owner_id or counsellor.id
            if not await repos.cases.release(case_id, owner):
                return _fail(DeskError.NOT_YOURS, case_id)
            await repos.refresh(case)
            case.last_announced_at = self._now()
            await self._note(repos, counsellor, case, note)
            await repos.audit.record(
                "released", counsellor_id=counsellor.id, case_id=case_id, detail=note
            )
            out = await self.engine.desk_trigger(repos, case, "released")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    @_retried
    async def transfer(
        self, counsellor: CounsellorRecord, case_id: int, to_name: str, note: str = ""
    ) -> DeskResult:
        """Hand a case to a named colleague. A counsellor hands over a case they hold; a
        supervisor reassigns any open case (a waiting one goes straight to that colleague).
        The colleague's capacity applies; the note stays on the case."""
        async with self._case_unit(case_id) as repos:
            found = await self._transfer_parties(repos, counsellor, case_id, to_name)
            if isinstance(found, DeskResult):
                return found
            case, target = found
            previous = await repos.counsellors.get(case.owner_id) if case.owner_id else None
            was_waiting = case.status == CaseStatus.WAITING
            limit = self.config.capacity
            moved = await repos.desk.assign(
                case_id,
                from_owner=case.owner_id,
                to_owner=target.id,
                capacity=limit,
                now=self._now(),
            )
            if not moved:
                held = await repos.desk.held_count(target.id)
                if held >= limit:
                    return _fail(
                        DeskError.AT_CAPACITY, case_id, f"{target.name} holds {held} of {limit}"
                    )
                return _fail(DeskError.TAKEN, case_id)
            await repos.refresh(case)
            source = previous.name if previous else self._staff_text("desk.queue")
            out = await self._transferred(repos, counsellor, case, source, target, note)
            if was_waiting:
                out[:0] = await self.engine.desk_trigger(repos, case, "taken")
            else:
                out[:0] = await self._to_child(repos, case, "counselling.transferred")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    async def _transfer_parties(
        self, repos: Stores, counsellor: CounsellorRecord, case_id: int, to_name: str
    ) -> tuple[CaseRecord, CounsellorRecord] | DeskResult:
        """The case and the colleague of a transfer, or why it may not happen."""
        target = await repos.counsellors.by_name(to_name.strip())
        if target is None or not target.active:
            return _fail(DeskError.NO_COUNSELLOR, case_id, to_name)
        case = await repos.cases.get(case_id)
        if case is None:
            return _fail(DeskError.NO_CASE, case_id)
        if case.status == CaseStatus.CLOSED:
            return _fail(DeskError.CLOSED, case_id)
        holds = case.status == CaseStatus.ACTIVE and case.owner_id == counsellor.id
        if counsellor.role != SUPERVISOR and not holds:
            return _fail(DeskError.NOT_YOURS, case_id)
        if case.owner_id == target.id:
            return _fail(DeskError.BAD_TRANSFER, case_id, f"{target.name} holds it already")
        return case, target

    async def _transferred(
        self,
        repos: Stores,
        counsellor: CounsellorRecord,
        case: CaseRecord,
        source: str,
        target: CounsellorRecord,
        note: str,
    ) -> list[Outbound]:
        """The note, the audit line and the desk's notice of a transfer that happened."""
        await self._note(repos, counsellor, case, note)
        await repos.audit.record(
            "transferred",
            counsellor_id=counsellor.id,
            case_id=case.id,
            detail=f"{source} -> {target.name}" + (f": {note}" if note else ""),
        )
        text = self._staff_text(
            "desk.transferred", case=case.id, source=source, target=target.name
        )
        return [self._notice(case, text + (f"\n{note}" if note else ""), assigned_to=target.name)]

    async def _to_child(self, repos: Stores, case: CaseRecord, key: str) -> list[Outbound]:
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None:
            return []
        text = self.engine.catalogue.t(key, self._locale(case, user))
        return [Outbound(to=Address(user.channel, user.address), text=text, case_id=case.id)]

    def _notice(self, case: CaseRecord, text: str, **meta: str) -> Outbound:
        """A desk notice written by the desk itself (re-announcements, transfers, blocks)."""
        marks = {**self.engine.policy.notice_meta(case, self._now()), **meta}
        return Outbound(
            to=Address(DESK, str(case.id)),
            text=text,
            case_id=case.id,
            desk_event=DeskEvent.CASE_UPDATED,
            critical=case.risk == Risk.CRITICAL.value,
            meta=marks,
        )

    @_retried
    async def close(self, counsellor: CounsellorRecord, case_id: int, outcome: str) -> DeskResult:
        if not is_outcome(outcome):
            return _fail(DeskError.BAD_OUTCOME, case_id)
        async with self._case_unit(case_id) as repos:
            case = await self._owned(repos, counsellor, case_id)
            if isinstance(case, DeskError):
                return _fail(case, case_id)
            if not await repos.cases.close(case_id, case.owner_id or counsellor.id, outcome):
                return _fail(DeskError.NOT_YOURS, case_id)
            await repos.refresh(case)
            await repos.audit.record(
                "closed", counsellor_id=counsellor.id, case_id=case_id, detail=outcome
            )
            out = await self.engine.desk_trigger(repos, case, "closed")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    @_retried
    async def set_risk(
        self, counsellor: CounsellorRecord, case_id: int, risk: str, note: str
    ) -> DeskResult:
        """Raise or lower a case's risk; lowering needs a note, and both are audited."""
        if risk not in Risk._value2member_map_:
            return _fail(DeskError.BAD_RISK, case_id)
        level = Risk(risk)
        async with self.db.unit() as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if case.status == CaseStatus.CLOSED:
                return _fail(DeskError.CLOSED, case_id)
            if not self._may_see(counsellor, case):
                return _fail(DeskError.NOT_YOURS, case_id)
            lowering = level.rank > case.risk_rank
            if lowering and not note.strip():
                return _fail(DeskError.BAD_RISK, case_id)
            old = case.risk
            case.risk, case.risk_rank = level.value, level.rank
            await repos.audit.record(
                "risk_changed",
                counsellor_id=counsellor.id,
                case_id=case_id,
                detail=f"{old} -> {level.value}: {note}",
            )
            return DeskResult(ok=True, case_id=case_id)

    @_retried
    async def set_category(
        self, counsellor: CounsellorRecord, case_id: int, category: str
    ) -> DeskResult:
        """Correct a case's category (the help line's taxonomy, after the CHI framework)."""
        if not is_category(category):
            return _fail(DeskError.BAD_CATEGORY, case_id)
        async with self.db.unit() as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            # Also after closing: the counsellor who held it may still correct the category.
            if not self._may_see(counsellor, case):
                return _fail(DeskError.NOT_YOURS, case_id)
            old, case.category = case.category, category
            await repos.audit.record(
                "category_changed",
                counsellor_id=counsellor.id,
                case_id=case_id,
                detail=f"{old} -> {category}",
            )
            return DeskResult(ok=True, case_id=case_id)

    # ------------------------------------------------------------------ blocking
    @_retried
    async def block(
        self, counsellor: CounsellorRecord, case_id: int, reason: str, until: datetime
    ) -> DeskResult:
        """Block the user of a case who abuses the line, with a reason, until a moment. The
        case closes as an abusive contact; the user then gets one neutral reply and nothing
        else, except that a danger signal still opens a critical case. A critical case can
        only be closed this way by a supervisor. Audited."""
        now = self._now()
        if not reason.strip():
            return _fail(DeskError.BAD_BLOCK, case_id, "a reason is needed")
        if until.tzinfo is None or until <= now:
            return _fail(DeskError.BAD_BLOCK, case_id, "the expiry must be in the future")
        async with self._case_unit(case_id) as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            refused = _may_block(counsellor, case)
            if refused is not None:
                return refused
            user = await repos.users.get(case.user_id) if case.user_id is not None else None
            if user is None:
                return _fail(DeskError.CHILD_GONE, case_id)
            await repos.blocks.add(
                channel=user.channel,
                external_id=user.external_id,
                user_id=user.id,
                case_id=case.id,
                counsellor_id=counsellor.id,
                reason=reason.strip(),
                until=until,
            )
            await self._close_blocked(repos, counsellor, case, now, reason, until)
            # Quietly out of the chat: when the block ends they find the menu.
            await self.engine.desk_trigger(repos, case, "blocked")
            text = self._staff_text("desk.blocked", case=case_id, until=f"{until:%Y-%m-%d %H:%M}")
            return DeskResult(ok=True, outbound=(self._notice(case, text),), case_id=case_id)

    async def _close_blocked(
        self,
        repos: Stores,
        counsellor: CounsellorRecord,
        case: CaseRecord,
        now: datetime,
        reason: str,
        until: datetime,
    ) -> None:
        """Audit the block and close the case (unless closed already) as an abusive contact."""
        await repos.audit.record(
            "blocked",
            counsellor_id=counsellor.id,
            case_id=case.id,
            detail=f"until {until:%Y-%m-%d %H:%M} UTC: {reason.strip()}"[:2000],
        )
        if case.status == CaseStatus.CLOSED:
            return
        case.status, case.outcome, case.closed_at = CaseStatus.CLOSED, BLOCK_OUTCOME, now
        case.owner_id = case.owner_id or counsellor.id
        await repos.audit.record(
            "closed", counsellor_id=counsellor.id, case_id=case.id, detail=BLOCK_OUTCOME
        )

    @_retried
    async def unblock(self, counsellor: CounsellorRecord, case_id: int) -> DeskResult:
        """Lift the block on the user of a case: the counsellor who set it, or a supervisor."""
        now = self._now()
        async with self.db.unit() as repos:
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            user = await repos.users.get(case.user_id) if case.user_id is not None else None
            if user is None:
                return _fail(DeskError.CHILD_GONE, case_id)
            block = await repos.blocks.active_for(user.channel, user.external_id, now)
            if block is None:
                return _fail(DeskError.NOT_BLOCKED, case_id)
            if counsellor.role != SUPERVISOR and block.counsellor_id != counsellor.id:
                return _fail(DeskError.SUPERVISOR_ONLY, case_id)
            await repos.blocks.lift(block.id, counsellor.id, now)
            await repos.audit.record("unblocked", counsellor_id=counsellor.id, case_id=case_id)
            return DeskResult(ok=True, case_id=case_id)

    # ------------------------------------------------------------------ the minute sweep
    async def sweep(self, now: datetime | None = None) -> list[Outbound]:
        """The periodic job (every minute): re-announce to the desks each case nobody has
        answered for `reannounce_after`, and tell each waiting child their place again every
        `queue_update_after`; each at most once per interval, even with several workers.
        Outside opening hours only critical cases are re-announced (marked for on-call) and
        children are not disturbed: they were told when counsellors are back."""
        now = now or self._now()
        config = self.config
        open_now = config.hours.is_open(now)
        out: list[Outbound] = []
        async with self.db.unit() as repos:
            before = now - config.reannounce_after
            for case in await repos.desk.due_announcements(before):
                if not open_now and case.risk != Risk.CRITICAL.value:
                    continue
                if not await repos.desk.claim_announcement(case.id, now, before):
                    continue
                out.append(await self._reannouncement(repos, case, now))
            if open_now:
                before = now - config.queue_update_after
                for case in await repos.desk.due_child_updates(before):
                    update = await self._queue_update(repos, case, now, before)
                    if update is not None:
                        out.append(update)
        return out

    async def _reannouncement(self, repos: Stores, case: CaseRecord, now: datetime) -> Outbound:
        if case.status == CaseStatus.WAITING:
            minutes = int((now - case.created_at).total_seconds() // 60)
            text = self._staff_text("desk.reannounce", case=case.id, minutes=minutes)
        else:
            owner = await repos.counsellors.get(case.owner_id) if case.owner_id else None
            since = case.taken_at or case.created_at
            minutes = int((now - since).total_seconds() // 60)
            text = self._staff_text(
                "desk.reannounce.silent",
                case=case.id,
                minutes=minutes,
                name=owner.name if owner else "?",
            )
        return self._notice(case, text, reannounce="1")

    async def _queue_update(
        self, repos: Stores, case: CaseRecord, now: datetime, before: datetime
    ) -> Outbound | None:
        """Tell a child still waiting in the chat their place ("still waiting, number X")."""
        conv = await repos.conversations.for_case(case.id)
        if conv is None or conv.flow != "counselling" or conv.state != "waiting":
            return None  # the child left the queue's chat: they can come back to it
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None or user.unreachable:
            return None
        if not await repos.desk.claim_child_update(case.id, now, before):
            return None
        locale = self._locale(case, user)
        position = await repos.cases.position(case)
        policy = self.engine.policy
        minutes = await policy.estimate_minutes(
            repos, position, now, self.engine.config.minutes_per_case
        )
        catalogue = self.engine.catalogue
        wait_key = "counselling.wait.hours" if minutes >= 90 else "counselling.wait.minutes"
        wait = catalogue.t(wait_key, locale, n=round(minutes / 60) if minutes >= 90 else minutes)
        text = catalogue.t("counselling.waiting.update", locale, position=position, wait=wait)
        end = Button(catalogue.t("counselling.end", locale), "cs|waiting|end")
        return Outbound(
            to=Address(user.channel, user.address), text=text, buttons=((end,),), case_id=None
        )

    async def audit_trail(self, case_id: int) -> list[tuple[datetime, str | None, str, str]]:
        """Who did or saw what on a case, in order: (when, counsellor name, action, detail)."""
        async with self.db.unit() as repos:
            names = {c.id: c.name for c in await repos.counsellors.all()}
            return [
                (
                    e.created_at,
                    names.get(e.counsellor_id) if e.counsellor_id else None,
                    e.action,
                    e.detail,
                )
                for e in await repos.audit.for_case(case_id)
            ]


class _TextFor(Protocol):
    """The text of a reply in a given locale (a fixed text ignores the locale)."""

    def __call__(self, locale: str, /) -> str: ...


__all__ = [
    "AFTER_HOURS",
    "CaseSummary",
    "CaseView",
    "Desk",
    "DeskError",
    "DeskResult",
    "TranscriptLine",
]
