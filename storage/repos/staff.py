"""Counsellors, their credentials and their web sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from storage.models import (
    Counsellor,
    StaffCredential,
    WebSession,
    utcnow,
)
from storage.repos.base import _Repo


class CounsellorRepo(_Repo):
    async def add(self, name: str, channel: str, external_id: str, role: str) -> Counsellor:
        c = Counsellor(name=name, channel=channel, external_id=external_id, role=role)
        self.session.add(c)
        await self.session.flush()
        return c

    async def by_identity(self, channel: str, external_id: str) -> Counsellor | None:
        stmt = select(Counsellor).where(
            Counsellor.channel == channel,
            Counsellor.external_id == external_id,
            Counsellor.active.is_(True),
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_name(self, name: str) -> Counsellor | None:
        stmt = select(Counsellor).where(Counsellor.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, counsellor_id: int) -> Counsellor | None:
        return await self.session.get(Counsellor, counsellor_id)

    async def all(self) -> Sequence[Counsellor]:
        return (
            (await self.session.execute(select(Counsellor).order_by(Counsellor.id)))
            .scalars()
            .all()
        )


class CredentialRepo(_Repo):
    """Web-console sign-in data: password hashes, TOTP secrets, failed attempts and lockouts."""

    async def get(self, counsellor_id: int) -> StaffCredential | None:
        return await self.session.get(StaffCredential, counsellor_id)

    async def set_password(self, counsellor_id: int, password_hash: str) -> StaffCredential:
        """Set (or replace) a password; a new password also lifts a lockout."""
        cred = await self.get(counsellor_id)
        if cred is None:
            cred = StaffCredential(counsellor_id=counsellor_id, password_hash=password_hash)
            self.session.add(cred)
        cred.password_hash = password_hash
        cred.failed_attempts = 0
        cred.locked_until = None
        cred.updated_at = utcnow()
        await self.session.flush()
        return cred

    async def set_totp(self, counsellor_id: int, secret: str | None) -> bool:
        """Turn the second factor on (a new secret) or off (None); False without a password."""
        cred = await self.get(counsellor_id)
        if cred is None:
            return False
        cred.totp_secret = secret
        cred.totp_last_step = None
        cred.updated_at = utcnow()
        return True

    async def failed(self, counsellor_id: int, *, limit: int, lock_until: datetime) -> bool:
        """Count a failed sign-in; at `limit` failures lock the account until `lock_until` and
        start counting again. True when this failure locked it."""
        await self.session.execute(
            update(StaffCredential)
            .where(StaffCredential.counsellor_id == counsellor_id)
            .values(failed_attempts=StaffCredential.failed_attempts + 1)
        )
        result = await self.session.execute(
            update(StaffCredential)
            .where(
                StaffCredential.counsellor_id == counsellor_id,
                StaffCredential.failed_attempts >= limit,
            )
            .values(failed_attempts=0, locked_until=lock_until)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def succeeded(self, counsellor_id: int, totp_step: int | None) -> None:
        values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
        if totp_step is not None:
            values["totp_last_step"] = totp_step
        await self.session.execute(
            update(StaffCredential)
            .where(StaffCredential.counsellor_id == counsellor_id)
            .values(**values)
        )


class WebSessionRepo(_Repo):
    """Web-console sessions, found by the SHA-256 of their cookie token."""

    async def add(
        self, id_hash: str, counsellor_id: int, csrf_token: str, expires_at: datetime
    ) -> WebSession:
        row = WebSession(
            id_hash=id_hash,
            counsellor_id=counsellor_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, id_hash: str) -> WebSession | None:
        return await self.session.get(WebSession, id_hash)

    async def touch(self, id_hash: str, now: datetime, expires_at: datetime) -> None:
        await self.session.execute(
            update(WebSession)
            .where(WebSession.id_hash == id_hash)
            .values(last_seen_at=now, expires_at=expires_at)
        )

    async def delete(self, id_hash: str) -> None:
        await self.session.execute(delete(WebSession).where(WebSession.id_hash == id_hash))

    async def delete_for(self, counsellor_id: int) -> int:
        """Sign a counsellor out everywhere (a new password, a disabled account)."""
        result = await self.session.execute(
            delete(WebSession).where(WebSession.counsellor_id == counsellor_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(delete(WebSession).where(WebSession.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)
