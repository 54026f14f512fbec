"""The counsellors' desk: the queue, taking a case, relaying, notes, risk changes and closing.

Every desk channel (console, Telegram staff group, web console) calls this one service. Each call
checks that the caller is a registered, active counsellor and may act on that case; every read of
a case leaves an audit record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dialogs.engine import DialogEngine
from dialogs.messages import Address, Attachment, ContentKind, Outbound
from dialogs.taxonomy import Risk, is_outcome
from storage.models import Case, Counsellor, utcnow
from storage.repositories import Repos


class DeskError(StrEnum):
    NOT_STAFF = "not_staff"
    NO_CASE = "no_case"
    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    BAD_OUTCOME = "bad_outcome"
    BAD_RISK = "bad_risk"
    CLOSED = "closed"
    CHILD_GONE = "child_gone"


@dataclass(frozen=True, slots=True)
class DeskResult:
    """What a desk action did: an error (nothing changed), or the messages it produced."""

    ok: bool
    error: DeskError | None = None
    outbound: tuple[Outbound, ...] = ()
    case_id: int | None = None


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


def _fail(error: DeskError, case_id: int | None = None) -> DeskResult:
    return DeskResult(ok=False, error=error, case_id=case_id)


class Desk:
    def __init__(self, engine: DialogEngine) -> None:
        self.engine = engine
        self.db = engine.db

    async def identify(self, channel: str, external_id: str) -> Counsellor | None:
        async with self.db.session() as s:
            return await Repos(s).counsellors.by_identity(channel, external_id)

    async def add_counsellor(
        self, name: str, channel: str, external_id: str, role: str = "counsellor"
    ) -> Counsellor:
        async with self.db.session() as s:
            repos = Repos(s)
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
        async with self.db.session() as s:
            repos = Repos(s)
            return [await self._summary(repos, c) for c in await repos.cases.queue(limit)]

    async def held(self, counsellor: Counsellor) -> list[CaseSummary]:
        async with self.db.session() as s:
            repos = Repos(s)
            return [
                await self._summary(repos, c) for c in await repos.cases.held_by(counsellor.id)
            ]

    async def view(self, counsellor: Counsellor, case_id: int) -> CaseView | DeskError:
        """A case's answers and transcript; audited. A counsellor sees waiting cases and their
        own; a supervisor sees every case."""
        async with self.db.session() as s:
            repos = Repos(s)
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

    def _may_see(self, counsellor: Counsellor, case: Case) -> bool:
        return (
            counsellor.role == "supervisor"
            or case.status == "waiting"
            or case.owner_id == counsellor.id
        )

    async def _summary(self, repos: Repos, case: Case) -> CaseSummary:
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
            waiting_minutes=int(waited.total_seconds() // 60),
        )

    # ------------------------------------------------------------------ acting
    async def take(self, counsellor: Counsellor, case_id: int) -> DeskResult:
        """Atomic: of two counsellors pressing Take at once, exactly one gets the case."""
        async with self.db.session() as s:
            repos = Repos(s)
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if not await repos.cases.take(case_id, counsellor.id):
                return _fail(DeskError.TAKEN, case_id)
            await s.refresh(case)
            await repos.audit.record("taken", counsellor_id=counsellor.id, case_id=case_id)
            out = await self.engine.desk_trigger(repos, case, "taken")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    async def _owned(self, repos: Repos, counsellor: Counsellor, case_id: int) -> Case | DeskError:
        case = await repos.cases.get(case_id)
        if case is None:
            return DeskError.NO_CASE
        if case.status == "closed":
            return DeskError.CLOSED
        if case.owner_id != counsellor.id and counsellor.role != "supervisor":
            return DeskError.NOT_YOURS
        if case.status != "active":
            return DeskError.NOT_YOURS
        return case

    async def reply(
        self,
        counsellor: Counsellor,
        case_id: int,
        text: str,
        attachments: Sequence[Attachment] = (),
    ) -> DeskResult:
        """Send the counsellor's words to the child, with no name or account attached."""
        async with self.db.session() as s:
            repos = Repos(s)
            case = await self._owned(repos, counsellor, case_id)
            if isinstance(case, DeskError):
                return _fail(case, case_id)
            if case.user_id is None:
                return _fail(DeskError.CHILD_GONE, case_id)
            user = await repos.users.get(case.user_id)
            if user is None:
                return _fail(DeskError.CHILD_GONE, case_id)
            await repos.messages.add(
                user.id, "counsellor", text, case_id=case_id, counsellor_id=counsellor.id
            )
            if case.first_response_at is None:
                case.first_response_at = utcnow()
            out = Outbound(
                to=Address(user.channel, user.address),
                text=text,
                attachments=tuple(attachments),
                case_id=case_id,
            )
            return DeskResult(ok=True, outbound=(out,), case_id=case_id)

    async def note(self, counsellor: Counsellor, case_id: int, text: str) -> DeskResult:
        """A private note on the case: never sent to the child."""
        async with self.db.session() as s:
            repos = Repos(s)
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if not self._may_see(counsellor, case):
                return _fail(DeskError.NOT_YOURS, case_id)
            if case.user_id is not None:
                await repos.messages.add(
                    case.user_id, "note", text, case_id=case_id, counsellor_id=counsellor.id
                )
            await repos.audit.record(
                "note", counsellor_id=counsellor.id, case_id=case_id, detail=text[:2000]
            )
            return DeskResult(ok=True, case_id=case_id)

    async def release(self, counsellor: Counsellor, case_id: int, note: str = "") -> DeskResult:
        async with self.db.session() as s:
            repos = Repos(s)
            case = await self._owned(repos, counsellor, case_id)
            if isinstance(case, DeskError):
                return _fail(case, case_id)
            owner = case.owner_id or counsellor.id
            if not await repos.cases.release(case_id, owner):
                return _fail(DeskError.NOT_YOURS, case_id)
            await s.refresh(case)
            await repos.audit.record(
                "released", counsellor_id=counsellor.id, case_id=case_id, detail=note
            )
            out = await self.engine.desk_trigger(repos, case, "released")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    async def close(self, counsellor: Counsellor, case_id: int, outcome: str) -> DeskResult:
        if not is_outcome(outcome):
            return _fail(DeskError.BAD_OUTCOME, case_id)
        async with self.db.session() as s:
            repos = Repos(s)
            case = await self._owned(repos, counsellor, case_id)
            if isinstance(case, DeskError):
                return _fail(case, case_id)
            if not await repos.cases.close(case_id, case.owner_id or counsellor.id, outcome):
                return _fail(DeskError.NOT_YOURS, case_id)
            await s.refresh(case)
            await repos.audit.record(
                "closed", counsellor_id=counsellor.id, case_id=case_id, detail=outcome
            )
            out = await self.engine.desk_trigger(repos, case, "closed")
            return DeskResult(ok=True, outbound=tuple(out), case_id=case_id)

    async def set_risk(
        self, counsellor: Counsellor, case_id: int, risk: str, note: str
    ) -> DeskResult:
        """Raise or lower a case's risk; lowering needs a note, and both are audited."""
        if risk not in Risk._value2member_map_:
            return _fail(DeskError.BAD_RISK, case_id)
        level = Risk(risk)
        async with self.db.session() as s:
            repos = Repos(s)
            case = await repos.cases.get(case_id)
            if case is None:
                return _fail(DeskError.NO_CASE, case_id)
            if case.status == "closed":
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

    async def audit_trail(self, case_id: int) -> list[tuple[datetime, str | None, str, str]]:
        """Who did or saw what on a case, in order: (when, counsellor name, action, detail)."""
        async with self.db.session() as s:
            repos = Repos(s)
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
