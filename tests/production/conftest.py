"""Production-shaped tests: real `helpline` processes against PostgreSQL.

They need a PostgreSQL server (`make test-pg`, i.e. scripts/with-postgres.sh, sets
HELPLINE_TEST_DATABASE_URL); on SQLite they are skipped. Each test makes its own database on that
server (CREATE DATABASE) and drops it afterwards, so the shared test database is left alone.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL, make_url

from storage.db import Database
from tests.conftest import fresh_database

ROOT = Path(__file__).resolve().parents[2]


def pg_base_url() -> URL:
    """The PostgreSQL server of this run, or a skip saying how to get one."""
    raw = os.environ.get("HELPLINE_TEST_DATABASE_URL", "")
    url = make_url(raw) if raw else None
    if url is None or url.get_backend_name() != "postgresql":
        pytest.skip(
            "needs PostgreSQL: HELPLINE_TEST_DATABASE_URL is not a postgresql URL "
            "(run `make test-pg` or scripts/with-postgres.sh .venv/bin/pytest tests/production)"
        )
    return url


def _dsn(url: URL, database: str) -> str:
    """A plain libpq-style DSN for asyncpg (no SQLAlchemy driver name)."""
    return url.set(drivername="postgresql", database=database).render_as_string(
        hide_password=False
    )


def dsn_of(url: str) -> str:
    """The plain asyncpg DSN of a test database's SQLAlchemy URL."""
    parsed = make_url(url)
    return _dsn(parsed, parsed.database or "postgres")


async def create_database(base: URL, prefix: str) -> str:
    """CREATE DATABASE <prefix>_<random> on the test server; returns its SQLAlchemy URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(_dsn(base, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(_dsn(parsed, "postgres"))
    try:
        # FORCE (PostgreSQL 13+): a worker killed mid-transaction may leave a session behind.
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await conn.close()


LOCAL_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def pg_server() -> str:
    """The PostgreSQL server for a test that makes its own database: this run's (`make
    test-pg`), else the local one, which `make test` may find running."""
    url = os.environ.get("HELPLINE_TEST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else LOCAL_PG


async def pg_reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        conn = await asyncio.wait_for(asyncpg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username,
            password=parsed.password, database=parsed.database or "postgres"), 3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@asynccontextmanager
async def own_pg_database(prefix: str, *, schema: bool) -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own on `pg_server()` (with the schema, or empty for
    a worker's `db upgrade` to make), dropped afterwards; skips when no server is reachable."""
    server = pg_server()
    if not await pg_reachable(server):
        pytest.skip(f"no PostgreSQL at {make_url(server).host}:{make_url(server).port}")
    url = await create_database(make_url(server), prefix)
    try:
        if schema:
            await (await fresh_database(url)).dispose()
        yield url
    finally:
        await drop_database(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def helpline_env(database_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a `helpline` process: this database, fixed keys, nothing inherited
    from the developer's shell that would start another channel."""
    from storage.crypto import new_key

    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "VK_", "WEB_", "DATABASE_", "ENCRYPTION_", "ID_HASH"))
    }
    env.update(
        DATABASE_URL=database_url,
        ENCRYPTION_KEYS=new_key(),
        ID_HASH_KEY="production-test-id-hash-key",
        KEYS_FILE=str(tmp / "keys.json"),
        EVIDENCE_DIR=str(tmp / "evidence"),
        VK_TOKEN="",
        WEB_ENABLED="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def helpline(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `python -m bot ARGS` to completion; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"helpline {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@asynccontextmanager
async def own_database(prefix: str) -> AsyncIterator[Database]:
    """A PostgreSQL database of this test's own, with the schema made, dropped afterwards (or a
    skip when the run has no PostgreSQL)."""
    url = await create_database(pg_base_url(), prefix)
    database = Database(url)
    await database.create_all()
    try:
        yield database
    finally:
        await database.dispose()
        await drop_database(url)
