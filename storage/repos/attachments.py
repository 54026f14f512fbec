"""Photos and files a child sent, and their retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from storage.models import (
    Attachment,
    Case,
)
from storage.repos.base import CaseStatus, _Repo


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
        return select(Case.id).where(Case.status == CaseStatus.CLOSED, Case.closed_at < moment)

    def _loose_before(self, moment: datetime) -> Any:
        """Attachments never bound to a case, sent before `moment`."""
        return (Attachment.case_id.is_(None)) & (Attachment.created_at < moment)

    async def stale_files(self, moment: datetime) -> list[str]:
        """Stored files of the attachments the purge at `moment` deletes (closed and loose)."""
        stmt = select(Attachment.stored_path).where(
            Attachment.case_id.in_(self._closed_before(moment)) | self._loose_before(moment),
            Attachment.stored_path.is_not(None),
        )
        return [str(p) for p in (await self.session.execute(stmt)).scalars().all()]

    async def purge_closed_before(self, moment: datetime) -> int:
        """Delete the attachments of cases closed before `moment`."""
        result = await self.session.execute(
            delete(Attachment).where(Attachment.case_id.in_(self._closed_before(moment)))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_loose_before(self, moment: datetime) -> int:
        """Delete attachments sent outside any case before `moment`."""
        result = await self.session.execute(delete(Attachment).where(self._loose_before(moment)))
        return int(getattr(result, "rowcount", 0) or 0)

    async def for_case(self, case_id: int) -> Sequence[Attachment]:
        stmt = select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def for_user(self, user_id: int) -> Sequence[Attachment]:
        stmt = select(Attachment).where(Attachment.user_id == user_id).order_by(Attachment.id)
        return (await self.session.execute(stmt)).scalars().all()
