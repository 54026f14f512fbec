"""The child ends a live chat, comes back, or erases their data: the counsellor is told at once,
the case says so, and nothing lands where it should not."""

from __future__ import annotations

from collections.abc import Callable

from dialogs.escalation import Desk, DeskError
from dialogs.messages import DeskEvent
from storage.models import Counsellor
from tests.conftest import Chat


async def _live(chat: Chat, desk: Desk, counsellor: Counsellor) -> int:
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    taken = await desk.take(counsellor, case.id)
    assert taken.ok
    chat.replies = [o for o in taken.outbound if o.to.channel != "desk"]
    return case.id


async def _left(chat: Chat, desk: Desk, counsellor: Counsellor) -> int:
    """A live chat the child ends (and confirms)."""
    case_id = await _live(chat, desk, counsellor)
    await chat.press("Завершить разговор")
    await chat.press("Да, завершить")
    return case_id


async def test_ending_a_live_chat_asks_first_and_no_keeps_it(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    case_id = await _live(chat, desk, counsellor)
    await chat.press("Завершить разговор")
    assert "Завершить разговор с консультантом?" in chat.text
    assert chat.desk == [], "nothing is ended by one press"
    await chat.press("Нет, продолжить")
    assert "продолжаем" in chat.text
    reply = await desk.reply(counsellor, case_id, "Я здесь")
    assert reply.ok and reply.outbound[0].text == "Я здесь"
    await chat.say("спасибо")
    assert [n.desk_event for n in chat.desk] == [DeskEvent.CHILD_MESSAGE]


async def test_the_counsellor_is_told_and_the_case_says_the_child_left(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    case_id = await _left(chat, desk, counsellor)
    [notice] = chat.desk
    assert notice.desk_event is DeskEvent.CHILD_LEFT and notice.case_id == case_id
    assert "Со мной что-то случилось в сети" in chat.buttons  # the child is in the menu
    view = await desk.view(counsellor, case_id)
    assert not isinstance(view, str) and view.summary.status == "left"
    assert await desk.held(counsellor) == [], "the counsellor's place is freed"
    # The counsellor's next message does not land in the child's menu: a clear refusal.
    refused = await desk.reply(counsellor, case_id, "ты тут?")
    assert not refused.ok and refused.error is DeskError.CHILD_LEFT and not refused.outbound
    # The child's next words go to the menu only, not to the desk as well.
    await chat.say("как закрыть профиль")
    assert chat.desk == []
    view = await desk.view(counsellor, case_id)
    assert not isinstance(view, str)
    assert all("закрыть профиль" not in line.text for line in view.transcript)
    closed = await desk.close(counsellor, case_id, "no-response")
    assert closed.ok
    trail = [action for _t, _who, action, _d in await desk.audit_trail(case_id)]
    assert "child_left" in trail and "closed" in trail


async def test_a_child_who_comes_back_returns_to_the_queue_with_the_same_case(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    case_id = await _left(chat, desk, counsellor)
    await chat.press("человеком")
    [case] = await desk.queue()
    assert case.id == case_id and case.status == "waiting"
    assert any(n.desk_event is DeskEvent.CASE_UPDATED and "вернулся" in n.text
               for n in chat.desk)


async def test_forget_during_a_live_chat_closes_the_case_and_tells_the_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    case_id = await _live(chat, desk, counsellor)
    await chat.say("/forget")
    await chat.press("Да, стереть")
    assert "я всё стёр" in chat.text
    [notice] = chat.desk
    assert notice.desk_event is DeskEvent.CHILD_LEFT and notice.text == "/forget"
    view = await desk.view(counsellor, case_id)
    assert not isinstance(view, str)
    assert view.summary.status == "closed" and view.outcome == "child-erased"
    assert view.transcript == ()
    trail = [action for _t, _who, action, _d in await desk.audit_trail(case_id)]
    assert "child_erased" in trail
    refused = await desk.reply(counsellor, case_id, "ты тут?")
    assert not refused.ok
