"""SIGTERM with a backlog: hundreds of children's first messages journalled and not yet
answered, Telegram (the fake) slow to take replies and the send pacing holding the rest. The
worker must still exit with code 0 within Docker's 10 seconds, and the next start must answer
every child exactly once: a send already with the platform when the stop comes is let finish
and marked, not cut short and sent again. On SQLite, and on PostgreSQL when one is reachable."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.production.conftest import create_database, drop_database
from tests.reliability.test_kill import _start
from tests.reliability.test_sigterm import REPLIES, _fake_and_schema, _stop, _wait
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
    await _backlog_stop(tmp_path, None)


async def test_sigterm_with_a_backlog_on_postgresql(tmp_path: Path, empty_pg: str) -> None:
    await _backlog_stop(tmp_path, empty_pg)


async def _backlog_stop(tmp_path: Path, database: str | None) -> None:
    fake, env = await _fake_and_schema(tmp_path, database)
    log_path = tmp_path / "worker.log"
    log = log_path.open("ab")
    worker = _start(env, log)
    try:
        await _wait(lambda: fake.polls > 0, 60, "the worker to poll")
        for child in CHILDREN:
            await fake.child_says(child, "привет")
        last = fake.updates[-1]["update_id"]
        await _wait(lambda: fake.served >= last, 20, "the worker to fetch the messages")
        await asyncio.sleep(0.5)  # a backlog builds behind the slow API
        answered = sum(bool(fake.texts_to(c)) for c in CHILDREN)
        assert answered < len(CHILDREN) // 2, "no backlog left to test the stop with"
        code, took = await _stop(worker)
        assert code == 0, log_path.read_text()[-3000:]
        assert took < 10, f"took {took:.1f}s to stop"
        worker = _start(env, log)
        started = time.monotonic()
        await _wait(lambda: all(len(fake.texts_to(c)) >= len(REPLIES) for c in CHILDREN), 120,
                    "every child to be answered")
        await asyncio.sleep(1.5)  # a repeat would come now
        code, took = await _stop(worker)
        assert code == 0 and took < 10, (code, took, time.monotonic() - started)
    finally:
        if worker.poll() is None:
            worker.kill()
        await fake.stop()
        log.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
    wrong = {c: [t[:30] for t in fake.texts_to(c)] for c in CHILDREN
             if len(fake.texts_to(c)) != len(REPLIES)}
    assert not wrong, (len(wrong), list(wrong.items())[:5])
