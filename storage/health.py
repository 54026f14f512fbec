"""Readiness: is the database reachable, and are its migrations current?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database
from storage.migrate import current_revision, head_revision


@dataclass(frozen=True)
class Readiness:
    database: bool
    revision: str | None
    head: str | None

    @property
    def ready(self) -> bool:
        return self.database and self.revision == self.head


async def readiness(db: Database) -> Readiness:
    head = head_revision(db.url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await current_revision(conn)
    except (SQLAlchemyError, OSError):
        return Readiness(database=False, revision=None, head=head)
    return Readiness(database=True, revision=revision, head=head)
