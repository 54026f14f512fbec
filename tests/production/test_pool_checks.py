"""PostgreSQL's pooled connections: checked before use without a round trip per checkout.

SQLAlchemy's `pool_pre_ping` sent BEGIN, an empty query and ROLLBACK before every checkout,
about three times per update (a third of the hot path's round trips, each a wait on a
saturated loop for a danger turn too). `storage.db` pings only a connection idle longer than
`PING_AFTER_IDLE_S`, and drops at once a connection whose socket the server has closed, which is
what a database restart or a terminated backend leaves in the pool.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text

from storage import db as db_module
from storage.db import Database
from tests.production.conftest import dsn_of, own_pg_database

pytestmark = pytest.mark.asyncio


def _count_pings(monkeypatch: pytest.MonkeyPatch, database: Database) -> list[int]:
    pings: list[int] = []
    dialect_type: Any = type(database.engine.dialect)
    real = dialect_type.do_ping

    def counted(self: Any, dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real(self, dbapi_connection))

    monkeypatch.setattr(dialect_type, "do_ping", counted)
    return pings


async def _one(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


async def test_a_connection_in_steady_use_is_not_pinged_one_idle_for_long_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with own_pg_database("pool_ping", schema=False) as url:
        database = Database(url)
        pings = _count_pings(monkeypatch, database)
        try:
            for _ in range(10):
                assert await _one(database) == 1
            assert pings == [], "a connection checked in a moment ago was pinged again"
            monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.05)
            await asyncio.sleep(0.1)
            assert await _one(database) == 1
            assert pings == [1], "a connection idle past the limit was used without a ping"
        finally:
            await database.dispose()


async def test_after_the_server_closes_the_connections_the_next_transaction_works() -> None:
    """What a restart of PostgreSQL does to a running line: every pooled connection closed by
    the server. The next unit of work gets a fresh connection instead of failing."""
    async with own_pg_database("pool_restart", schema=True) as url:
        database = Database(url)
        try:
            # Several connections in the pool, all checked in.
            async def held() -> None:
                async with database.session() as session:
                    await session.execute(text("SELECT pg_sleep(0.05)"))

            await asyncio.gather(*(held() for _ in range(4)))
            admin = await asyncpg.connect(dsn_of(url))
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            finally:
                await admin.close()
            assert killed >= 4
            await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled sockets
            for _ in range(6):
                assert await _one(database) == 1
            async with database.unit() as stores:
                assert stores is not None
        finally:
            await database.dispose()


async def test_single_runs_each_statement_on_its_own_a_session_in_one_transaction() -> None:
    """`Database.single` sends no BEGIN: each statement is its own transaction (`now()`, the
    transaction's start, moves on), while `session()` keeps one (`now()` stays)."""
    async with own_pg_database("pool_single", schema=False) as url:
        database = Database(url)

        async def clock_moves(session: Any) -> bool:
            first = (await session.execute(text("SELECT now()"))).scalar_one()
            await session.execute(text("SELECT pg_sleep(0.03)"))
            second = (await session.execute(text("SELECT now()"))).scalar_one()
            return bool((second - first).total_seconds() >= 0.03)

        try:
            async with database.single() as session:
                assert await clock_moves(session)
            async with database.session() as session:
                assert not await clock_moves(session)
            # What `single` wrote is there for every other connection once it returns.
            async with database.single() as session:
                await session.execute(text("CREATE TABLE seen (n int)"))
                await session.execute(text("INSERT INTO seen VALUES (1)"))
            other = await asyncpg.connect(dsn_of(url))
            try:
                assert await other.fetchval("SELECT count(*) FROM seen") == 1
            finally:
                await other.close()
            # The pool's connections went back in their usual mode: a session is one transaction.
            for _ in range(3):
                async with database.session() as session:
                    assert not await clock_moves(session)
        finally:
            await database.dispose()
