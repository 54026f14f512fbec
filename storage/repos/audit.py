"""The audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update

from storage.models import (
    AuditEvent,
    Case,
)
from storage.repos.base import CaseStatus, _Repo


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

    async def strip_detail_before(self, moment: datetime) -> int:
        """Empty the free text of events older than `moment` and of cases closed before it;
        who, when, what and which case stay. Returns how many old events are now bare."""
        closed = select(Case.id).where(Case.status == CaseStatus.CLOSED, Case.closed_at < moment)
        old = or_(AuditEvent.created_at < moment, AuditEvent.case_id.in_(closed))
        # The detail is encrypted, so SQL cannot tell an empty one: every old event is
        # rewritten (one token for all of them).
        result = await self.session.execute(update(AuditEvent).where(old).values(detail=""))
        return int(getattr(result, "rowcount", 0) or 0)
