"""The minute sweep: unanswered cases are re-announced to the desks and waiting children are
told their place again, each once per interval."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dialogs.escalation import Desk
from dialogs.hours import OpeningHours
from dialogs.messages import DeskEvent, Outbound
from dialogs.operations import AFTER_HOURS, ON_CALL, PAGE
from storage.models import Counsellor
from tests.conftest import Chat
from tests.desk.conftest import Configure, join_queue

NEVER_OPEN = OpeningHours(weekly=((),) * 7)


def to_desk(out: list[Outbound]) -> list[Outbound]:
    return [m for m in out if m.to.is_desk]


def to_children(out: list[Outbound]) -> list[Outbound]:
    return [m for m in out if not m.to.is_desk]


async def test_an_unanswered_case_is_re_announced_once_per_interval(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    start = case.created_at
    assert await desk.sweep(start + timedelta(minutes=9)) == []
    [notice] = to_desk(await desk.sweep(start + timedelta(minutes=10)))
    assert notice.case_id == case.id and notice.desk_event is DeskEvent.CASE_UPDATED
    assert f"№{case.id} ждёт уже 10 мин" in notice.text and notice.meta["reannounce"] == "1"
    assert not notice.critical
    assert to_desk(await desk.sweep(start + timedelta(minutes=11))) == []
    assert to_desk(await desk.sweep(start + timedelta(minutes=19))) == []
    [again] = to_desk(await desk.sweep(start + timedelta(minutes=20)))
    assert "ждёт уже 20 мин" in again.text


async def test_the_waiting_child_hears_their_place_once_per_interval(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    ahead, chat = chat_factory(user="ahead"), chat_factory()
    await join_queue(ahead)
    await join_queue(chat)
    [_ahead, case] = await desk.queue()
    start = case.created_at
    assert to_children(await desk.sweep(start + timedelta(minutes=14))) == []
    updates = to_children(await desk.sweep(start + timedelta(minutes=15)))
    mine = [m for m in updates if m.to.chat_id == "chat-child-1"]
    assert len(updates) == 2 and len(mine) == 1
    assert "всё ещё в очереди" in mine[0].text and "ты 2-й" in mine[0].text
    assert mine[0].buttons[0][0].label == "Завершить разговор"
    assert to_children(await desk.sweep(start + timedelta(minutes=16))) == []
    await chat.press("Завершить разговор")  # the child leaves the chat: no more updates
    await chat.press("Да, завершить")
    later = to_children(await desk.sweep(start + timedelta(minutes=31)))
    assert [m.to.chat_id for m in later] == ["chat-ahead"]
    assert "ты 1-й" in later[0].text


async def test_a_held_case_nobody_answers_is_re_announced(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    [held] = await desk.held(counsellor)
    start = held.created_at
    out = await desk.sweep(start + timedelta(minutes=30))
    [notice] = to_desk(out)
    assert "у консультанта anna" in notice.text and "ещё не ответили" in notice.text
    assert to_children(out) == [], "a child whose case is held is not told a queue place"
    assert (await desk.reply(counsellor, case.id, "Привет!")).ok
    assert await desk.sweep(start + timedelta(minutes=60)) == []


async def test_after_hours_only_critical_cases_are_re_announced_for_on_call(
    chat_factory: Callable[..., Chat], desk: Desk, configure: Configure
) -> None:
    calm, danger = chat_factory(user="calm"), chat_factory(user="danger")
    await join_queue(calm)
    await danger.start_as_child()
    await danger.say("я больше не хочу жить")
    configure(hours=NEVER_OPEN)
    queue = await desk.queue()
    start = max(c.created_at for c in queue)
    out = await desk.sweep(start + timedelta(minutes=40))
    [notice] = out
    assert notice.critical and notice.to.is_desk
    assert notice.meta[AFTER_HOURS] == "1" and notice.meta[PAGE] == ON_CALL
    assert notice.case_id == queue[0].id and queue[0].risk == "critical"


async def test_intervals_come_from_the_config(
    chat_factory: Callable[..., Chat], desk: Desk, configure: Configure
) -> None:
    configure(reannounce_after=timedelta(minutes=3), queue_update_after=timedelta(minutes=5))
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    out = await desk.sweep(case.created_at + timedelta(minutes=5))
    assert len(to_desk(out)) == 1 and len(to_children(out)) == 1
