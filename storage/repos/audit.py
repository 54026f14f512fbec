"""The audit trail."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from storage.models import (
    AuditEvent,
)
from storage.repos.base import _Repo


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
