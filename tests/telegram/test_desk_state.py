"""The staff group's topic, card and pinned announcement of a case are made once, whichever
worker handles the case and however often the bot restarts: their ids live on the case row.

Two "workers" here are two apps with their own database engine, Bot session and Telegram desk,
on one database (a SQLite file, and PostgreSQL when one is reachable), talking to one fake Bot API.
What the staff group sees is read from the fake's record of calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.app import App, build_app
from bot.delivery import DeliveryError
from bot.pacing import Pacer
from bot.telegram import build_telegram
from bot.telegram.desk import CLAIM_STALE, TelegramDesk
from dialogs.messages import DESK, Address, DeskEvent, Outbound
from dialogs.ratelimit import RateLimiter
from dialogs.taxonomy import Risk
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos
from tests.conftest import fresh_database
from tests.production.conftest import own_pg_database

from .conftest import (
    ANNA,
    CHILD,
    Harness,
    PlainHttpSession,
    add_counsellors,
    make_settings,
    start_channel,
    stop_channel,
)
from .fake_api import STAFF_CHAT, FakeTelegram, _BadRequest

DANGER = "я хочу умереть"
ANNOUNCEMENT = "Критическое обращение"


class SlowTelegram(FakeTelegram):
    """The fake Bot API, answering some methods only after a delay (a slow Telegram), so that
    two workers are both inside the same step at once; and able to delete topics and messages."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: dict[str, float] = {}
        self.general_delay = 0.0  # for messages to the staff group's General topic
        # The next request of a kind ("general" or a method) waits until its event is set: a
        # Telegram that holds one worker's call for as long as a test needs, not a guessed time.
        self.holds: dict[str, asyncio.Event] = {}
        self.announcing = 0  # General messages Telegram is slow to answer right now
        self.creating = 0  # topics Telegram is slow to make right now

    def hold_next(self, kind: str) -> asyncio.Event:
        self.holds[kind] = gate = asyncio.Event()
        return gate

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        delay = self.delays.get(method, 0.0)
        general = False
        if method == "sendMessage" and (self.general_delay or "general" in self.holds):
            form = await request.post()  # aiohttp keeps it: the fake reads it again
            general = form.get("chat_id") == str(STAFF_CHAT) and "message_thread_id" not in form
        gate = self.holds.pop("general" if general else method, None)
        if gate is not None:
            held = int(general), int(method == "createForumTopic")
            self.announcing += held[0]
            self.creating += held[1]
            await gate.wait()
            self.announcing -= held[0]
            self.creating -= held[1]
        elif general and self.general_delay:
            self.announcing += 1
            await asyncio.sleep(self.general_delay)
            self.announcing -= 1
        if delay and gate is None:
            topic = int(method == "createForumTopic")
            self.creating += topic
            await asyncio.sleep(delay)
            self.creating -= topic
        return await super()._api(request)

    def _m_deleteForumTopic(self, params: dict[str, Any]) -> bool:
        if self.topics.pop(int(params["message_thread_id"]), None) is None:
            raise _BadRequest("message thread not found")
        return True

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        if self.messages.pop((int(params["chat_id"]), int(params["message_id"])), None) is None:
            raise _BadRequest("message to delete not found")
        return True


@dataclass
class Worker:
    """One bot process: its own database engine, Bot session and Telegram desk."""

    app: App
    bot: Bot
    desk: TelegramDesk

    async def close(self) -> None:
        await self.bot.session.close()
        await self.app.db.dispose()


# ---------------------------------------------------------------------- the shared database
@pytest.fixture(params=["sqlite", "postgresql"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of this test's own, with the schema: a SQLite file, or a PostgreSQL database
    made for it on the test server (skipped when none is reachable)."""
    if request.param == "postgresql":
        async with own_pg_database("desk_state", schema=True) as url:
            yield url
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await (await fresh_database(url)).dispose()
    yield url


@pytest.fixture
async def slow() -> AsyncIterator[SlowTelegram]:
    api = SlowTelegram()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def workers(slow: SlowTelegram, tmp_path: Path, shared_url: str,
                  kb: KnowledgeBase) -> AsyncIterator[tuple[Worker, Worker]]:
    """Two workers on the shared database, with two counsellors registered."""
    made = [_worker(slow, tmp_path, shared_url, kb) for _ in range(2)]
    await add_counsellors(made[0].app)
    try:
        yield made[0], made[1]
    finally:
        for w in made:
            await w.close()


def _worker(fake: FakeTelegram, tmp_path: Path, url: str, kb: KnowledgeBase) -> Worker:
    app = build_app(make_settings(fake, tmp_path, database_url=url), db=Database(url), kb=kb)
    bot, _, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=Pacer(global_rate=10_000, chat_rate=10_000))
    assert channels.desk is not None
    return Worker(app, bot, channels.desk)


# ---------------------------------------------------------------------- the case and its notices
async def open_case(app: App, risk: Risk = Risk.CRITICAL) -> int:
    """A case as the engine opens it, with no topic yet."""
    async with app.db.session() as session:
        case = await Repos(session).cases.open(
            user_id=None, channel="telegram", category="self-harm", risk=risk.value,
            risk_rank=risk.rank, answers={}, signals={"signals": ["suicide"]})
        return case.id


def notice(case_id: int, event: DeskEvent, text: str = "", *, critical: bool = True) -> Outbound:
    """A desk notice as the outbox hands it to a desk."""
    return Outbound(to=Address(DESK, str(case_id)), text=text, case_id=case_id,
                    desk_event=event, critical=critical, meta={"danger": "1"} if text else {})


async def until_delivered(send: Callable[[], Awaitable[None]], tries: int = 50) -> int:
    """Send like the outbox does: a temporary failure (the topic is being made by another
    worker) is tried again a little later. Returns how many tries it took."""
    for attempt in range(1, tries + 1):
        try:
            await send()
            return attempt
        except DeliveryError as exc:
            assert not exc.permanent and exc.kind == "topic_pending"
            await asyncio.sleep(0.05)
    raise AssertionError("never delivered")


async def eventually(check: Callable[[], bool], wait: float = 5.0) -> None:
    deadline = time.monotonic() + wait
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)


def announcements(fake: FakeTelegram) -> list[int]:
    return [c.message_id for c in fake.calls_of("sendMessage", chat_id=STAFF_CHAT)
            if c.status == 200 and c.thread is None and ANNOUNCEMENT in c.text]


def topics_of(fake: FakeTelegram, case_id: int) -> list[str]:
    return [c["name"] for c in fake.calls_of("createForumTopic")
            if c.status == 200 and c["name"].startswith(f"#{case_id} ")]


def cards_of(fake: FakeTelegram, case_id: int) -> list[int]:
    return [c.message_id for c in fake.calls_of("sendMessage", chat_id=STAFF_CHAT)
            if c.status == 200 and c.thread is not None and f"Обращение #{case_id}" in c.text]


async def row(app: App, case_id: int) -> Any:
    async with app.db.session() as session:
        return await Repos(session).cases.get(case_id)


# ---------------------------------------------------------------------- two workers at once
async def test_a_critical_case_is_announced_and_pinned_once_by_two_workers(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app)
    await one.desk.send(notice(case_id, DeskEvent.CASE_OPENED))
    [_] = announcements(slow)
    # Two later notices of the case, each on another worker, at the same moment: the child
    # writes danger words again, a counsellor's note raised the case; a slow Telegram keeps
    # both inside the announcement at once.
    slow.delays["sendMessage"] = 0.2
    await asyncio.gather(
        one.desk.send(notice(case_id, DeskEvent.CHILD_MESSAGE, DANGER)),
        two.desk.send(notice(case_id, DeskEvent.CASE_RAISED)),
    )
    assert len(announcements(slow)) == 1
    assert [int(c["message_id"]) for c in slow.calls_of("pinChatMessage")] == announcements(slow)
    assert len(topics_of(slow, case_id)) == 1 and len(cards_of(slow, case_id)) == 1
    case = await row(two.app, case_id)
    assert case.desk_announcement_message_id == announcements(slow)[0]
    assert case.desk_announcement_pinned_at is not None


async def test_two_workers_opening_one_case_at_once_make_one_topic_and_one_card(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    """The outbox gave the opening notice to a second worker while the first was still waiting
    for Telegram to make the topic (its claim on the notice had run out)."""
    one, two = workers
    case_id = await open_case(one.app)
    held = slow.hold_next("createForumTopic")  # the first worker's topic, until released
    opened = notice(case_id, DeskEvent.CASE_OPENED)
    first = asyncio.create_task(one.desk.send(opened))
    await eventually(lambda: slow.creating > 0)  # the first worker waits for Telegram
    with pytest.raises(DeliveryError) as waiting:  # the second waits for the first one's topic
        await two.desk.send(opened)
    assert waiting.value.kind == "topic_pending" and not waiting.value.permanent
    held.set()
    await until_delivered(lambda: two.desk.send(opened))
    await first
    assert len(topics_of(slow, case_id)) == 1
    [card] = cards_of(slow, case_id)
    assert len(announcements(slow)) == 1 and len(slow.calls_of("pinChatMessage")) == 1
    case = await row(one.app, case_id)
    assert case.desk_thread_id in slow.topics and case.desk_card_message_id == card
    assert case.desk_topic_claimed_at is None


async def test_a_notice_on_another_worker_waits_for_the_topic_instead_of_making_one(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app, Risk.HIGH)
    held = slow.hold_next("createForumTopic")
    first = asyncio.create_task(one.desk.send(notice(case_id, DeskEvent.CASE_OPENED)))
    await eventually(lambda: slow.creating > 0)
    scared = notice(case_id, DeskEvent.CHILD_MESSAGE, "мне страшно", critical=False)
    with pytest.raises(DeliveryError) as waiting:
        await two.desk.send(scared)
    assert waiting.value.kind == "topic_pending"
    assert topics_of(slow, case_id) == [], "the second worker made no topic of its own"
    held.set()
    await until_delivered(lambda: two.desk.send(scared))
    await first
    [topic] = topics_of(slow, case_id)
    thread = next(t for t, name in slow.topics.items() if name == topic)
    assert [c.thread for c in slow.sent_to(STAFF_CHAT) if "мне страшно" in c.text] == [thread]


async def test_a_claim_left_by_a_dead_worker_is_taken_over_once_stale(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app)
    now = utcnow()
    async with one.app.db.session() as session:  # claimed, then killed before Telegram answered
        assert await Repos(session).desk.claim_topic(case_id, None, now, now - CLAIM_STALE)
    with pytest.raises(DeliveryError):
        await two.desk.send(notice(case_id, DeskEvent.CASE_OPENED))
    assert topics_of(slow, case_id) == []
    two.desk.clock = lambda: utcnow() + CLAIM_STALE + timedelta(seconds=1)
    await two.desk.send(notice(case_id, DeskEvent.CASE_OPENED))
    assert len(topics_of(slow, case_id)) == 1 and len(cards_of(slow, case_id)) == 1


async def test_a_card_a_dead_worker_never_posted_is_posted_once_by_the_next_notice(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app, Risk.HIGH)
    # The first worker made the topic and saved it, and was killed before posting the card.
    then = utcnow() - CLAIM_STALE - timedelta(seconds=1)
    topic = await one.bot.create_forum_topic(STAFF_CHAT, f"#{case_id} · self-harm · HIGH")
    async with one.app.db.session() as session:
        repos = Repos(session)
        assert await repos.desk.claim_topic(case_id, None, then, then - CLAIM_STALE)
        assert await repos.desk.save_topic(case_id, then, topic.message_thread_id)
    await asyncio.gather(
        two.desk.send(notice(case_id, DeskEvent.CHILD_MESSAGE, "вы тут?", critical=False)),
        one.desk.send(notice(case_id, DeskEvent.CHILD_MESSAGE, "ау", critical=False)),
    )
    [card] = cards_of(slow, case_id)
    assert (await row(one.app, case_id)).desk_card_message_id == card
    assert len(topics_of(slow, case_id)) == 1


async def test_a_slow_worker_whose_claim_was_taken_over_deletes_its_topic(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app, Risk.HIGH)
    held = slow.hold_next("createForumTopic")  # the first worker's topic, until released
    opened = notice(case_id, DeskEvent.CASE_OPENED)
    first = asyncio.create_task(until_delivered(lambda: one.desk.send(opened)))
    await eventually(lambda: slow.creating > 0)
    # The second worker's clock says the first one's claim is stale: it makes the topic.
    two.desk.clock = lambda: utcnow() + CLAIM_STALE + timedelta(seconds=1)
    await until_delivered(lambda: two.desk.send(opened))
    held.set()
    await first
    case = await row(one.app, case_id)
    made = topics_of(slow, case_id)
    assert len(made) == 2, "both asked Telegram"
    assert [t for t, name in slow.topics.items() if name in made] == [case.desk_thread_id]
    assert len(slow.calls_of("deleteForumTopic")) == 1
    assert len(cards_of(slow, case_id)) == 1


async def test_a_case_taken_while_it_is_being_announced_is_not_left_pinned(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    """Anna takes the case on another worker while the announcement is on its way to Telegram:
    that worker finds no announcement to unpin; the one that posted it unpins it."""
    one, two = workers
    case_id = await open_case(one.app)
    slow.general_delay = 0.3
    first = asyncio.create_task(one.desk.send(notice(case_id, DeskEvent.CASE_OPENED)))
    await eventually(lambda: slow.announcing > 0)
    anna = await two.app.desk.identify("telegram", str(ANNA))
    taken = await two.app.desk.take(anna, case_id) if anna is not None else None
    assert taken is not None and taken.ok
    # The take's desk event, rendered by the other worker's desk.
    [event] = [m for m in taken.outbound if m.desk_event is DeskEvent.CASE_TAKEN]
    await two.desk.send(event)
    await first
    [announced] = announcements(slow)
    # Unpinned by the poster, or by both when the taker was slow enough to find it saved.
    unpinned = {int(c["message_id"]) for c in slow.calls_of("unpinChatMessage")}
    assert unpinned == {announced} and slow.pinned == set()
    [edited] = slow.calls_of("editMessageText", message_id=announced)
    assert "взял(а) anna" in edited.text
    assert (await row(one.app, case_id)).desk_announcement_message_id is None


async def test_a_slow_worker_whose_announcement_claim_was_taken_over_deletes_its_message(
    workers: tuple[Worker, Worker], slow: SlowTelegram
) -> None:
    one, two = workers
    case_id = await open_case(one.app)
    held = slow.hold_next("general")  # the first worker's announcement, until released
    first = asyncio.create_task(one.desk.send(notice(case_id, DeskEvent.CASE_OPENED)))
    await eventually(lambda: slow.announcing > 0)
    two.desk.clock = lambda: utcnow() + CLAIM_STALE + timedelta(seconds=1)
    await two.desk.send(notice(case_id, DeskEvent.CHILD_MESSAGE, DANGER))
    held.set()
    await first
    sent = announcements(slow)
    assert len(sent) == 2, "both asked Telegram"
    live = [m for m in sent if (STAFF_CHAT, m) in slow.messages]
    case = await row(one.app, case_id)
    assert live == [case.desk_announcement_message_id] and slow.pinned == set(live)
    assert len(slow.calls_of("deleteMessage")) == 1


# ---------------------------------------------------------------------- a restart
async def restart(fake: FakeTelegram, tmp_path: Path, db: Database,
                  kb: KnowledgeBase) -> tuple[Harness, asyncio.Task[None], Database]:
    """A new process on the same database: new app, bot and desk, nothing in memory.
    Telegram does not send again the updates the first process confirmed."""
    fresh = Database(db.url)
    app = build_app(make_settings(fake, tmp_path, database_url=db.url), db=fresh, kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    bot, dp, channels = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=Pacer(global_rate=10_000, chat_rate=10_000))
    fake.updates.clear()
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    return Harness(fake, app, bot, dp, channels), task, fresh


async def test_after_a_restart_the_card_is_edited_and_the_old_announcement_unpinned(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    tg, task = await start_channel(fake, tmp_path, db, kb)
    try:
        await tg.start_as_child()
        await fake.text_to(CHILD, "Чем я могу помочь")
        await fake.child_says(CHILD, DANGER)
        announce = await fake.next_call(
            "sendMessage", chat_id=STAFF_CHAT,
            where=lambda c: c.thread is None and ANNOUNCEMENT in c.text)
        await fake.next_call("pinChatMessage", message_id=announce.message_id)
        card = await fake.next_call("sendMessage", chat_id=STAFF_CHAT,
                                    where=lambda c: c.thread is not None and c.buttons)
    finally:
        await stop_channel(tg, task)
    case_id = int(card.text.split("#")[1].split()[0])

    tg, task, fresh = await restart(fake, tmp_path, db, kb)
    restarted = time.monotonic()
    try:
        # The child writes danger words again: copied to the topic, not announced again.
        await fake.child_says(CHILD, DANGER)
        await fake.next_call("sendMessage", chat_id=STAFF_CHAT, message_thread_id=card.thread,
                             where=lambda c: c.at > restarted and DANGER in c.text)
        # Anna takes the case from the queue (not from the card or the announcement).
        await fake.staff_says(ANNA, "/queue")
        listing = await fake.text_to(STAFF_CHAT, "самые срочные первыми")
        await fake.staff_presses(ANNA, listing.button(f"#{case_id}"))
        await fake.text_to(STAFF_CHAT, "взял(а)", thread=card.thread)
        await fake.next_call("unpinChatMessage", message_id=announce.message_id)
        edited = await fake.next_call("editMessageText", message_id=card.message_id)
        assert "anna" in edited.text
        assert announce.message_id not in fake.pinned
        assert announcements(fake) == [announce.message_id]
        assert len(fake.calls_of("pinChatMessage")) == 1
        assert cards_of(fake, case_id) == [card.message_id], "the card was not posted again"
        case = await tg.case(case_id)
        assert case.desk_card_message_id == card.message_id
        assert case.desk_announcement_message_id is None
    finally:
        await stop_channel(tg, task)
        await fresh.dispose()
