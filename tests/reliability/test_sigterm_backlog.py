"""SIGTERM with a backlog: hundreds of children's first messages journalled and not yet
answered, Telegram (the fake) slow to take replies and the send pacing holding the rest. The
worker must still exit with code 0 within Docker's 10 seconds, and the next start must answer
every child exactly once: a send already with the platform when the stop comes is let finish
and marked, not cut short and sent again. On SQLite, and on PostgreSQL when one is reachable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.production.conftest import own_pg_database
from tests.reliability.test_sigterm import stop_mid_work_and_restart

CHILDREN = list(range(7001, 7301))


@pytest.fixture
async def empty_pg() -> AsyncIterator[str]:
    """An empty PostgreSQL database of this test's own (the worker's `db upgrade` makes the
    schema); skipped when no server is reachable."""
    async with own_pg_database("sigterm", schema=False) as url:
        yield url


async def test_sigterm_with_a_backlog_on_sqlite(tmp_path: Path) -> None:
    await stop_mid_work_and_restart(tmp_path, CHILDREN, backlog=True)


async def test_sigterm_with_a_backlog_on_postgresql(tmp_path: Path, empty_pg: str) -> None:
    await stop_mid_work_and_restart(tmp_path, CHILDREN, database=empty_pg, backlog=True)
