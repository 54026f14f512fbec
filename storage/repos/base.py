"""Shared helpers of the repositories: the SQL dialect and aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, Executable
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.ports import OPEN_STATUSES, CaseStatus
from storage import crypto


def _address_hash(channel: str, address: str) -> str:
    return crypto.current().hash_id(f"address:{channel}", address)


def _aware(value: object) -> datetime | None:
    """Aggregates bypass the UTC column type: SQLite hands back strings or naive values."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def _core(self, stmt: Executable, params: dict[str, Any]) -> CursorResult[Any]:
        """A Core statement built once (module level, with bind parameters), on the session's
        connection: no ORM bulk-insert reading of `params`, no autoflush, no statement built
        or cache key computed again. For the hot path's inserts, updates and plain reads of
        tables the turn does not also change through the ORM."""
        connection = await self.session.connection()
        return await connection.execute(stmt, params)


LEFT = CaseStatus.LEFT
__all__ = ["LEFT", "OPEN_STATUSES", "CaseStatus"]
