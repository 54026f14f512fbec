"""A danger signal interrupts any state: contacts at once, a critical case first in the queue,
and the flow the child was in is kept for after the counsellor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialogs.escalation import Desk
from storage.models import Counsellor
from tests.conftest import Chat


async def _in_report(chat: Chat) -> None:
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.press("Оскорбляют")


async def _in_question(chat: Chat) -> None:
    await chat.start_as_child()
    await chat.press("спросить")


async def _in_parent(chat: Chat) -> None:
    await chat.say("здравствуйте")
    await chat.press("родитель")
    await chat.press("волнуюсь")


@pytest.mark.parametrize(
    ("setup", "text"),
    [
        (_in_report, "я больше не хочу жить"),
        (_in_question, "он сказал что разошлёт мои фотки если не скину ещё"),
        (_in_parent, "отчим бьёт мою дочь"),
    ],
    ids=["report", "question", "parent"],
)
async def test_danger_mid_flow_reaches_the_queue_as_critical(
    chat_factory: Callable[..., Chat], desk: Desk, setup: Callable[[Chat], object], text: str
) -> None:
    chat = chat_factory()
    await setup(chat)  # type: ignore[misc]
    await desk.queue()  # nothing yet
    await chat.say(text)
    assert "8-800-2000-122" in chat.text and "112" in chat.text
    assert chat.desk and chat.desk[0].critical
    queue = await desk.queue()
    assert queue[0].risk == "critical"


async def test_critical_case_jumps_the_queue_and_repeats_do_not_duplicate(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    calm = chat_factory(user="calm")
    await calm.start_as_child()
    await calm.press("человеком")
    child = chat_factory(user="in-danger")
    await child.start_as_child()
    await child.say("хочу выпилиться")
    await child.say("я правда хочу умереть")
    queue = await desk.queue()
    assert [c.risk for c in queue] == ["critical", "medium"]
    assert len(queue) == 2, "a repeated signal raises no second case"


async def test_existing_case_is_raised_with_the_signal_recorded(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    assert case.risk == "medium"
    await chat.say("я режу себе руки")
    [case] = await desk.queue()
    assert case.risk == "critical"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str) and "self-harm" in view.signals
    # Lowering a critical case is a supervisor's, with a real reason (issue 17).
    lowered = await desk.set_risk(counsellor, case.id, "high", "spoke with the child, safe now")
    assert not lowered.ok, "a counsellor does not lower a critical case"
    supervisor = await desk.add_counsellor("sveta", "console", "sveta", role="supervisor")
    lowered = await desk.set_risk(supervisor, case.id, "high", "")
    assert not lowered.ok, "lowering needs a note"
    lowered = await desk.set_risk(supervisor, case.id, "high", "spoke with the child, safe now")
    assert lowered.ok
    trail = [(row[2], row[3]) for row in await desk.audit_trail(case.id)]
    assert ("risk_changed", "critical -> high: spoke with the child, safe now") in trail


async def test_english_speaking_child_in_the_ru_region_sees_the_russian_numbers(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory(locale="en")
    await chat.say("hi")
    await chat.say("I want to kms")
    # Contacts follow the help line's region, labelled in the child's language.
    assert "8-800-2000-122" in chat.text and "124" in chat.text and "112" in chat.text
    assert "children's help line" in chat.text and "Thank you for telling me" in chat.text
    assert "childhelplineinternational.org" not in chat.text
    assert (await desk.queue())[0].risk == "critical"



async def test_english_typed_with_the_russian_layout_reaches_a_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    # A bilingual child whose keyboard was left on Russian: "my stepdad hits me, i am scared".
    chat = chat_factory(locale="en")
    await chat.say("hi")
    await chat.say("ьн ыеузвфв ршеы ьуб ш фь ысфкув")
    assert "8-800-2000-122" in chat.text and "124" in chat.text and "112" in chat.text
    assert "Thank you for telling me" in chat.text
    [case] = await desk.queue()
    assert case.risk == "critical"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str) and "abuse" in view.signals

async def test_after_the_case_is_closed_the_child_gets_the_menu_not_the_old_form(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say("меня избили и угрожают убить")
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    closed = await desk.close(counsellor, case.id, "emotional-support")
    chat.replies = list(closed.outbound)
    await chat.press("4")
    await chat.press("Пропустить")
    assert "Продолжить, где остановились" not in chat.buttons
    await chat.press("В меню")
    assert "Где это происходит" not in chat.text
    assert "Со мной что-то случилось в сети" in chat.buttons
