"""A child's danger message racing a counsellor's Take, on PostgreSQL: no deadlock, ever.

The engine's turn and the desk's Take both lock the child's conversation and the case. They
take those locks in one order (the conversation, then the counsellor, then the case), so the
two never wait on each other in a cycle. Thirty rounds, each a fresh child whose case waits in
the queue: the child writes danger words at the moment a counsellor presses Take. Every round,
both succeed: the child has the emergency numbers, the counsellor holds the case, the case is
critical and the desk saw the line flagged. Skipped unless HELPLINE_TEST_DATABASE_URL is a
PostgreSQL URL (`make test-pg`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import DESK, Channel, DeskEvent, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos
from tests.production.conftest import own_database

ROUNDS = 30
DANGER = "я больше не хочу жить, сегодня всё закончу"


@pytest.fixture
async def pg() -> AsyncIterator[Database]:
    async with own_database("take_race") as database:
        yield database


def _say(child: str, words: str, update: int) -> Inbound:
    return Inbound(Channel.TELEGRAM, child, child, text=words, update_id=str(update))


async def test_danger_racing_take_never_deadlocks(
    pg: Database, kb: KnowledgeBase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    engine = DialogEngine(pg, kb=kb)
    desk = Desk(engine)
    failures: list[str] = []
    before = await _deadlocks(pg)
    for n in range(ROUNDS):
        child = f"race-{n}"
        counsellor = await desk.add_counsellor(f"Анна {n}", "console", f"anna-{n}")
        base = 1000 * (n + 1)
        for i, step in enumerate(("привет", "ребёнок")):
            await engine.handle(_say(child, step, base + i))
        person = Inbound(Channel.TELEGRAM, child, child, payload="g|person",
                         update_id=str(base + 5))
        await engine.handle(person)  # "talk to a person": the case waits in the queue
        async with pg.session() as s:
            user = await Repos(s).users.find("telegram", child)
            assert user is not None
            case = await Repos(s).cases.open_for_user(user.id)
            assert case is not None and case.status == "waiting", "the case waits"
            case_id = case.id
        danger, taken = await asyncio.gather(
            engine.handle(_say(child, DANGER, base + 9)),
            desk.take(counsellor, case_id),
            return_exceptions=True,
        )
        if isinstance(danger, BaseException) or isinstance(taken, BaseException):
            failures.append(f"round {n}: {danger!r} / {taken!r}")
            continue
        child_saw = "\n".join(o.text for o in danger if not o.to.is_desk)
        assert "8-800-2000-122" in child_saw and "112" in child_saw, child_saw
        assert taken.ok, taken
        alerts = [o for o in danger if o.to.channel == DESK]
        assert alerts and all(o.critical for o in alerts), "the desk saw it critical"
        assert any(o.desk_event in (DeskEvent.CASE_RAISED, DeskEvent.CHILD_MESSAGE)
                   for o in alerts)
        async with pg.session() as s:
            stored = await Repos(s).cases.get(case_id)
            assert stored is not None
            assert (stored.status, stored.owner_id, stored.risk) == (
                "active", counsellor.id, "critical"
            )
    assert failures == [], failures
    deadlocks = await _deadlocks(pg) - before
    retried = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert deadlocks == 0, f"{deadlocks} deadlocks in {ROUNDS} rounds (retried: {retried})"


async def _deadlocks(db: Database) -> int:
    """PostgreSQL's own count of deadlocks detected in this database."""
    await asyncio.sleep(1.2)  # the statistics are flushed about once a second
    async with db.session() as s:
        await s.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = await s.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(found.scalar_one())
