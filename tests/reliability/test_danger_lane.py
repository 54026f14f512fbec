"""The danger lane (issue 20): a child in danger is not kept waiting behind ordinary work.

- A chat with danger waiting never waits for a free slot, however many chats are queued.
- A child who floods and then writes danger gets the danger answered first (the emergency
  contacts before the flood's replies), and the counsellors' alert with it.
- The SQLite writer's turn: danger work goes before the ordinary transactions queued for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextvars import copy_context
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import mailbox, metrics
from bot.app import App
from bot.delivery import Delivery
from bot.locks import ChatKey, LocalClaims
from bot.mailbox import Handled, Mailbox, MailboxLimits, Slots
from bot.settings import Settings
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import Address, DeskEvent, Inbound, Outbound, outbound_to_dict
from dialogs.ratelimit import RateLimiter
from dialogs.taxonomy import Risk
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.lane import (
    Lane,
    LaneGate,
    LaneLock,
    LaneLoop,
    danger_lane,
    in_danger_lane,
    intake_lane,
    lane,
    new_loop,
    run,
)
from storage.models import InboxUpdate, Message, ProcessedUpdate, utcnow
from storage.repositories import Repos
from tests.reliability.test_mailbox import DANGER, Phone, says

HOTLINE = "8-800-2000-122"


class SlowEngine(DialogEngine):
    """Echoes every message; ordinary ones wait at `gate` (a slow database, a busy machine),
    danger does not. Records whether each ran in the danger lane."""

    gate: asyncio.Event
    lanes: dict[str, bool]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = 0  # ordinary turns that reached the gate
        self.two_waiting = asyncio.Event()

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        assert inbound.text is not None and inbound.update_id is not None
        self.lanes[inbound.text] = in_danger_lane()
        if inbound.text != DANGER:
            self.waiting += 1
            if self.waiting >= 2:
                self.two_waiting.set()
            await self.gate.wait()
        to = Address(str(inbound.channel), inbound.chat_id)
        reply = Outbound(to=to, text=f"эхо {inbound.text}")
        async with self.db.unit() as repos:
            if not await repos.updates.claim(str(inbound.channel), inbound.update_id):
                return []
            await repos.inbox.mark_handled(str(inbound.channel), inbound.update_id)
            row = await repos.outbox.add(to.channel, to.chat_id, outbound_to_dict(reply))
        return [replace(reply, meta={"outbox_id": str(row.id)})]


def make_app(db: Database, kb: KnowledgeBase, engine: DialogEngine,
             limits: MailboxLimits | None = None) -> tuple[App, Screen]:
    app = App(settings=Settings.model_construct(default_locale="ru"), db=db, kb=kb,
              engine=engine, desk=Desk(engine), delivery=Delivery(db),
              limits=limits or MailboxLimits())
    phone = Screen()
    app.delivery.register("telegram", phone)
    return app, phone


class DeskScreen:
    """The staff desk: every notice the bot sent it."""

    def __init__(self) -> None:
        self.alerts: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.alerts.append(message)


def slow_engine(db: Database, kb: KnowledgeBase) -> SlowEngine:
    engine = SlowEngine(db, kb=kb)
    engine.gate, engine.lanes = asyncio.Event(), {}
    # The order of a chat's messages is what is tried here, not the flood limit (taken at
    # intake): thirty messages in a row are all let in.
    engine.limiter = RateLimiter(burst=10_000, per_second=10_000.0)
    return engine


class Screen(Phone):
    """The child's screen, telling when the first message arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def send(self, message: Outbound) -> None:
        await super().send(message)
        self.arrived.set()


async def test_danger_never_waits_for_a_free_slot(db: Database, kb: KnowledgeBase) -> None:
    engine = slow_engine(db, kb)
    app, phone = make_app(db, kb, engine, MailboxLimits(chats=2, backlog=100))
    for n in range(1, 11):  # ten chats, two worked on, eight queued for a slot, all stuck
        await app.accept(says(f"привет {n}", n, chat=str(n)))
    # Both slots taken (two chats at the engine's gate) before danger comes.
    await asyncio.wait_for(engine.two_waiting.wait(), 5)
    await app.accept(says(DANGER, 99, chat="99"))
    await asyncio.wait_for(phone.arrived.wait(), 5)
    assert phone.seen == [f"эхо {DANGER}"], "danger is answered while every slot is taken"
    assert engine.lanes[DANGER] is True and engine.lanes["привет 1"] is False
    engine.gate.set()
    await app.drain()
    assert len(phone.seen) == 11
    await app.close()


async def test_a_chat_waiting_for_a_slot_is_let_in_when_danger_arrives(
    db: Database, kb: KnowledgeBase
) -> None:
    engine = slow_engine(db, kb)
    app, phone = make_app(db, kb, engine, MailboxLimits(chats=1, backlog=100))
    await app.accept(says("первый", 1, chat="1"))  # holds the only slot
    await app.accept(says("второй", 2, chat="2"))  # chat 2 waits for the slot...
    await asyncio.sleep(0.05)
    await app.accept(says(DANGER, 3, chat="2"))  # ...until its child writes danger
    await asyncio.wait_for(phone.arrived.wait(), 5)
    assert phone.seen == [f"эхо {DANGER}"]
    engine.gate.set()
    await app.drain()
    assert phone.seen[1:] and sorted(phone.seen[1:]) == ["эхо второй", "эхо первый"]
    await app.close()


async def test_the_flooders_own_danger_message_goes_before_the_flood(
    db: Database, kb: KnowledgeBase
) -> None:
    engine = slow_engine(db, kb)
    app, phone = make_app(db, kb, engine)
    for n in range(1, 31):
        await app.accept(says(f"спам {n}", n))
    await app.accept(says(DANGER, 31))
    await asyncio.sleep(0.05)
    engine.gate.set()
    await app.drain()
    # At most the one message being handled when danger came finishes first.
    assert f"эхо {DANGER}" in phone.seen[:2]
    assert len(phone.seen) == 31 and len(set(phone.seen)) == 31, "nothing lost or repeated"
    flood = [t for t in phone.seen if t != f"эхо {DANGER}"]
    assert flood == [f"эхо спам {n}" for n in range(1, 31)], "the rest keeps its order"
    async with db.session() as s:
        assert list(await Repos(s).inbox.unprocessed(utcnow())) == []
    await app.close()


async def test_a_real_flooding_child_sees_the_emergency_contacts_first_and_a_counsellor_is_alerted(
    db: Database, kb: KnowledgeBase
) -> None:
    """The real engine: a child sends 25 messages in a burst, then danger. The contacts come
    before the flood's replies, a critical case is opened, and the desk hears of it."""
    engine = DialogEngine(db, kb=kb)
    app, phone = make_app(db, kb, engine)
    desk = DeskScreen()
    app.delivery.register_desk(desk)
    alerts = desk.alerts
    for n in range(1, 26):
        await app.accept(says(f"ну привет {n}", n, chat="500"))
    await app.accept(says(DANGER, 26, chat="500"))
    seen_before = len(phone.seen)  # replies to what was handled while the burst came in
    await app.drain()
    first_contacts = next(i for i, text in enumerate(phone.seen) if HOTLINE in text)
    # At most the turn being handled when danger came finishes first (a turn here says at
    # most three things)...
    assert first_contacts <= seen_before + 3, phone.seen[seen_before:first_contacts + 1]
    assert "124" in phone.seen[first_contacts] and "112" in phone.seen[first_contacts]
    async with db.session() as s:
        repos = Repos(s)
        user = await repos.users.find("telegram", "500")
        assert user is not None
        case = await repos.cases.open_for_user(user.id)
        assert case is not None and case.risk == Risk.CRITICAL
    opened = [a for a in alerts if a.desk_event is DeskEvent.CASE_OPENED]
    assert [(a.case_id, a.critical) for a in opened] == [(case.id, True)], "the desk was told"
    assert DANGER in opened[0].text, "with the child's words"
    # ...and most of the flood is handled after it: those lines reach the counsellor's case.
    relayed = [a for a in alerts if a.desk_event is DeskEvent.CHILD_MESSAGE]
    assert len(relayed) >= 10 and all("ну привет" in a.text for a in relayed)
    async with db.session() as s:
        assert list(await Repos(s).inbox.unprocessed(utcnow())) == [], "every message handled"
    await app.close()


async def test_a_flood_is_refused_at_intake_and_its_danger_still_reaches_a_counsellor(
    db: Database, kb: KnowledgeBase
) -> None:
    """One child sends 60 messages at once, danger among them. What is beyond the flood
    limit's burst and its one "slow down" is refused before the journal (no database work for
    the others to queue behind); the danger message is let in, the child sees the emergency
    numbers and "slow down" once, a counsellor is alerted with the child's words, and the
    journal holds only what was let in, all of it handled."""
    from bot import metrics

    engine = DialogEngine(db, kb=kb)
    engine.limiter = RateLimiter(burst=5, per_second=0.0, clock=lambda: 0.0)
    app, phone = make_app(db, kb, engine)
    desk = DeskScreen()
    app.delivery.register_desk(desk)
    alerts = desk.alerts
    refused = metrics.FLOOD_REFUSED.labels("telegram")
    before = refused._value.get()
    for n in range(1, 61):
        text = DANGER if n == 40 else f"ну привет {n}"
        await app.accept(says(text, n, chat="600"))
    await app.accept(says("ну привет 50", 50, chat="600"))  # the platform offers one again
    await app.drain()
    async with db.session() as s:
        journal = (await s.execute(select(InboxUpdate.update_id))).scalars().all()
        handled = (await s.execute(select(ProcessedUpdate.update_id))).scalars().all()
    assert journal == [], "every entry handled (and deleted)"
    assert sorted(handled, key=int) == ["1", "2", "3", "4", "5", "6", "40"], (
        "the burst, the one refused with a word, and danger: let in and handled")
    assert refused._value.get() - before == 54, "the rest refused (the repeat too), counted"
    slow_down = engine.catalogue.t("flood.wait", "ru")
    assert phone.seen.count(slow_down) == 1, "told to slow down once"
    contacts = [t for t in phone.seen if HOTLINE in t]
    assert contacts and "124" in contacts[0] and "112" in contacts[0]
    opened = [a for a in alerts if a.desk_event is DeskEvent.CASE_OPENED]
    assert len(opened) == 1 and opened[0].critical and DANGER in opened[0].text
    async with db.session() as s:
        assert list(await Repos(s).inbox.unprocessed(utcnow())) == [], "every one handled"
        user = await Repos(s).users.find("telegram", "600")
        assert user is not None
        case = await Repos(s).cases.open_for_user(user.id)
        assert case is not None and case.risk == Risk.CRITICAL
    await app.close()


# An ordinary day told at length (about 1,500 characters), as a flooder's long texts.
DAY = ("Сегодня после школы мы с друзьями ходили в парк, потом я делала уроки по "
       "математике и читала книгу про путешествия. ") * 14
TAIL_DANGER = "и ещё я хочу умереть, мне так плохо"


async def test_long_texts_flooding_are_glanced_at_intake_and_danger_in_a_tail_reaches_a_person(
    db: Database, kb: KnowledgeBase
) -> None:
    """One child sends 40 long texts at once; one of those refused by the flood limit tells of
    danger only at its end. Intake reads none of the refused texts whole (a flood of long
    texts read whole held everybody else up, `make bench ARGS="--flood --flood-chars 3000"`):
    it reads their beginnings, journals them, and reads them whole later. The danger in the
    tail is found then: the child sees the emergency numbers, a counsellor is alerted, a
    critical case is open; the other refused texts are let go without a turn, and the journal
    is empty."""
    engine = DialogEngine(db, kb=kb)
    engine.limiter = RateLimiter(burst=5, per_second=0.0, clock=lambda: 0.0)
    read: list[int] = []  # the lengths of the texts intake read (the mailbox reads meanwhile)
    at_intake = [False]
    triage = engine.triage

    def counting(text: str, locale: str, context: Any = ()) -> Any:
        if at_intake[0]:
            read.append(len(text))
        return triage(text, locale, context)

    engine.triage = counting
    app, phone = make_app(db, kb, engine)
    admit, urgent = app._admit, app._urgent

    def intake(step: Callable[[Inbound], Any]) -> Callable[[Inbound], Any]:
        def taking_in(inbound: Inbound) -> Any:
            at_intake[0] = True
            try:
                return step(inbound)
            finally:
                at_intake[0] = False
        return taking_in

    app._admit, app._urgent = intake(admit), intake(urgent)  # type: ignore[method-assign,assignment]
    desk = DeskScreen()
    app.delivery.register_desk(desk)
    refused = metrics.FLOOD_REFUSED.labels("telegram")
    before = refused._value.get()
    for n in range(1, 41):
        text = f"{n}. {DAY}" + (TAIL_DANGER if n == 30 else "всё")
        await app.accept(says(text, n, chat="650"))
        if n > 6:  # beyond the burst and the one "slow down": glanced at, never read whole
            assert read and max(read) < 400, (n, read)
        read.clear()
    await app.drain()
    async with db.session() as s:
        journal = (await s.execute(select(InboxUpdate.update_id))).scalars().all()
        handled = (await s.execute(select(ProcessedUpdate.update_id))).scalars().all()
        said = (await s.execute(select(Message.text).where(Message.sender == "child")
                                .order_by(Message.id))).scalars().all()
    assert journal == [], "every entry read (and deleted)"
    assert len(handled) == 40, "every one taken (a repeat of any is ignored)"
    assert refused._value.get() - before == 33, "those let go counted as refused"
    assert [int(t.split(".")[0]) for t in said] == [1, 2, 3, 4, 5, 30], (
        "turns for the burst and for the danger found later; the rest let go unread by a turn")
    assert phone.seen.count(engine.catalogue.t("flood.wait", "ru")) == 1
    contacts = [t for t in phone.seen if HOTLINE in t]
    assert contacts and "124" in contacts[0] and "112" in contacts[0]
    opened = [a for a in desk.alerts if a.desk_event is DeskEvent.CASE_OPENED]
    assert len(opened) == 1 and opened[0].critical
    async with db.session() as s:
        user = await Repos(s).users.find("telegram", "650")
        assert user is not None
        case = await Repos(s).cases.open_for_user(user.id)
        assert case is not None and case.risk == Risk.CRITICAL
        words = [m.text for m in await Repos(s).messages.for_case(case.id)]
    assert any(TAIL_DANGER in w for w in words), "the counsellor reads the child's words"
    await app.close()


async def test_a_channel_taking_a_chat_in_order_is_not_held_up_by_the_texts_waiting_to_be_read(
    db: Database, kb: KnowledgeBase
) -> None:
    """VK's long poll hands a chat's updates to `App.handle` one after another. A flooder's
    long texts refused and waiting to be read must not make the next update wait for each
    paced read: the danger message sent after them is answered (the numbers) while most of
    them still wait, and a counsellor is alerted; then every one is read and closed."""
    engine = DialogEngine(db, kb=kb)
    engine.limiter = RateLimiter(burst=3, per_second=0.0, clock=lambda: 0.0)
    app, _phone = make_app(db, kb, engine)
    desk = DeskScreen()
    app.delivery.register_desk(desk)
    for n in range(1, 21):
        await app.handle(says(f"{n}. {DAY}всё", n, chat="670"))
    replies = await app.handle(says(DANGER, 21, chat="670"))
    async with db.session() as s:
        bodies = (await s.execute(select(InboxUpdate.body))).scalars().all()
    waiting = sum(1 for body in bodies if body.get("flood") == "read")
    assert any(HOTLINE in o.text and "124" in o.text for o in replies), "the numbers at once"
    assert waiting >= 8, f"answered while {waiting} of the 16 texts still waited to be read"
    opened = [a for a in desk.alerts if a.desk_event is DeskEvent.CASE_OPENED]
    assert len(opened) == 1 and opened[0].critical and DANGER in opened[0].text
    await app.drain()
    async with db.session() as s:
        assert list(await Repos(s).inbox.unprocessed(utcnow())) == [], "all read and closed"
    await app.close()


async def test_a_refused_long_text_to_be_read_survives_a_restart_and_its_danger_is_found(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """The flooder's refused long texts are journalled before the platform is told they
    arrived, so a crash before they are read loses none: at the next start the one telling of
    danger in its tail is read, the child's emergency numbers and the counsellors' critical
    alert wait in the outbox, and the rest are let go."""
    from bot.app import build_app

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
                        keys_file=tmp_path / "keys.json")
    app = build_app(settings, kb=kb)
    await app.db.create_all()
    app.engine.limiter = RateLimiter(burst=1, per_second=0.0, clock=lambda: 0.0)
    with app.batching() as batch:
        for n in range(1, 9):
            text = f"{n}. {DAY}" + (TAIL_DANGER if n == 7 else "всё")
            await app.accept(says(text, n, chat="660"))
        await batch.commit()
    assert app.cancel_pending() >= 1  # the process dies before the chat's mailbox reads them
    await asyncio.wait_for(app.close(), 10)
    async with app.db.session() as s:
        waiting = (await s.execute(select(InboxUpdate.body))).scalars().all()
    assert sum(1 for body in waiting if body.get("flood") == "read") == 6, (
        "journalled to be read: all beyond the burst and the one 'slow down'")

    restarted = build_app(settings, kb=kb)
    assert await asyncio.wait_for(restarted.recover(older_than=0), 20) == 8
    async with restarted.db.session() as s:
        repos = Repos(s)
        child = [row.body["text"] for row in await repos.outbox.pending("telegram", "660")]
        desk = [row.body for row in await repos.outbox.pending("desk")]
        user = await repos.users.find("telegram", "660")
        assert user is not None
        case = await repos.cases.open_for_user(user.id)
        left = len(await repos.inbox.unprocessed(utcnow()))
    contacts = [t for t in child if HOTLINE in t]
    assert contacts and "124" in contacts[0] and "112" in contacts[0]
    assert case is not None and case.risk == Risk.CRITICAL
    assert [b["critical"] for b in desk if b["desk_event"] == "case_opened"] == [True]
    assert left == 0, "every entry read and closed"
    await restarted.close()


class DangerTakesTime(SlowEngine):
    """Danger waits at `danger_gate` (a slow desk); ordinary messages go at once. Records the
    order in which turns start."""

    danger_gate: asyncio.Event
    started: list[str]

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        assert inbound.text is not None
        self.started.append(inbound.text)
        if inbound.text == DANGER:
            await self.danger_gate.wait()
        return await super().handle(inbound)


async def test_no_ordinary_turn_starts_while_danger_is_being_handled(
    db: Database, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event loop is the danger's while it is handled: other children's messages that
    come meanwhile wait (and are all answered after it, none lost); and if danger takes
    longer than `CALM_MAX`, they go ahead anyway."""
    engine = DangerTakesTime(db, kb=kb)
    engine.gate, engine.lanes, engine.started = asyncio.Event(), {}, []
    engine.gate.set()
    engine.danger_gate = asyncio.Event()
    app, phone = make_app(db, kb, engine)
    await app.accept(says(DANGER, 1, chat="99"))
    await asyncio.sleep(0.05)
    for n in range(2, 7):
        await app.accept(says(f"привет {n}", n, chat=str(n)))
    await asyncio.sleep(0.3)
    assert engine.started == [DANGER], "nothing else starts while danger is handled"
    engine.danger_gate.set()
    await app.drain()
    assert phone.seen[0] == f"эхо {DANGER}"
    assert sorted(phone.seen[1:]) == sorted(f"эхо привет {n}" for n in range(2, 7))

    monkeypatch.setattr(mailbox, "CALM_MAX", 0.2)
    engine.danger_gate.clear()
    await app.accept(says(DANGER, 10, chat="98"))
    await asyncio.sleep(0.05)
    await app.accept(says("привет 11", 11, chat="11"))
    for _ in range(250):  # CALM_MAX (0.2 s) after the danger began; a slow machine may add more
        if "эхо привет 11" in phone.seen:
            break
        await asyncio.sleep(0.02)
    assert "эхо привет 11" in phone.seen, "a danger that takes long holds others up briefly"
    assert not engine.danger_gate.is_set(), "while the danger still waits"
    engine.danger_gate.set()
    await app.drain()
    assert phone.seen[-1] == f"эхо {DANGER}"
    await app.close()


async def test_the_lane_lock_lets_danger_then_journalling_go_before_queued_turns() -> None:
    lock, order = LaneLock(), []

    async def work(name: str, urgent: bool) -> None:
        with danger_lane(urgent):
            async with lock.hold():
                order.append(name)
                await asyncio.sleep(0)

    async def journal(name: str) -> None:
        with intake_lane():
            async with lock.hold():
                order.append(name)

    await lock.acquire()  # an ordinary transaction holds the writer
    tasks = [asyncio.create_task(work(f"ordinary {n}", False)) for n in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(journal("journal an update")))
    tasks.append(asyncio.create_task(work("danger", True)))
    await asyncio.sleep(0)
    assert lock.waiting() == (1, 1, 3)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["danger", "journal an update", "ordinary 0", "ordinary 1", "ordinary 2"]
    assert not lock.locked


async def test_the_lane_lock_survives_a_waiter_cancelled_as_it_is_handed_the_lock() -> None:
    lock = LaneLock()
    await lock.acquire()
    first = asyncio.create_task(lock.acquire())
    second = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs: it passes the lock on
    await asyncio.wait_for(second, 1)
    assert lock.locked
    lock.release()
    assert not lock.locked


async def test_slots_let_a_promoted_chat_in_and_keep_count() -> None:
    slots = Slots(1)
    await slots.acquire(("t", "a"))
    waiting = asyncio.create_task(slots.acquire(("t", "b")))
    queued = asyncio.create_task(slots.acquire(("t", "c")))
    await asyncio.sleep(0)
    assert not waiting.done()
    slots.promote(("t", "b"))
    await asyncio.wait_for(waiting, 1)
    assert slots.busy == 2  # over the limit for danger, never below it for others
    slots.release()
    slots.release()
    await asyncio.wait_for(queued, 1)
    assert slots.busy == 1


async def test_a_gate_of_several_places_lets_danger_then_intake_take_the_next_free_one() -> None:
    """PostgreSQL's transactions wait at a gate of several places (the pool's connections):
    with every place taken, the next one freed goes to danger, then to journalling, and only
    then to the ordinary turns that queued first."""
    gate, order = LaneGate(2), []

    async def work(name: str, which: Lane) -> None:
        with lane(which):
            async with gate.hold():
                order.append(name)
                await asyncio.sleep(0)

    await gate.acquire()
    await gate.acquire()  # two ordinary transactions hold both places
    assert gate.locked
    tasks = [asyncio.create_task(work(f"ordinary {n}", Lane.ORDINARY)) for n in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(work("journal", Lane.INTAKE)))
    tasks.append(asyncio.create_task(work("danger", Lane.DANGER)))
    await asyncio.sleep(0)
    assert gate.waiting() == (1, 1, 3)
    gate.release()
    await asyncio.sleep(0)
    assert order == ["danger"], "one place freed: danger has it"
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["danger", "journal", "ordinary 0", "ordinary 1", "ordinary 2"]
    assert not gate.locked


async def test_a_reentrant_gate_lets_its_holder_through_but_not_the_tasks_it_starts() -> None:
    gate = LaneGate(1, reentrant=True)
    inner: list[str] = []
    async with gate.hold():
        async with gate.hold():  # the same task again: through, no wait for itself
            inner.append("nested")
        started = asyncio.create_task(_hold_once(gate, inner))
        await asyncio.sleep(0.01)
        assert inner == ["nested"], "a task started inside waits for a place like any other"
    await asyncio.wait_for(started, 1)
    assert inner == ["nested", "started"] and not gate.locked


async def _hold_once(gate: LaneGate, seen: list[str]) -> None:
    async with gate.hold():
        seen.append("started")


async def test_on_postgresql_a_danger_transaction_gets_a_connection_before_queued_turns(
    db: Database,
) -> None:
    """Every transaction place taken by slow ordinary turns, more of them queued: when one
    place frees, the danger turn's transaction has it, not the queue that came first."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's connection gate (SQLite's writer lock is tried above)")
    from storage import db as storage_db

    full, started = asyncio.Event(), []
    releases = [asyncio.Event() for _ in range(storage_db.TRANSACTIONS)]

    async def turn(name: str, urgent: bool, release: asyncio.Event | None) -> None:
        with danger_lane(urgent):
            async with db.session() as s:
                await s.execute(select(1))
                started.append(name)
                if len(started) == storage_db.TRANSACTIONS:
                    full.set()
                if release is not None:
                    await release.wait()

    holders = [asyncio.create_task(turn(f"slow {n}", False, r)) for n, r in enumerate(releases)]
    await asyncio.wait_for(full.wait(), 10)
    queued = [asyncio.create_task(turn(f"queued {n}", False, None)) for n in range(5)]
    await asyncio.sleep(0.05)
    danger = asyncio.create_task(turn("danger", True, None))
    await asyncio.sleep(0.05)
    assert len(started) == storage_db.TRANSACTIONS, "nobody gets past a full gate"
    releases[0].set()  # one place frees
    await asyncio.wait_for(danger, 5)
    assert [n for n in started if not n.startswith("slow")] == ["danger"]
    for release in releases:
        release.set()
    await asyncio.gather(*holders, *queued)
    assert len(started) == storage_db.TRANSACTIONS + 6


def _race(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> list[str]:
    """A hundred ordinary tasks and, started last, one in the danger lane, each taking the same
    ten turns of the loop (every `sleep(0)` stands for a database or HTTP round trip): the
    order in which they finish."""
    finished: list[str] = []

    async def work(name: str, urgent: bool) -> None:
        with danger_lane(urgent):
            for _ in range(10):
                await asyncio.sleep(0)
        finished.append(name)

    async def main() -> None:
        ordinary = [asyncio.create_task(work(f"child {n}", False)) for n in range(100)]
        danger = [asyncio.create_task(work(f"danger {n}", True)) for n in range(2)]
        await asyncio.gather(*ordinary, *danger)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    return finished


def test_the_bots_loop_runs_the_danger_lane_ahead_of_ordinary_work() -> None:
    # asyncio's own loop: each turn of the danger work waits behind a hundred ordinary ones.
    assert _race(asyncio.new_event_loop)[-2:] == ["danger 0", "danger 1"]
    # The bot's: the danger work is done while the ordinary tasks are on their first turns,
    # and two danger tasks keep the order they came in.
    assert _race(new_loop)[:2] == ["danger 0", "danger 1"]
    assert isinstance(new_loop(), LaneLoop)


def test_the_bots_loop_keeps_the_place_of_a_callback_handed_in_from_another_thread() -> None:
    """Only the loop's own thread reorders its queue: another thread's call goes to the end,
    as on asyncio's loop, even in the danger lane's context."""
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with danger_lane():
            urgent = copy_context()
        loop.call_soon(order.append, "ordinary")
        other = threading.Thread(target=lambda: loop.call_soon_threadsafe(
            order.append, "from a thread", context=urgent))
        other.start()
        other.join()  # the loop waits here: both calls are still queued
        loop.call_soon(order.append, "danger", context=urgent)
        await asyncio.sleep(0.01)

    run(main())
    assert order == ["danger", "ordinary", "from a thread"]


async def test_on_postgresql_a_chat_with_danger_claims_before_the_queued_ordinary_chats(
    db: Database,
) -> None:
    """The chat claims of one process go over one connection, one query at a time: with
    ordinary chats queued for it, the claim of a chat with danger waiting is asked first."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's advisory claims (SQLite's are in memory)")
    from storage.advisory import AdvisoryClaims

    claims = AdvisoryClaims(db.engine)
    order: list[str] = []

    async def claim(chat: str, urgent: bool) -> None:
        with danger_lane(urgent):
            assert await claims.try_claim(("telegram", chat))
        order.append(chat)

    try:
        async with claims._lock.hold():  # the connection busy with another query
            queued = [asyncio.create_task(claim(f"child {n}", False)) for n in range(5)]
            await asyncio.sleep(0.05)
            danger = asyncio.create_task(claim("danger", True))
            await asyncio.sleep(0.05)
        await asyncio.gather(*queued, danger)
        assert order[0] == "danger"
        assert sorted(order[1:]) == [f"child {n}" for n in range(5)]
    finally:
        await claims.close()


class LaneRecordingClaims(LocalClaims):
    def __init__(self) -> None:
        super().__init__()
        self.lanes: dict[str, bool] = {}

    async def try_claim(self, key: ChatKey) -> bool:
        self.lanes[key[1]] = in_danger_lane()
        return await super().try_claim(key)


async def test_a_chat_with_danger_asks_for_its_claim_in_the_danger_lane(db: Database) -> None:
    claims = LaneRecordingClaims()

    async def step(inbox_id: int, body: dict[str, object]) -> Handled:
        return Handled([])

    box = Mailbox(db, claims, step)
    box.kick(("telegram", "danger"), 1, urgent=True, first={})
    box.kick(("telegram", "ordinary"), 2, first={})
    await box.settle()
    assert claims.lanes == {"danger": True, "ordinary": False}


async def test_a_shutdown_right_after_a_kick_does_not_wait_for_ever(db: Database) -> None:
    """Shutdown past its grace period cancels the chats' drainers; one kicked just before
    had not begun, so it never said it ended, and `close` (which settles the mailbox) hung."""
    handled: list[int] = []

    async def step(inbox_id: int, body: dict[str, object]) -> Handled:
        handled.append(inbox_id)
        return Handled([])

    box = Mailbox(db, LocalClaims(), step)
    box.kick(("telegram", "late"), 1, first={})
    assert box.cancel() == 1
    await asyncio.wait_for(box.settle(), 2)
    assert handled == [] and not box.working, "cut short, and nothing left waiting"


async def test_the_mailbox_says_when_only_one_chats_work_waits(db: Database) -> None:
    """What lets a flooder's texts waiting to be read go at full speed: nothing of any other
    chat waits, and nothing is being taken in."""
    gate = asyncio.Event()

    async def step(inbox_id: int, body: dict[str, object]) -> Handled:
        await gate.wait()
        return Handled([])

    box = Mailbox(db, LocalClaims(), step)
    flooder, other = ("telegram", "flooder"), ("telegram", "other")
    assert box.only(flooder)
    box.kick(flooder, 1, first={})
    box.kick(flooder, 2, first={})
    assert box.only(flooder) and not box.only(other)
    box.kick(other, 3, first={})
    assert not box.only(flooder), "another child's update waits"
    gate.set()
    await box.settle()
    assert box.only(flooder)
    with box.admitted(lambda: False):
        assert not box.only(flooder), "an update is being taken in"
