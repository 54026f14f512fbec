"""Readiness: is the database reachable, and are its migrations current?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, text
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


async def schema_state(db: Database) -> str:
    """What `helpline run` finds at start: "current", "empty" (no tables: never migrated),
    "behind" (migrations to run), "unversioned" (tables made without Alembic: tests) or
    "unreachable"."""
    state = await readiness(db)
    if not state.database:
        return "unreachable"
    if state.ready:
        return "current"
    if state.revision is not None:
        return "behind"
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    return "unversioned" if "users" in tables else "empty"
