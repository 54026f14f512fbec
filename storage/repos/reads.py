"""Read marks and the web console's inbox and wallboard reads.

A read mark is how far a counsellor has read a case's transcript (the id of the last line they
saw); the child's lines after it are unread. Everything here returns detached, frozen records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import Case, CaseRead, Counsellor, Message, WebSession, utcnow
from storage.repos.base import CaseStatus, _aware, _Repo

HELD = (CaseStatus.ACTIVE, CaseStatus.LEFT)
UNCLOSED = (CaseStatus.WAITING, CaseStatus.ACTIVE, CaseStatus.LEFT)


@dataclass(frozen=True, slots=True)
class LastLine:
    """The newest transcript line of a case that is not a private note."""

    id: int
    sender: str
    counsellor_id: int | None
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class HeldCase:
    """One of a counsellor's conversations: the case, its unread count and newest line."""

    id: int
    status: str
    risk: str
    risk_rank: int
    category: str
    channel: str
    created_at: datetime
    unread: int
    last: LastLine | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A counsellor with a live web session, and when they were last seen."""

    counsellor_id: int
    name: str
    role: str
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class OpenCase:
    """An unclosed case as the wallboard needs it."""

    id: int
    status: str
    risk: str
    risk_rank: int
    category: str
    owner_id: int | None
    created_at: datetime
    first_response_at: datetime | None


class ReadRepo(_Repo):
    async def mark_seen(self, counsellor_id: int, case_id: int, upto: int) -> int:
        """The counsellor has seen the case's lines up to message `upto` (never past the case's
        newest line; a mark never moves back). Returns the mark now stored."""
        newest = (
            await self.session.execute(
                select(func.max(Message.id)).where(Message.case_id == case_id)
            )
        ).scalar_one_or_none()
        upto = min(upto, int(newest or 0))
        if upto <= 0:
            return 0
        values = {
            "counsellor_id": counsellor_id,
            "case_id": case_id,
            "last_message_id": upto,
            "updated_at": utcnow(),
        }
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(CaseRead).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CaseRead.counsellor_id, CaseRead.case_id],
            set_={
                "last_message_id": stmt.excluded.last_message_id,
                "updated_at": stmt.excluded.updated_at,
            },
            where=CaseRead.last_message_id < stmt.excluded.last_message_id,
        )
        await self.session.execute(stmt)
        stored = (
            await self.session.execute(
                select(CaseRead.last_message_id).where(
                    CaseRead.counsellor_id == counsellor_id, CaseRead.case_id == case_id
                )
            )
        ).scalar_one()
        return int(stored)

    async def held(self, counsellor_id: int) -> list[HeldCase]:
        """The cases a counsellor holds (also those the child has left, which still wait for
        an outcome), highest risk first, with unread counts and newest lines."""
        cases = (
            await self.session.execute(
                select(Case)
                .where(Case.owner_id == counsellor_id, Case.status.in_(HELD))
                .order_by(Case.risk_rank, Case.created_at, Case.id)
            )
        ).scalars().all()
        ids = [c.id for c in cases]
        unread = await self.unread(counsellor_id, ids)
        last = await self.last_lines(ids)
        return [
            HeldCase(
                id=c.id,
                status=str(c.status),
                risk=c.risk,
                risk_rank=c.risk_rank,
                category=c.category,
                channel=c.channel,
                created_at=c.created_at,
                unread=unread.get(c.id, 0),
                last=last.get(c.id),
            )
            for c in cases
        ]

    async def unread(self, counsellor_id: int, case_ids: Sequence[int]) -> dict[int, int]:
        """Per case: the child's lines after the counsellor's read mark."""
        if not case_ids:
            return {}
        mark = and_(CaseRead.case_id == Message.case_id, CaseRead.counsellor_id == counsellor_id)
        stmt = (
            select(Message.case_id, func.count(Message.id))
            .select_from(Message)
            .outerjoin(CaseRead, mark)
            .where(
                Message.case_id.in_(case_ids),
                Message.sender == "child",
                Message.id > func.coalesce(CaseRead.last_message_id, 0),
            )
            .group_by(Message.case_id)
        )
        rows = (await self.session.execute(stmt)).all()
        return {int(case_id or 0): int(n) for case_id, n in rows}

    async def last_lines(self, case_ids: Sequence[int]) -> dict[int, LastLine]:
        """Per case: its newest line that is not a private note."""
        if not case_ids:
            return {}
        newest = (
            select(func.max(Message.id))
            .where(Message.case_id.in_(case_ids), Message.sender != "note")
            .group_by(Message.case_id)
        )
        rows = (
            await self.session.execute(select(Message).where(Message.id.in_(newest)))
        ).scalars().all()
        lines: dict[int, LastLine] = {}
        for m in rows:
            if m.case_id is not None:
                lines[m.case_id] = LastLine(m.id, m.sender, m.counsellor_id, m.text, m.created_at)
        return lines

    async def marks(self) -> tuple[int, int]:
        """What moves when a line is written or read anywhere: the newest message id and the
        sum of all read marks. The console's live feed compares them to know when to look."""
        newest = (await self.session.execute(select(func.max(Message.id)))).scalar_one_or_none()
        read = (
            await self.session.execute(select(func.sum(CaseRead.last_message_id)))
        ).scalar_one_or_none()
        return int(newest or 0), int(read or 0)

    async def signed_in(self, now: datetime) -> list[SignedIn]:
        """Active counsellors with an unexpired web session, by name."""
        stmt = (
            select(
                Counsellor.id,
                Counsellor.name,
                Counsellor.role,
                func.max(WebSession.last_seen_at),
            )
            .join(WebSession, WebSession.counsellor_id == Counsellor.id)
            .where(WebSession.expires_at > now, Counsellor.active.is_(True))
            .group_by(Counsellor.id, Counsellor.name, Counsellor.role)
            .order_by(Counsellor.name)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            SignedIn(int(cid), str(name), str(role), _aware(seen) or now)
            for cid, name, role, seen in rows
        ]

    async def unclosed(self) -> list[OpenCase]:
        """Every case not closed yet, highest risk first, then oldest."""
        stmt = (
            select(Case)
            .where(Case.status.in_(UNCLOSED))
            .order_by(Case.risk_rank, Case.created_at, Case.id)
        )
        rows = (await self.session.execute(stmt)).scalars().all()
        return [
            OpenCase(c.id, str(c.status), c.risk, c.risk_rank, c.category, c.owner_id,
                     c.created_at, c.first_response_at)
            for c in rows
        ]


__all__ = ["HeldCase", "LastLine", "OpenCase", "ReadRepo", "SignedIn"]
