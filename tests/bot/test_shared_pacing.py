"""Telegram's limits held across workers: two workers' pacers take from one budget in
PostgreSQL, so together they send no faster than one bot may (30 a second, 20 a minute to the
staff group, about one a second per chat); danger replies and critical alerts go first.

The buckets say how long each send must wait; the test reads those waits (no sleeping), as
the sends of a burst would be spaced. Skipped unless HELPLINE_TEST_DATABASE_URL is PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.pacing import LocalBuckets, telegram_pacer
from storage.db import Database
from storage.ratebuckets import SharedBuckets
from tests.production.conftest import own_database

STAFF_GROUP = "-1001234567890"


@pytest.fixture
async def pg() -> AsyncIterator[Database]:
    async with own_database("pacing") as database:
        yield database


async def test_two_workers_share_the_bot_wide_budget(pg: Database) -> None:
    first, second = SharedBuckets(pg), SharedBuckets(pg)
    waits = []
    for n in range(90):  # a burst of 90 sends to 90 children, alternating workers
        worker = first if n % 2 else second
        waits.append(await worker.take("telegram:all", 30, 30))
    assert waits[:29] == [0.0] * 29, "the first 30 go at once (Telegram's burst)"
    # 90 sends at 30 a second, 30 of them at once: the last waits about two seconds.
    assert 1.6 < waits[-1] <= 2.0, waits[-1]
    local = LocalBuckets()
    alone = [await local.take("telegram:all", 30, 30) for _ in range(45)]
    assert max(alone) < 0.6, "one worker's own bucket would not have seen the other's sends"


async def test_the_staff_group_stays_under_twenty_a_minute_across_workers(pg: Database) -> None:
    key = f"telegram:group:{STAFF_GROUP}"
    waits = [await SharedBuckets(pg).take(key, 20 / 60, 20) for _ in range(30)]
    # 20 at once, then one every three seconds: the 30th waits about 30 seconds.
    assert waits[19] == 0.0 and 29 < waits[-1] <= 30.5, waits[-1]


async def test_an_urgent_send_goes_at_once_and_the_others_wait_behind_it(
    pg: Database,
) -> None:
    worker = telegram_pacer(SharedBuckets(pg))
    other = telegram_pacer(SharedBuckets(pg))
    buckets = SharedBuckets(pg)
    for _ in range(60):  # a busy line: a second or two of sends already queued
        before = await buckets.take("telegram:all", 30, 30)
    assert before > 0.5, "an ordinary send now would wait"
    waited = await worker.wait("555", urgent=True)  # the danger reply
    assert waited == 0.0, "the danger reply goes at once"
    after = await buckets.take("telegram:all", 30, 30)
    # The next ordinary send waits behind the queue and the urgent one (two tokens more,
    # less the few milliseconds between the calls).
    assert after > before + 1 / 30, (before, after)
    assert other.scope == worker.scope == "telegram"
