"""Shared helpers of the repositories: the SQL dialect and aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialogs.ports import OPEN_STATUSES, CaseStatus
from storage import crypto, driver


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


# `session.info` key of the session's connection for its current transaction (`connection`).
_CONNECTION = "helpline.connection"


async def connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection for its current transaction, looked up once per transaction
    (kept in `session.info` beside the transaction it belongs to): `AsyncSession.connection()`
    crosses into a greenlet on every call, and the hot path's Core statements asked it each
    time. A session that ended its transaction and began another looks it up again (the pool
    may hand it another connection)."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]  # type: ignore[no-any-return]
    conn = await session.connection()
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), conn)
    return conn


# `Session.info` key: {(channel, hashed external id): block id or None}, read by the turn's
# first statement (`UserRepo.with_conversation`) for `BlockRepo.blocking`, which takes it once;
# adding or lifting a block in the session drops it.
BLOCK_ANSWERS = "blocking"
# `Session.info` key: this process's worker id (`storage.db.Database.worker`), written on the
# outbox claims it takes.
WORKER = "helpline.worker"


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def worker(self) -> int | None:
        """The worker id this process writes on its claims (None: not joined, or SQLite)."""
        return self.session.info.get(WORKER)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def _core(self, stmt: Executable, params: dict[str, Any]) -> driver.Result:
        """A Core statement built once (module level, with bind parameters), on the session's
        connection: no ORM bulk-insert reading of `params`, no autoflush, no statement built
        or cache key computed again. For the hot path's inserts, updates and plain reads of
        tables the turn does not also change through the ORM. It goes to the driver itself
        (asyncpg's prepared statement, the `sqlite3` connection), past SQLAlchemy's execution
        machinery (`storage.driver`)."""
        return await driver.execute(await connection(self.session), stmt, params)

    async def run(self, stmt: Executable, params: dict[str, Any]) -> driver.Result:
        """`_core`: a repository is where statements run (`driver.Statements`), as `Lone` is."""
        return await self._core(stmt, params)


LEFT = CaseStatus.LEFT
__all__ = ["LEFT", "OPEN_STATUSES", "CaseStatus"]
