"""The bot's database for one run: a fresh SQLite file or PostgreSQL database, its size and
row counts afterwards, and dropping it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def pg_base_url() -> str | None:
    for name in ("DATABASE_URL", "HELPLINE_TEST_DATABASE_URL"):
        value = os.environ.get(name, "")
        if value.startswith("postgresql"):
            if "+asyncpg" not in value:
                value = value.replace("postgresql://", "postgresql+asyncpg://", 1)
            return value
    return None


@dataclass
class Database:
    url: str
    label: str
    sqlite_path: Path | None = None
    admin_url: str | None = None  # PostgreSQL: where to drop the database afterwards
    name: str | None = None


async def make_database(kind: str, workdir: Path) -> Database:
    if kind == "sqlite":
        path = workdir / "helpline.db"
        return Database(f"sqlite+aiosqlite:///{path}", "SQLite", sqlite_path=path)
    import asyncpg

    base = pg_base_url()
    assert base is not None
    name = f"helpline_bench_{os.getpid()}"
    plain = base.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    url = base.rsplit("/", 1)[0] + "/" + name
    return Database(url, f"PostgreSQL {version.split()[0]}", admin_url=plain, name=name)


async def _connect(db: Database) -> Any:
    """A plain asyncpg connection to the bot's PostgreSQL database."""
    import asyncpg

    return await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))


async def database_size(db: Database) -> float:
    """The database's size in MB, as it stands (taken after the schema is made, before the
    load: what an empty help line's database takes)."""
    if db.sqlite_path is not None:
        with contextlib.closing(sqlite3.connect(db.sqlite_path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return db.sqlite_path.stat().st_size / 1e6
    conn = await _connect(db)
    try:
        return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 1e6
    finally:
        await conn.close()


async def settled_size(db: Database) -> float:
    """The size in MB once the rows deleted during the run are reclaimed, as autovacuum does
    on a running line: PostgreSQL after a plain VACUUM (which gives back the empty pages at a
    table's end, not FULL); SQLite as it stands (it keeps its free pages for reuse)."""
    if db.sqlite_path is None:
        conn = await _connect(db)
        try:
            await conn.execute("VACUUM")
        finally:
            await conn.close()
    return await database_size(db)


async def database_figures(db: Database) -> tuple[float, int, int, int, str]:
    """(size in MB, conversations, messages, journalled updates, the biggest tables)."""
    if db.sqlite_path is not None:
        with contextlib.closing(sqlite3.connect(db.sqlite_path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
            messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            # A handled journal entry is deleted and its id kept in processed_updates.
            updates = conn.execute(
                "SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM processed_updates)"
            ).fetchone()[0]
            try:
                owner = {name: table for table, name in conn.execute(
                    "SELECT tbl_name, name FROM sqlite_schema").fetchall()}
                sizes: dict[str, int] = {}
                for name, pages in conn.execute(
                        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                    table = owner.get(name, name)
                    sizes[table] = sizes.get(table, 0) + int(pages)
                top = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
                breakdown = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in top)
            except sqlite3.Error:
                breakdown = ""
        size = db.sqlite_path.stat().st_size
        return size / 1e6, int(conversations), int(messages), int(updates), breakdown
    conn = await _connect(db)
    try:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        conversations = await conn.fetchval("SELECT count(*) FROM conversations")
        messages = await conn.fetchval("SELECT count(*) FROM messages")
        updates = await conn.fetchval(
            "SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM processed_updates)")
        top = await conn.fetch(
            "SELECT relname, pg_total_relation_size(relid) AS size FROM pg_statio_user_tables "
            "ORDER BY size DESC LIMIT 6")
    finally:
        await conn.close()
    breakdown = ", ".join(f"{r['relname']} {r['size'] / 1e6:.1f}" for r in top)
    return size / 1e6, int(conversations), int(messages), int(updates), breakdown


async def drop_database(db: Database) -> None:
    if db.admin_url is None:
        return
    import asyncpg

    conn = await asyncpg.connect(db.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
    finally:
        await conn.close()
