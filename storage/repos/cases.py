"""Cases: opening, the queue, taking, releasing and closing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from dialogs.ports import CaseRecord
from storage.models import (
    Case,
    utcnow,
)
from storage.repos.base import LEFT, OPEN_STATUSES, CaseStatus, _aware, _Repo

# A child's open case, asked on every typed message: built once (no statement built or cache
# key computed per call).
_OPEN_FOR_USER = (
    select(Case)
    .where(Case.user_id == bindparam("b_user"), Case.status.in_(OPEN_STATUSES))
    .order_by(Case.id.desc())
    .limit(1)
)


class CaseRepo(_Repo):
    async def get(self, case_id: int) -> Case | None:
        return await self.session.get(Case, case_id)

    async def open_for_user(self, user_id: int) -> Case | None:
        result = await self.session.execute(_OPEN_FOR_USER, {"b_user": user_id})
        return result.scalar_one_or_none()

    async def for_user(self, user_id: int) -> Sequence[Case]:
        """Every case of one user, newest first (for /forget: each topic that quotes them)."""
        stmt = select(Case).where(Case.user_id == user_id).order_by(Case.id.desc())
        return (await self.session.execute(stmt)).scalars().all()

    async def mark_left(self, case_id: int) -> bool:
        """The child ended a chat a counsellor holds: the case says so and frees the place."""
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == CaseStatus.ACTIVE)
            .values(status=LEFT)
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
            case.status, case.owner_id = CaseStatus.WAITING, None
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
            status=CaseStatus.WAITING,
        )
        self.session.add(case)
        await self.session.flush()
        return case

    async def queue(self, limit: int = 50) -> Sequence[Case]:
        """Waiting cases: highest risk first, then oldest."""
        stmt = (
            select(Case)
            .where(Case.status == CaseStatus.WAITING)
            .order_by(Case.risk_rank, Case.created_at, Case.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def held_by(self, counsellor_id: int) -> Sequence[Case]:
        stmt = select(Case).where(Case.status == CaseStatus.ACTIVE, Case.owner_id == counsellor_id)
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()

    async def position(self, case: CaseRecord) -> int:
        """1-based place of a waiting case in the queue."""
        ahead = select(func.count(Case.id)).where(
            Case.status == CaseStatus.WAITING,
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
            .where(Case.id == case_id, Case.status == CaseStatus.WAITING)
            .values(status=CaseStatus.ACTIVE, owner_id=counsellor_id, taken_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, case_id: int, counsellor_id: int) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.status == CaseStatus.ACTIVE,
                Case.owner_id == counsellor_id,
            )
            .values(status=CaseStatus.WAITING, owner_id=None)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def close(self, case_id: int, counsellor_id: int, outcome: str) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.status.in_((CaseStatus.ACTIVE, LEFT)),
                Case.owner_id == counsellor_id,
            )
            .values(status=CaseStatus.CLOSED, outcome=outcome, closed_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def queue_stats(self) -> dict[str, tuple[int, datetime | None]]:
        """Per risk: how many cases wait and since when the oldest has waited."""
        stmt = (
            select(Case.risk, func.count(Case.id), func.min(Case.created_at))
            .where(Case.status == CaseStatus.WAITING)
            .group_by(Case.risk)
        )
        rows = (await self.session.execute(stmt)).all()
        return {str(risk): (int(count), _aware(oldest)) for risk, count, oldest in rows}

    async def strip_closed_before(self, moment: datetime) -> None:
        """Drop the answers of cases closed before `moment`; category, risk and times stay."""
        await self.session.execute(
            update(Case)
            .where(Case.status == CaseStatus.CLOSED, Case.closed_at < moment)
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

    async def by_desk_topic(self, chat_id: int, thread_id: int, *, first: bool) -> Case | None:
        """The case discussed in the topic `thread_id` of the staff group `chat_id`; the newest
        if a thread id was reused. Thread ids are per group and collide across groups: a case
        with no stored group (made before groups were kept) is found only when `first` (the
        group is the first one, where such cases live)."""
        here = Case.desk_chat_id == chat_id
        if first:
            here = here | Case.desk_chat_id.is_(None)
        stmt = (
            select(Case)
            .where(Case.desk_thread_id == thread_id, here)
            .order_by(Case.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
