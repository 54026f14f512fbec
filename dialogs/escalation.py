"""The counsellors' desk: the queue, taking a case, relaying, notes, risk changes and closing;
transfers, capacity, canned replies, blocking abusers and the minute sweep.

Every desk channel (console, Telegram staff group, web console) calls this one service: it turns
its input into a desk command (`dialogs.desk.commands`) for `Desk.execute(counsellor, command)`,
which checks it against the one permission table (`dialogs.desk.rules`: role x holder or not x
case status x risk) and answers with one `DeskResult`; cases are shown as one `CaseCard`. The
older methods (`take`, `reply`, `close`, ...) are thin wrappers over `execute`. Every read of a
case leaves an audit record. Roles: a `counsellor` holds up to `capacity` cases at once (a
critical case is taken beyond it: counted, audited and the supervisors told) and acts on waiting
cases and their own; a `supervisor` also sees every open case and may act on any of them
(reassign, close, lower a critical risk, block).

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from dialogs.canned import CannedReplies, CannedReply, default_canned
from dialogs.clock import utcnow
from dialogs.desk.commands import (
    Block,
    ChangeRisk,
    Close,
    DeskCommand,
    Note,
    Release,
    Reply,
    ReplyCanned,
    SetCategory,
    Take,
    Transfer,
    Unblock,
)
from dialogs.desk.results import CaseCard, CaseSummary, DeskError, DeskResult, fail
from dialogs.desk.rules import permit, real_reason, verdict
from dialogs.desk.times import desk_datetime
from dialogs.engine import DialogEngine
from dialogs.messages import DESK, Address, Attachment, Button, ContentKind, DeskEvent, Outbound
from dialogs.operations import AFTER_HOURS, DeskConfig
from dialogs.ports import (
    CaseFacts,
    CaseRecord,
    CaseStatus,
    CounsellorRecord,
    Staff,
    StoreConflict,
    Stores,
    UserRecord,
)
from dialogs.taxonomy import (
    Risk,
    category_chi_group,
    is_category,
    is_outcome,
    is_victim_category,
)

SUPERVISOR = "supervisor"
ROLES = ("counsellor", SUPERVISOR)
BLOCK_OUTCOME = "abusive-contact"
# A critical case is taken whatever the counsellor already holds (it is counted, and the
# supervisors are told): capacity protects counsellors, never at a child's expense.
NO_LIMIT = 1_000_000
# A block on a case whose child may be the victim waits for its confirmation this long.
CONFIRM_ASKED = "block_confirmation_asked"
CONFIRM_WITHIN = timedelta(minutes=15)


# Commands whose effect every desk shows (the card, the alert, the topic): their event.
_PUBLISHED: dict[type, DeskEvent] = {
    Take: DeskEvent.CASE_TAKEN,
    Release: DeskEvent.CASE_RELEASED,
    Close: DeskEvent.CASE_CLOSED,
    ChangeRisk: DeskEvent.RISK_CHANGED,
}


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


_fail = fail


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

    async def held(self, counsellor: Staff) -> list[CaseSummary]:
        async with self.db.unit() as repos:
            return [
                await self._summary(repos, c) for c in await repos.cases.held_by(counsellor.id)
            ]

    async def view(self, counsellor: Staff, case_id: int) -> CaseView | DeskError:
        """A case's answers and transcript; audited. A counsellor sees waiting cases and their
        own; a supervisor sees every case."""
        if not _possible_id(case_id):
            return DeskError.NO_CASE
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

    def _may_see(self, counsellor: Staff, case: CaseFacts) -> bool:
        """The permission table's "view" row (also used by the web console's live reads)."""
        return verdict("view", counsellor, case) is None

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
            outcome=case.outcome,
            last_announced_at=case.last_announced_at,
        )

    async def open_cases(self, counsellor: Staff) -> list[CaseSummary] | DeskError:
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
    async def execute(self, counsellor: Staff, command: DeskCommand) -> DeskResult:
        """Do one desk command for a counsellor. Every front-end comes here: the permission
        table (`dialogs.desk.rules`) decides, and the answer is one `DeskResult`."""
        if not counsellor.active:
            return _fail(DeskError.NOT_STAFF, command.case_id)
        if not _possible_id(command.case_id):
            return _fail(DeskError.NO_CASE)  # a forged or out-of-range number: no such case
        handlers: dict[type, Callable[..., Coroutine[Any, Any, DeskResult]]] = {
            Take: self._take,
            Reply: self._reply_text,
            ReplyCanned: self._reply_canned,
            Note: self._add_note,
            ChangeRisk: self._change_risk,
            Transfer: self._transfer,
            Release: self._release,
            Close: self._close,
            Block: self._block,
            Unblock: self._unblock,
            SetCategory: self._set_category,
        }
        result = await handlers[type(command)](counsellor, command)
        if not result.ok or type(command) not in _PUBLISHED:
            return result
        event = await self._published(counsellor, command, result)
        return replace(result, outbound=(*result.outbound, *event))

    async def _published(
        self, counsellor: Staff, command: DeskCommand, result: DeskResult
    ) -> tuple[Outbound, ...]:
        """The desk event of a command that went through, for every desk to render (whichever
        desk the counsellor used): one notice in the case's desk stream, in order."""
        async with self.db.unit() as repos:
            case = await repos.cases.get(command.case_id)
        if case is None:
            return ()
        meta = {"by": counsellor.name}
        if isinstance(command, Close):
            meta["outcome"] = command.outcome
        if isinstance(command, ChangeRisk):
            meta["old"] = result.detail
        return (Outbound(to=Address(DESK, str(case.id)), text="", case_id=case.id,
                         desk_event=_PUBLISHED[type(command)],
                         critical=case.risk == Risk.CRITICAL.value, meta=meta),)

    async def _permitted(
        self, repos: Stores, counsellor: Staff, command: DeskCommand
    ) -> CaseRecord | DeskResult:
        """The command's case, if the permission table lets this counsellor act on it."""
        case = await repos.cases.get(command.case_id)
        if case is None:
            return _fail(DeskError.NO_CASE, command.case_id)
        refused = permit(counsellor, command, case)
        if refused is not None:
            return _fail(refused, case.id)
        return case

    # The methods each front-end has called so far: thin wrappers over `execute`.
    async def take(self, counsellor: Staff, case_id: int) -> DeskResult:
        return await self.execute(counsellor, Take(case_id))

    async def reply(
        self,
        counsellor: Staff,
        case_id: int,
        text: str,
        attachments: Sequence[Attachment] = (),
    ) -> DeskResult:
        return await self.execute(counsellor, Reply(case_id, text, tuple(attachments)))

    async def reply_canned(
        self, counsellor: Staff, case_id: int, key: str
    ) -> DeskResult:
        return await self.execute(counsellor, ReplyCanned(case_id, key))

    async def note(self, counsellor: Staff, case_id: int, text: str) -> DeskResult:
        return await self.execute(counsellor, Note(case_id, text))

    async def release(
        self, counsellor: Staff, case_id: int, note: str = ""
    ) -> DeskResult:
        return await self.execute(counsellor, Release(case_id, note))

    async def transfer(
        self, counsellor: Staff, case_id: int, to_name: str, note: str = ""
    ) -> DeskResult:
        return await self.execute(counsellor, Transfer(case_id, to_name, note))

    async def close(self, counsellor: Staff, case_id: int, outcome: str) -> DeskResult:
        return await self.execute(counsellor, Close(case_id, outcome))

    async def set_risk(
        self, counsellor: Staff, case_id: int, risk: str, note: str
    ) -> DeskResult:
        return await self.execute(counsellor, ChangeRisk(case_id, risk, note))

    async def set_category(
        self, counsellor: Staff, case_id: int, category: str
    ) -> DeskResult:
        return await self.execute(counsellor, SetCategory(case_id, category))

    async def block(
        self,
        counsellor: Staff,
        case_id: int,
        reason: str,
        until: datetime,
        *,
        confirmed: bool = False,
    ) -> DeskResult:
        return await self.execute(counsellor, Block(case_id, reason, until, confirmed))

    async def unblock(self, counsellor: Staff, case_id: int) -> DeskResult:
        return await self.execute(counsellor, Unblock(case_id))

    # ------------------------------------------------------------------ taking
    @_retried
    async def _take(self, counsellor: Staff, command: Take) -> DeskResult:
        """Atomic: of two counsellors pressing Take at once, exactly one gets the case. Refused
        at capacity, except for a critical case: that take goes through, is counted, and the
        supervisors are told."""
        case_id = command.case_id
        async with self._case_unit(case_id) as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            limit = self.config.capacity
            room = NO_LIMIT if case.risk == Risk.CRITICAL.value else limit
            if not await repos.desk.take_within(case_id, counsellor.id, room, self._now()):
                return await self._not_moved(repos, counsellor, case_id, "you", room)
            await repos.refresh(case)
            await repos.audit.record("taken", counsellor_id=counsellor.id, case_id=case_id)
            out = list(await self.engine.desk_trigger(repos, case, "taken"))
            over = await self._over_capacity(repos, counsellor, case)
            return DeskResult(
                ok=True, outbound=tuple(out) + over[1], case_id=case_id, over_capacity=over[0]
            )

    async def _not_moved(
        self, repos: Stores, holder: Staff, case_id: int, who: str, room: int
    ) -> DeskResult:
        """Why a take or a transfer changed nothing: the holder is full (never for a critical
        case: `room` is unlimited), or someone was first."""
        held, limit = await repos.desk.held_count(holder.id), self.config.capacity
        if held >= room:
            detail = f"{who} hold {held} of {limit} cases" if who == "you" else (
                f"{holder.name} holds {held} of {limit}"
            )
            return _fail(DeskError.AT_CAPACITY, case_id, detail)
        return _fail(DeskError.TAKEN, case_id)

    async def _over_capacity(
        self, repos: Stores, holder: Staff, case: CaseRecord
    ) -> tuple[str, tuple[Outbound, ...]]:
        """After a critical case went to `holder`: if they now hold more than the limit, the
        overload is audited and the supervisors told by a desk notice."""
        held, limit = await repos.desk.held_count(holder.id), self.config.capacity
        if held <= limit:
            return "", ()
        counted = f"{held}/{limit}"
        await repos.audit.record(
            "over_capacity", counsellor_id=holder.id, case_id=case.id, detail=counted
        )
        text = self._staff_text(
            "desk.over_capacity", name=holder.name, held=held, limit=limit, case=case.id
        )
        return counted, (self._notice(case, text, over_capacity=counted),)

    # ------------------------------------------------------------------ talking to the child
    @_retried
    async def _reply_text(self, counsellor: Staff, command: Reply) -> DeskResult:
        """Send the counsellor's words to the child, with no name or account attached."""
        text = command.text
        async with self.db.unit() as repos:
            return await self._reply(
                repos, counsellor, command, lambda _locale: text, command.attachments
            )

    @_retried
    async def _reply_canned(
        self, counsellor: Staff, command: ReplyCanned
    ) -> DeskResult:
        """Send a canned reply (`/reply KEY`) in the child's language, taken from the case."""
        canned = self.canned.get(command.key)
        if canned is None:
            return _fail(DeskError.NO_CANNED, command.case_id, ", ".join(self.canned.keys()))
        async with self.db.unit() as repos:
            return await self._reply(repos, counsellor, command, canned.text)

    async def _reply(
        self,
        repos: Stores,
        counsellor: Staff,
        command: Reply | ReplyCanned,
        text_for: _TextFor,
        attachments: Sequence[Attachment] = (),
    ) -> DeskResult:
        case = await self._permitted(repos, counsellor, command)
        if isinstance(case, DeskResult):
            return case
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None:
            return _fail(DeskError.CHILD_GONE, case.id)
        if case.status == CaseStatus.LEFT:
            # The child ended the chat: a message now would land in their menu. Close the case
            # with an outcome; if the child comes back, the case returns to the queue.
            return _fail(DeskError.CHILD_LEFT, case.id)
        text = text_for(self._locale(case, user))
        await repos.messages.add(
            user.id, "counsellor", text, case_id=case.id, counsellor_id=counsellor.id
        )
        if case.first_response_at is None:
            case.first_response_at = self._now()
        out = Outbound(
            to=Address(user.channel, user.address),
            text=text,
            attachments=tuple(attachments),
            case_id=case.id,
        )
        return DeskResult(ok=True, outbound=(out,), case_id=case.id)

    def _locale(self, case: CaseRecord, user: UserRecord | None) -> str:
        """The child's language: as the case recorded it, else their account's."""
        locale = (case.answers or {}).get("locale") or (user.locale if user else None)
        return str(locale or self.engine.config.default_locale)

    @_retried
    async def _add_note(self, counsellor: Staff, command: Note) -> DeskResult:
        """A private note on the case: never sent to the child."""
        async with self.db.unit() as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            await self._note(repos, counsellor, case, command.text)
            await repos.audit.record(
                "note", counsellor_id=counsellor.id, case_id=case.id, detail=command.text[:2000]
            )
            return DeskResult(ok=True, case_id=case.id)

    async def _note(
        self, repos: Stores, counsellor: Staff, case: CaseRecord, text: str
    ) -> None:
        if case.user_id is not None and text.strip():
            await repos.messages.add(
                case.user_id, "note", text, case_id=case.id, counsellor_id=counsellor.id
            )

    # ------------------------------------------------------------------ handing over
    @_retried
    async def _release(self, counsellor: Staff, command: Release) -> DeskResult:
        """Back to the queue, keeping its place; the note (if any) is left on the case for
        whoever takes it next."""
        case_id = command.case_id
        async with self._case_unit(case_id) as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            owner = case.owner_id or counsellor.id
            if not await repos.cases.release(case_id, owner):
                return _fail(DeskError.NOT_YOURS, case_id)
            await repos.refresh(case)
            case.last_announced_at = self._now()
            await self._note(repos, counsellor, case, command.note)
            await repos.audit.record(
                "released", counsellor_id=counsellor.id, case_id=case_id, detail=command.note
            )
            out = await self.engine.desk_trigger(repos, case, "released")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    @_retried
    async def _transfer(self, counsellor: Staff, command: Transfer) -> DeskResult:
        """Hand a case to a named colleague. A counsellor hands over a case they hold; a
        supervisor reassigns any open case (a waiting one goes straight to that colleague).
        The colleague's capacity applies, except to a critical case (counted and told)."""
        async with self._case_unit(command.case_id) as repos:
            found = await self._transfer_parties(repos, counsellor, command)
            if isinstance(found, DeskResult):
                return found
            case, target = found
            previous = await repos.counsellors.get(case.owner_id) if case.owner_id else None
            was_waiting = case.status == CaseStatus.WAITING
            room = NO_LIMIT if case.risk == Risk.CRITICAL.value else self.config.capacity
            moved = await repos.desk.assign(
                case.id, from_owner=case.owner_id, to_owner=target.id, capacity=room,
                now=self._now(),
            )
            if not moved:
                return await self._not_moved(repos, target, case.id, target.name, room)
            await repos.refresh(case)
            source = previous.name if previous else self._staff_text("desk.queue")
            out = await self._transferred(repos, counsellor, case, source, target, command.note)
            key = "taken" if was_waiting else "counselling.transferred"
            out[:0] = await (self.engine.desk_trigger(repos, case, key) if was_waiting
                             else self._to_child(repos, case, key))
            counted, notices = await self._over_capacity(repos, target, case)
            return DeskResult(ok=True, outbound=(*out, *notices), case_id=case.id,
                              over_capacity=counted)

    async def _transfer_parties(
        self, repos: Stores, counsellor: Staff, command: Transfer
    ) -> tuple[CaseRecord, CounsellorRecord] | DeskResult:
        """The case and the colleague of a transfer, or why it may not happen."""
        target = await repos.counsellors.by_name(command.to.strip())
        if target is None or not target.active:
            return _fail(DeskError.NO_COUNSELLOR, command.case_id, command.to)
        case = await self._permitted(repos, counsellor, command)
        if isinstance(case, DeskResult):
            return case
        if case.owner_id == target.id:
            return _fail(DeskError.BAD_TRANSFER, case.id, f"{target.name} holds it already")
        return case, target

    async def _transferred(
        self,
        repos: Stores,
        counsellor: Staff,
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
        await repos.messages.add(user.id, "bot", text, case_id=case.id, created_at=self._now())
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
    async def _close(self, counsellor: Staff, command: Close) -> DeskResult:
        """Close with an outcome. "Abusive contact (blocked)" is not an outcome one picks: it
        is what `Block` does, for supervisors, and it really blocks."""
        if command.outcome == BLOCK_OUTCOME:
            return _fail(DeskError.USE_BLOCK, command.case_id)
        if not is_outcome(command.outcome):
            return _fail(DeskError.BAD_OUTCOME, command.case_id)
        case_id = command.case_id
        async with self._case_unit(case_id) as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            if not await repos.cases.close(case_id, case.owner_id or counsellor.id,
                                           command.outcome):
                return _fail(DeskError.NOT_YOURS, case_id)
            await repos.refresh(case)
            await repos.audit.record(
                "closed", counsellor_id=counsellor.id, case_id=case_id, detail=command.outcome
            )
            out = await self.engine.desk_trigger(repos, case, "closed")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    @_retried
    async def _change_risk(self, counsellor: Staff, command: ChangeRisk) -> DeskResult:
        """Raise or lower a case's risk (who may: the permission table). Lowering needs a
        note, lowering from critical a real reason; both audited as old -> new: reason."""
        if command.risk not in Risk._value2member_map_:
            return _fail(DeskError.BAD_RISK, command.case_id)
        level = Risk(command.risk)
        async with self.db.unit() as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            refused = _lowering_refused(case, level, command.reason)
            if refused is not None:
                return _fail(refused, case.id)
            old = case.risk
            case.risk, case.risk_rank = level.value, level.rank
            await repos.audit.record(
                "risk_changed",
                counsellor_id=counsellor.id,
                case_id=case.id,
                detail=f"{old} -> {level.value}: {command.reason.strip()}"[:2000],
            )
            return DeskResult(ok=True, case_id=case.id, detail=old)

    @_retried
    async def _set_category(
        self, counsellor: Staff, command: SetCategory
    ) -> DeskResult:
        """Correct a case's category (the help line's taxonomy, after the CHI framework)."""
        if not is_category(command.category):
            return _fail(DeskError.BAD_CATEGORY, command.case_id)
        async with self.db.unit() as repos:
            # Also after closing: the counsellor who held it may still correct the category.
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            old, case.category = case.category, command.category
            await repos.audit.record(
                "category_changed",
                counsellor_id=counsellor.id,
                case_id=case.id,
                detail=f"{old} -> {command.category}",
            )
            return DeskResult(ok=True, case_id=case.id)

    # ------------------------------------------------------------------ blocking
    @_retried
    async def _block(self, counsellor: Staff, command: Block) -> DeskResult:
        """Block the user of a case who abuses the line (supervisors), with a reason, until a
        moment. The case closes as an abusive contact; the user then gets one neutral reply
        and nothing else, except that a danger signal still opens a critical case. On a case
        whose child is the victim of abuse, only with `confirmed`. Audited."""
        refused = self._bad_block(command)
        if refused is not None:
            return refused
        async with self._case_unit(command.case_id) as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            if is_victim_category(case.category) and not command.confirmed:
                # Remembered on the case (a front-end's confirm button reads it back).
                await repos.audit.record(
                    CONFIRM_ASKED, counsellor_id=counsellor.id, case_id=case.id,
                    detail=f"{command.until.isoformat()} {command.reason.strip()}"[:2000],
                )
                return _fail(DeskError.CONFIRM_BLOCK, case.id, case.category)
            user = await repos.users.get(case.user_id) if case.user_id is not None else None
            if user is None:
                return _fail(DeskError.CHILD_GONE, case.id)
            await repos.blocks.add(
                channel=user.channel,
                external_id=user.external_id,
                user_id=user.id,
                case_id=case.id,
                counsellor_id=counsellor.id,
                reason=command.reason.strip(),
                until=command.until,
            )
            await self._close_blocked(repos, counsellor, case, self._now(), command)
            # Quietly out of the chat: when the block ends they find the menu.
            await self.engine.desk_trigger(repos, case, "blocked")
            until = desk_datetime(command.until, self.config.hours)
            text = self._staff_text("desk.blocked", case=case.id, until=until)
            return DeskResult(ok=True, outbound=(self._notice(case, text),), case_id=case.id)

    def _bad_block(self, command: Block) -> DeskResult | None:
        if not command.reason.strip():
            return _fail(DeskError.BAD_BLOCK, command.case_id, "a reason is needed")
        until = command.until
        if until.tzinfo is None or until <= self._now():
            return _fail(DeskError.BAD_BLOCK, command.case_id, "the expiry must be in the future")
        return None

    async def _close_blocked(
        self,
        repos: Stores,
        counsellor: Staff,
        case: CaseRecord,
        now: datetime,
        command: Block,
    ) -> None:
        """Audit the block and close the case (unless closed already) as an abusive contact."""
        until = desk_datetime(command.until, self.config.hours)
        await repos.audit.record(
            "blocked",
            counsellor_id=counsellor.id,
            case_id=case.id,
            detail=f"until {until}: {command.reason.strip()}"[:2000],
        )
        if case.status == CaseStatus.CLOSED:
            return
        case.status, case.outcome, case.closed_at = CaseStatus.CLOSED, BLOCK_OUTCOME, now
        case.owner_id = case.owner_id or counsellor.id
        await repos.audit.record(
            "closed", counsellor_id=counsellor.id, case_id=case.id, detail=BLOCK_OUTCOME
        )

    async def pending_block(
        self, counsellor: Staff, case_id: int, within: timedelta = CONFIRM_WITHIN
    ) -> Block | None:
        """The block this counsellor asked for on the case and was asked to confirm (within
        `within`), as a confirmed command: what a confirm button executes."""
        async with self.db.unit() as repos:
            asked = [
                e for e in await repos.audit.for_case(case_id)
                if e.action == CONFIRM_ASKED and e.counsellor_id == counsellor.id
            ]
        if not asked or asked[-1].created_at < self._now() - within:
            return None
        until_text, _, reason = asked[-1].detail.partition(" ")
        try:
            until = datetime.fromisoformat(until_text)
        except ValueError:
            return None
        return Block(case_id, reason, until, confirmed=True)

    @_retried
    async def _unblock(self, counsellor: Staff, command: Unblock) -> DeskResult:
        """Lift the block on the user of a case (supervisors, who set blocks)."""
        now = self._now()
        async with self.db.unit() as repos:
            case = await self._permitted(repos, counsellor, command)
            if isinstance(case, DeskResult):
                return case
            user = await repos.users.get(case.user_id) if case.user_id is not None else None
            if user is None:
                return _fail(DeskError.CHILD_GONE, case.id)
            block = await repos.blocks.active_for(user.channel, user.external_id, now)
            if block is None:
                return _fail(DeskError.NOT_BLOCKED, case.id)
            await repos.blocks.lift(block.id, counsellor.id, now)
            await repos.audit.record("unblocked", counsellor_id=counsellor.id, case_id=case.id)
            return DeskResult(ok=True, case_id=case.id)

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


def _possible_id(case_id: object) -> bool:
    """A case number the database can hold (a forged one, e.g. 10**30, is no case)."""
    return isinstance(case_id, int) and 0 < case_id < 2**63


def _lowering_refused(case: CaseRecord, level: Risk, reason: str) -> DeskError | None:
    """Lowering needs a note; lowering a critical case a real reason (not "x" or "ok")."""
    if level.rank <= case.risk_rank:
        return None
    if not reason.strip():
        return DeskError.BAD_RISK
    if case.risk == Risk.CRITICAL.value and not real_reason(reason):
        return DeskError.WEAK_REASON
    return None


class _TextFor(Protocol):
    """The text of a reply in a given locale (a fixed text ignores the locale)."""

    def __call__(self, locale: str, /) -> str: ...


__all__ = [
    "AFTER_HOURS",
    "CaseCard",
    "CaseSummary",
    "CaseView",
    "Desk",
    "DeskError",
    "DeskResult",
    "TranscriptLine",
]
