"""Readiness: is the database reachable, and are its migrations current?

Read without Alembic: `helpline run` asks this at every start and `/readyz` at every probe, and
importing Alembic to answer kept about 11 MB in every process (Alembic is imported to migrate,
`storage.migrate`, only when there is something to do)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database

VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(?:None|['\"]([^'\"]*)['\"])",
                   re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The newest migration's revision: the one no other migration names as its
    `down_revision` (the migrations are one line; a fork or a file read wrongly fails here
    rather than passing a database as current)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in sorted(VERSIONS.glob("[!_]*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            raise RuntimeError(f"{path.name}: no revision or down_revision")
        revisions.add(revision.group(1))
        if down.group(1):
            downs.add(down.group(1))
    heads = revisions - downs
    if len(heads) > 1:
        raise RuntimeError(f"migrations have several heads: {sorted(heads)}")
    return next(iter(heads), None)


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision Alembic recorded in the database; None when it never migrated it."""
    tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    if "alembic_version" not in tables:
        return None
    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return None if row is None else str(row[0])


@dataclass(frozen=True)
class Readiness:
    database: bool
    revision: str | None
    head: str | None

    @property
    def ready(self) -> bool:
        return self.database and self.revision == self.head


async def readiness(db: Database) -> Readiness:
    head = head_revision()
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
