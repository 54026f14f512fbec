"""The staff group's own limit: Telegram lets a bot post 20 messages a minute in a group. Every
post of the desk takes a token from the group's bucket, and what a child writes while their
case's topic waits for its turn goes into the topic as one post, each line once and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.client.telegram import TelegramAPIServer

from bot.app import build_app
from bot.pacing import Pacer, telegram_pacer
from bot.telegram import build_telegram
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos

from .conftest import CHILD, Harness, PlainHttpSession, add_counsellors, make_settings
from .fake_api import STAFF_CHAT, FakeTelegram

RATE, BURST = 2.0, 3.0  # the group's posts a second and its burst, in this test


class SmallGroupBudget(Pacer):
    """Telegram's per-group limit, scaled down so that a test sees it: 3 posts at once, then
    2 a second. Private chats have only the (lifted) limit of the whole bot."""

    def _limits(self, chat_id: str) -> list[tuple[str, float, float]]:
        limits = [("all", self.global_rate, self.global_rate)]
        if chat_id.startswith("-"):
            limits.append((f"group:{chat_id}", RATE, BURST))
        return limits


@pytest.fixture
async def paced(fake: FakeTelegram, tmp_path: Path, db: Database,
                kb: KnowledgeBase) -> AsyncIterator[Harness]:
    app = build_app(make_settings(fake, tmp_path), db=db, kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    await add_counsellors(app)
    bot, dp, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=SmallGroupBudget(global_rate=10_000))
    await channels.start_up()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield Harness(fake, app, bot, dp, channels)
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(task, 5)


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
