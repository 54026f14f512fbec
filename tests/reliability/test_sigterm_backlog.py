"""SIGTERM with a backlog: hundreds of children's first messages journalled and not yet
answered, Telegram (the fake) slow to take replies and the send pacing holding the rest. The
worker must still exit with code 0 within Docker's 10 seconds, and the next start must answer
every child exactly once: a send already with the platform when the stop comes is let finish
and marked, not cut short and sent again. On SQLite, and on PostgreSQL when one is reachable."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.production.conftest import create_database, drop_database
from tests.reliability.test_sigterm import stop_mid_work_and_restart
from tests.telegram.test_order_burst import LOCAL_PG, _reachable

CHILDREN = list(range(7001, 7301))


@pytest.fixture
async def empty_pg() -> AsyncIterator[str]:
    """An empty PostgreSQL database of this test's own (the worker's `db upgrade` makes the
    schema); skipped when no server is reachable."""
    server = os.environ.get("HELPLINE_TEST_DATABASE_URL", "")
    server = server if server.startswith("postgresql") else LOCAL_PG
    if not await _reachable(server):
        pytest.skip(f"no PostgreSQL at {make_url(server).host}:{make_url(server).port}")
    url = await create_database(make_url(server), "sigterm")
    try:
        yield url
    finally:
        await drop_database(url)


async def test_sigterm_with_a_backlog_on_sqlite(tmp_path: Path) -> None:
    await stop_mid_work_and_restart(tmp_path, CHILDREN, backlog=True)


async def test_sigterm_with_a_backlog_on_postgresql(tmp_path: Path, empty_pg: str) -> None:
    await stop_mid_work_and_restart(tmp_path, CHILDREN, database=empty_pg, backlog=True)
