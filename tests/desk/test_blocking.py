"""Blocking abuse: one neutral reply per block and nothing else, yet danger still reaches a
supervisor; every block is audited. Blocking is a supervisor's action (issue 17): in these tests
the counsellor holds the case and the supervisor blocks its user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dialogs.escalation import Desk, DeskError
from dialogs.messages import DeskEvent
from storage.models import Counsellor
from tests.conftest import Chat, Clock
from tests.desk.conftest import join_queue

NEUTRAL = "Сейчас этот чат для тебя недоступен"


async def blocked_child(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, clock: Clock
) -> tuple[Chat, int]:
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    until = clock.now + timedelta(days=7)
    supervisor = await _supervisor(desk)
    assert (await desk.block(supervisor, case.id, "оскорбления и спам", until)).ok
    return chat, case.id


async def _supervisor(desk: Desk) -> Counsellor:
    found = await desk.identify("console", "sveta")
    return found or await desk.add_counsellor("sveta", "console", "sveta", role="supervisor")


async def test_a_blocked_user_gets_one_neutral_reply_and_nothing_else(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, clock: Clock
) -> None:
    chat, case_id = await blocked_child(chat_factory, desk, counsellor, clock)
    view = await desk.view(counsellor, case_id)
    assert not isinstance(view, DeskError) and view.outcome == "abusive-contact"
    await chat.say("эй ответь")
    assert [m.text.split(".")[0] for m in chat.replies] == [NEUTRAL]
    assert chat.desk == []
    await chat.say("ну ответь же")
    assert chat.replies == [] and chat.desk == []
    await chat.payload("g|person")
    assert chat.replies == [] and chat.desk == []
    assert await desk.queue() == [], "no new case"
    trail = [(who, action) for _t, who, action, _d in await desk.audit_trail(case_id)]
    assert ("sveta", "blocked") in trail and ("sveta", "closed") in trail
    detail = next(d for _t, _w, a, d in await desk.audit_trail(case_id) if a == "blocked")
    assert "оскорбления и спам" in detail and "until" in detail


async def test_danger_from_a_blocked_user_still_reaches_a_supervisor(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, clock: Clock
) -> None:
    chat, _case_id = await blocked_child(chat_factory, desk, counsellor, clock)
    await chat.say("привет")  # the one neutral reply
    await chat.say("я больше не хочу жить")
    assert "8-800-2000-122" in chat.text and "передал это консультанту" in chat.text
    [notice] = chat.desk
    assert notice.critical and notice.desk_event is DeskEvent.CASE_OPENED
    assert notice.meta["danger"] == "blocked"
    [case] = await desk.queue()
    assert case.risk == "critical"
    await chat.say("мне страшно")
    assert chat.desk and chat.desk[0].text == "мне страшно", "the crisis chat goes through"


async def test_the_block_ends_at_its_expiry(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, clock: Clock
) -> None:
    chat, _ = await blocked_child(chat_factory, desk, counsellor, clock)
    await chat.say("привет")
    clock.now += timedelta(days=7, minutes=1)
    await chat.say("/menu")
    assert "Чем я могу помочь?" in chat.text


async def test_a_new_block_gets_a_new_neutral_reply(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, clock: Clock
) -> None:
    chat, case_id = await blocked_child(chat_factory, desk, counsellor, clock)
    await chat.say("привет")
    supervisor = await _supervisor(desk)
    assert (await desk.unblock(supervisor, case_id)).ok
    await chat.payload("g|person")  # back in the queue with a new case
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    assert (await desk.block(supervisor, case.id, "снова", clock.now + timedelta(hours=1))).ok
    await chat.say("а теперь?")
    assert chat.replies and chat.replies[0].text.startswith(NEUTRAL)


async def test_block_needs_a_reason_an_expiry_and_the_right_person(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    boris: Counsellor,
    supervisor: Counsellor,
    clock: Clock,
) -> None:
    calm = chat_factory(user="calm")
    await join_queue(calm)
    danger = chat_factory(user="danger")
    await danger.start_as_child()
    await danger.say("я больше не хочу жить")
    critical, waiting = await desk.queue()
    soon = clock.now + timedelta(days=1)
    assert (await desk.block(supervisor, waiting.id, " ", soon)).error is DeskError.BAD_BLOCK
    past = clock.now - timedelta(minutes=1)
    assert (await desk.block(supervisor, waiting.id, "спам", past)).error is DeskError.BAD_BLOCK
    assert (await desk.take(counsellor, waiting.id)).ok
    # Only supervisors block (issue 17): not the holder, not a colleague, not on any case.
    only = DeskError.SUPERVISOR_ONLY
    assert (await desk.block(counsellor, waiting.id, "спам", soon)).error is only
    assert (await desk.block(boris, waiting.id, "спам", soon)).error is only
    refused = await desk.block(counsellor, critical.id, "спам", soon)
    assert refused.error is DeskError.SUPERVISOR_ONLY
    assert (await desk.block(supervisor, critical.id, "ложные вызовы", soon)).ok
    assert (await desk.unblock(boris, critical.id)).error is DeskError.SUPERVISOR_ONLY
    assert (await desk.unblock(supervisor, critical.id)).ok
    assert (await desk.unblock(supervisor, critical.id)).error is DeskError.NOT_BLOCKED
