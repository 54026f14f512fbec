"""Counsellors and supervisors: how many cases one holds, handing a case over, and a
supervisor's view of every open case."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialogs.escalation import Desk, DeskError
from storage.models import Counsellor
from tests.conftest import Chat
from tests.desk.conftest import Configure, join_queue


async def queue_of(chat_factory: Callable[..., Chat], desk: Desk, n: int) -> list[int]:
    for i in range(n):
        await join_queue(chat_factory(user=f"child-{i}"))
    return [c.id for c in await desk.queue()]


async def test_taking_beyond_the_limit_is_refused_clearly(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    ids = await queue_of(chat_factory, desk, 4)
    for case_id in ids[:3]:
        assert (await desk.take(counsellor, case_id)).ok
    refused = await desk.take(counsellor, ids[3])
    assert not refused.ok and refused.error is DeskError.AT_CAPACITY
    assert refused.detail == "you hold 3 of 3 cases"
    assert [c.id for c in await desk.queue()] == [ids[3]], "the case keeps waiting"
    assert (await desk.close(counsellor, ids[0], "advice-given")).ok
    assert (await desk.take(counsellor, ids[3])).ok


async def test_the_limit_is_a_setting(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, configure: Configure
) -> None:
    configure(capacity=1)
    ids = await queue_of(chat_factory, desk, 2)
    assert (await desk.take(counsellor, ids[0])).ok
    assert (await desk.take(counsellor, ids[1])).error is DeskError.AT_CAPACITY


async def test_a_counsellor_hands_a_case_to_a_colleague_with_a_note(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, boris: Counsellor
) -> None:
    [case_id] = await queue_of(chat_factory, desk, 1)
    assert (await desk.take(counsellor, case_id)).ok
    result = await desk.transfer(counsellor, case_id, "boris", "Про травлю в школе, мама знает")
    assert result.ok
    to_child, notice = result.outbound
    assert to_child.to.chat_id == "chat-child-0" and "передал разговор коллеге" in to_child.text
    assert "anna" not in to_child.text and "boris" not in to_child.text
    assert notice.to.is_desk and "anna → boris" in notice.text
    assert notice.meta["assigned_to"] == "boris"
    assert [c.id for c in await desk.held(boris)] == [case_id]
    assert await desk.held(counsellor) == []
    view = await desk.view(boris, case_id)
    assert not isinstance(view, DeskError)
    *_, note, told = view.transcript
    assert note.sender == "note" and "мама знает" in note.text
    # What the child was told is in the transcript too, as the bot's words.
    assert told.sender == "bot" and told.text == to_child.text
    assert (await desk.reply(boris, case_id, "Привет, я Борис")).ok
    assert (await desk.reply(counsellor, case_id, "я ещё тут")).error is DeskError.NOT_YOURS
    trail = [(who, action, detail) for _at, who, action, detail in await desk.audit_trail(case_id)]
    assert ("anna", "transferred", "anna -> boris: Про травлю в школе, мама знает") in trail


async def test_transfer_is_refused_to_strangers_and_full_hands(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    boris: Counsellor,
    configure: Configure,
) -> None:
    configure(capacity=1)
    first, second = await queue_of(chat_factory, desk, 2)
    assert (await desk.take(counsellor, first)).ok
    assert (await desk.take(boris, second)).ok
    full = await desk.transfer(counsellor, first, "boris")
    assert full.error is DeskError.AT_CAPACITY and "boris holds 1 of 1" in full.detail
    assert (await desk.transfer(counsellor, first, "nobody")).error is DeskError.NO_COUNSELLOR
    assert (await desk.transfer(counsellor, second, "anna")).error is DeskError.NOT_YOURS
    assert (await desk.transfer(counsellor, first, "anna")).error is DeskError.BAD_TRANSFER


async def test_releasing_with_a_note_leaves_it_for_the_next_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, boris: Counsellor
) -> None:
    [case_id] = await queue_of(chat_factory, desk, 1)
    assert (await desk.take(counsellor, case_id)).ok
    released = await desk.release(counsellor, case_id, "Нужен консультант-мужчина")
    assert released.ok and "передал разговор коллеге" in released.outbound[0].text
    assert (await desk.take(boris, case_id)).ok
    view = await desk.view(boris, case_id)
    assert not isinstance(view, DeskError)
    assert [line.text for line in view.transcript if line.sender == "note"] == [
        "Нужен консультант-мужчина"
    ]


async def test_a_supervisor_sees_every_open_case_and_reassigns_any(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    boris: Counsellor,
    supervisor: Counsellor,
) -> None:
    held, waiting = await queue_of(chat_factory, desk, 2)
    assert (await desk.take(counsellor, held)).ok
    assert await desk.open_cases(counsellor) is DeskError.SUPERVISOR_ONLY
    everything = await desk.open_cases(supervisor)
    assert not isinstance(everything, DeskError)
    assert [(c.id, c.status, c.owner) for c in everything] == [
        (held, "active", "anna"),
        (waiting, "waiting", None),
    ]
    assert everything[0].chi_group == "information-seeking"
    moved = await desk.transfer(supervisor, held, "boris", "anna ушла на обед")
    assert moved.ok and [c.id for c in await desk.held(boris)] == [held]
    assigned = await desk.transfer(supervisor, waiting, "anna")
    assert assigned.ok and "Консультант подключился" in assigned.outbound[0].text
    assert [c.id for c in await desk.held(counsellor)] == [waiting]
    assert await desk.queue() == []
    assert (await desk.close(supervisor, held, "emotional-support")).ok


async def test_a_counsellor_cannot_reassign_a_waiting_case(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, boris: Counsellor
) -> None:
    [case_id] = await queue_of(chat_factory, desk, 1)
    result = await desk.transfer(counsellor, case_id, "boris")
    assert result.error is DeskError.NOT_YOURS


async def test_the_category_follows_the_taxonomy(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, boris: Counsellor
) -> None:
    [case_id] = await queue_of(chat_factory, desk, 1)
    assert (await desk.take(counsellor, case_id)).ok
    assert (await desk.set_category(counsellor, case_id, "bogus")).error is DeskError.BAD_CATEGORY
    assert (await desk.set_category(boris, case_id, "grooming")).error is DeskError.NOT_YOURS
    assert (await desk.set_category(counsellor, case_id, "grooming")).ok
    [summary] = await desk.held(counsellor)
    assert summary.category == "grooming"
    assert summary.chi_group == "online-sexual-abuse-and-exploitation"
    actions = [a for _t, _w, a, _d in await desk.audit_trail(case_id)]
    assert "category_changed" in actions


async def test_only_two_roles(desk: Desk) -> None:
    with pytest.raises(ValueError, match="counsellor or supervisor"):
        await desk.add_counsellor("x", "console", "x", role="admin")
