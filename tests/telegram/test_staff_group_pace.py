"""The staff group's own limit: Telegram lets a bot post 20 messages a minute in a group. Every
post of the desk takes a token from the group's bucket, and what a child writes while their
case's topic waits for its turn goes into the topic as one post, each line once and in order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.client.telegram import TelegramAPIServer

from bot.app import build_app
from bot.pacing import Pacer, telegram_pacer
from bot.telegram import build_telegram
from bot.telegram.polling import Poller
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos

from .conftest import CHILD, Harness, PlainHttpSession, add_counsellors, make_settings
from .fake_api import STAFF_CHAT, FakeTelegram

RATE, BURST = 2.0, 3.0  # the group's posts a second and its burst, in this test


@pytest.fixture
async def paced(fake: FakeTelegram, tmp_path: Path, db: Database,
                kb: KnowledgeBase) -> AsyncIterator[Harness]:
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    await add_counsellors(app)
    bot, dp, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        # Telegram's per-group limit, scaled down so that a test sees it: 3 posts at once,
        # then 2 a second.
        pacer=Pacer(global_rate=10_000, chat_rate=10_000, group_per_minute=RATE * 60,
                    group_burst=BURST))
    await channels.start_up()
    # The production polling loop (updates fed in order, journalled in batches), not
    # aiogram's, which handles a burst's updates concurrently.
    stop = asyncio.Event()
    poller = Poller(bot, dp, timeout=1, room=app.mailbox.room, full=lambda: app.mailbox.full,
                    journal=app.batching)
    task = asyncio.create_task(poller.run(stop))
    try:
        yield Harness(fake, app, bot, dp, channels)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await app.drain()
        await bot.session.close()


def staff_posts(fake: FakeTelegram) -> list[float]:
    """When each post (a message, a file, a new topic) reached the staff group."""
    return sorted(c.at for c in fake.calls if c.status == 200 and (
        (c.method in ("sendMessage", "sendPhoto", "sendDocument") and c.chat_id == STAFF_CHAT)
        or c.method == "createForumTopic"))


async def test_a_busy_topic_gets_the_childs_lines_together_within_the_groups_limit(
    paced: Harness,
) -> None:
    tg = paced
    case_id, thread, _card = await tg.open_case()
    await tg.take(case_id, thread)
    lines = [f"строка {n}: сегодня была контрольная по алгебре" for n in range(1, 9)]
    for line in lines:
        await tg.fake.child_says(CHILD, line)
    await tg.fake.text_to(STAFF_CHAT, "строка 8:", thread=thread, wait=10)

    # The counsellor: every line in the topic exactly once, in the order the child wrote them,
    # in fewer posts than lines (the ones that waited for the group's turn went together).
    posts = [c for c in tg.fake.sent_to(STAFF_CHAT)
             if c.thread == thread and "строка " in c.text]
    text = "\n".join(p.text for p in posts)
    assert [text.count(line) for line in lines] == [1] * len(lines)
    assert [text.index(line) for line in lines] == sorted(text.index(line) for line in lines)
    assert all(line.startswith("🧒 строка") for p in posts for line in p.text.split("\n\n"))
    assert len(posts) < len(lines)

    # The group's limit held: never more posts in a window than the burst plus its refill.
    times = staff_posts(tg.fake)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            assert j - i + 1 <= BURST + RATE * window + 1, (i, j, window)

    # Stored: every desk notice of the case marked delivered (just after its post), and none
    # sent again afterwards.
    for _ in range(50):
        async with tg.app.db.session() as session:
            pending = await Repos(session).outbox.pending("desk", str(case_id), limit=50)
        if not pending:
            break
        await asyncio.sleep(0.05)
    assert list(pending) == []
    await asyncio.sleep(1.0)
    again = "\n".join(c.text for c in tg.fake.sent_to(STAFF_CHAT) if c.thread == thread)
    assert [again.count(line) for line in lines] == [1] * len(lines)


async def test_danger_in_a_busy_topic_is_flagged_and_goes_first(paced: Harness) -> None:
    tg = paced
    case_id, thread, _card = await tg.open_case()
    await tg.take(case_id, thread)
    for n in range(1, 5):  # the group's budget is spent: these wait for its turn
        await tg.fake.child_says(CHILD, f"обычная строка {n}")
    await tg.fake.child_says(CHILD, "я больше не хочу жить")
    # The child: the numbers at once.
    told = await tg.fake.text_to(CHILD, "8-800-2000-122")
    assert "124" in told.text
    # The counsellor: the line flagged in the topic, the risk raised; the ordinary lines all
    # arrive too, each once.
    flagged = await tg.fake.text_to(STAFF_CHAT, "ОПАСНОСТЬ", thread=thread, wait=10)
    assert "не хочу жить" in flagged.text
    await tg.fake.text_to(STAFF_CHAT, "обычная строка 4", thread=thread, wait=10)
    text = "\n".join(c.text for c in tg.fake.sent_to(STAFF_CHAT) if c.thread == thread)
    assert [text.count(f"обычная строка {n}") for n in range(1, 5)] == [1, 1, 1, 1]
    assert (await tg.case(case_id)).risk == "critical"


def test_the_shipped_limit_is_twenty_posts_a_minute_per_group() -> None:
    limits = dict((key, (rate, burst)) for key, rate, burst in
                  telegram_pacer()._limits(str(STAFF_CHAT)))
    assert limits[f"telegram:group:{STAFF_CHAT}"] == (20 / 60, 20)


async def test_a_group_takes_turns_urgent_first_and_never_over_its_budget() -> None:
    """Posts waiting for the group's budget: the critical alert gets the next free turn, ahead
    of the routine lines that came before it, and no post goes over the budget."""
    import time

    pacer = Pacer(global_rate=10_000, group_per_minute=RATE * 60, group_burst=1)
    posted: list[tuple[str, float]] = []

    async def post(name: str, urgent: bool = False) -> None:
        await pacer.wait(str(STAFF_CHAT), urgent=urgent)
        posted.append((name, time.monotonic()))

    routine = [asyncio.create_task(post(f"line {n}")) for n in range(4)]
    await asyncio.sleep(0.1)  # the first line went; three wait for their turn
    alert = asyncio.create_task(post("alert", urgent=True))
    await asyncio.gather(*routine, alert)
    assert [name for name, _ in posted] == ["line 0", "alert", "line 1", "line 2", "line 3"]
    times = [at for _, at in posted]
    assert all(b - a >= 0.9 / RATE for a, b in itertools.pairwise(times))
