"""Every flow driven end to end through the engine, as a child or parent would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dialogs.desk.results import DeskError
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import DeskEvent
from storage.models import Counsellor
from tests.conftest import Chat


async def test_first_message_is_privacy_notice_then_role(
    chat_factory: Callable[..., Chat],
) -> None:
    chat = chat_factory()
    await chat.say("привет")
    assert "сохраняю" in chat.replies[0].text and "/forget" in chat.replies[0].text
    assert chat.replies[1].text == "Кто ты?"
    # "Talk to a person" is on every step, from the first one.
    assert chat.buttons == [
        "Я ребёнок или подросток", "Я родитель или взрослый", "Поговорить с человеком"
    ]
    await chat.say("ещё раз привет")
    assert "сохраняю" not in chat.text, "the notice is shown once"


async def test_child_report_flow_to_advice_and_case(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("случилось")
    assert "Что случилось" in chat.text
    await chat.press("Оскорбляют")
    await chat.press("ВКонтакте")
    await chat.press("Да")  # still going on
    await chat.press("Да")  # safe now
    assert "скриншоты" in chat.text
    await chat.send_photo("screenshot-1")
    assert "Сохранил (1)" in chat.text
    await chat.send_photo("screenshot-2")
    assert "Сохранил (2)" in chat.text
    await chat.press("Готово")
    await chat.press("Нет")  # no trusted adult knows
    assert "нет твоей вины" in chat.text, "never blaming, in words that fit any child"
    advice = chat.replies[1].text
    assert "Поговорить с человеком" in chat.buttons
    assert len(advice) > 200, "advice from a real article"
    await chat.press("Поговорить с человеком")
    assert "очереди" in chat.text and "1-й" in chat.text
    assert chat.desk and chat.desk[0].desk_event is DeskEvent.CASE_OPENED
    [case] = await desk.queue()
    assert (case.category, case.risk, case.channel) == ("cyberbullying", "medium", "console")
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    assert view.answers["what"] == "insults" and view.answers["where"] == "vk"
    assert view.answers["adult"] == "no"
    assert [a.file_ref for a in view.attachments] == ["screenshot-1", "screenshot-2"]


async def test_unsafe_now_goes_straight_to_a_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.press("Угрожают")
    await chat.press("Telegram")
    await chat.press("Да")
    await chat.press("Нет")  # not safe right now
    assert "8-800-2000-122" in chat.text and "112" in chat.text and "124" in chat.text
    assert "первое в очереди" in chat.text and "зову консультанта" not in chat.text
    [case] = await desk.queue()
    assert case.risk == "critical" and case.category == "threats"
    assert chat.desk[0].critical and chat.desk[0].meta["danger"] == "not-safe"


async def test_safety_question_answered_with_feedback(chat_factory: Callable[..., Chat]) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("спросить")
    await chat.say("меня взломали в вк что делать")
    assert "Вот что я нашёл" in chat.text
    assert {"Другие ответы", "Это помогло", "Не помогло", "Поговорить с человеком"} <= set(
        chat.buttons
    )
    await chat.press("Другие ответы")
    assert chat.replies, "other answers or an honest none"
    await chat.press("Это помогло")
    assert "Здорово" in chat.text and "Чем я могу помочь" in chat.text


async def test_safety_question_without_answer_offers_a_person(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("спросить")
    await chat.say("как решить квадратное уравнение")
    assert "не нашёл" in chat.text
    await chat.press("Поговорить с человеком")
    [case] = await desk.queue()
    assert case.category == "information"


async def test_parent_help_articles_and_report_on_behalf(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory(user="parent-1")
    await chat.say("здравствуйте")
    await chat.press("родитель")
    assert "Я волнуюсь за ребёнка" in chat.buttons
    assert "Со мной что-то случилось в сети" not in chat.buttons
    await chat.press("волнуюсь")
    await chat.press("травят")
    assert "Вот что может помочь" in chat.text
    assert len(chat.text) > 300
    await chat.press("за ребёнка")
    assert "Что случилось с ребёнком" in chat.text
    await chat.press("Требуют")
    # Demands for photos or money are danger, told by a button as much as in words: the
    # parent gets the numbers in their own words, and a critical case is opened at once.
    assert "вашему ребёнку угрожает опасность" in chat.text and "8-800-2000-122" in chat.text
    [case] = await desk.queue()
    assert case.category == "sextortion" and case.risk == "critical"
    view = await desk.view(await desk.add_counsellor("boris", "console", "b"), case.id)
    assert not isinstance(view, str)
    assert view.answers["on_behalf"] is True and view.answers["role"] == "parent"


async def test_counselling_relay_close_and_rating(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, engine: DialogEngine
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    await chat.say("мне плохо, меня дразнят в классе")
    assert chat.replies == [], "while waiting, the child's words go to the desk quietly"
    assert chat.desk[0].text == "мне плохо, меня дразнят в классе"
    taken = await desk.take(counsellor, case.id)
    assert taken.ok and "Консультант подключился" in taken.outbound[0].text
    reply = await desk.reply(counsellor, case.id, "Привет! Я рядом. Расскажи, что случилось?")
    [to_child] = reply.outbound
    assert to_child.to.chat_id == "chat-child-1"
    assert "anna" not in to_child.text, "the counsellor's name is not revealed"
    await chat.say("/menu")
    assert "говоришь с консультантом" in chat.text
    await chat.say("они пишут гадости")
    assert chat.replies == [] and chat.desk[0].text == "они пишут гадости"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    assert "child-1" not in str(view), "the child's account is never shown"
    # The bot's own words to the child are in the transcript too.
    assert [line.sender for line in view.transcript][-4:] == [
        "counsellor", "child", "bot", "child"
    ]
    note = await desk.note(counsellor, case.id, "Травля в классе, мама не знает")
    assert note.ok and not note.outbound
    closed = await desk.close(counsellor, case.id, "advice-given")
    assert closed.ok and "Оцени" in closed.outbound[0].text
    chat.replies = list(closed.outbound)
    await chat.press("5")
    assert "почему" in chat.text
    await chat.say("спасибо, стало легче")
    assert "Спасибо" in chat.text
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    assert view.rating == 5 and view.outcome == "advice-given"


async def test_concurrent_take_gives_exactly_one_owner(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    import asyncio

    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    a = await desk.add_counsellor("a", "console", "a")
    b = await desk.add_counsellor("b", "console", "b")
    takers = (a, b, a, b)
    results = await asyncio.gather(*(desk.take(c, case.id) for c in takers))
    assert sum(r.ok for r in results) == 1
    winner = next(c for c, r in zip(takers, results, strict=True) if r.ok)
    loser = b if winner is a else a
    view = await desk.view(winner, case.id)  # the loser may no longer see a held case
    assert not isinstance(view, str) and view.summary.owner == winner.name
    assert await desk.view(loser, case.id) == DeskError.NOT_YOURS


async def test_a_stranger_cannot_act_on_a_case(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    assert await desk.identify("telegram", "12345") is None
    other = await desk.add_counsellor("other", "console", "o")
    assert (await desk.take(counsellor, case.id)).ok
    refused = await desk.reply(other, case.id, "hi")
    assert not refused.ok and refused.error == "not_yours"
    assert isinstance(await desk.view(other, case.id), str)
    trail = [row[2] for row in await desk.audit_trail(case.id)]
    assert "view_refused" in trail and "taken" in trail


async def test_a_parent_reports_in_the_third_person_and_is_not_asked_twice_if_worried(
    chat_factory: Callable[..., Chat],
) -> None:
    chat = chat_factory("parent-7")
    await chat.say("привет")
    await chat.press("родитель")
    await chat.press("волнуюсь")
    assert not any("волнуюсь" in b.casefold() for b in chat.buttons), chat.buttons
    await chat.press("травят")
    await chat.press("за ребёнка")
    assert {"Ребёнку угрожают", "Фейковая страница от имени ребёнка"} <= set(chat.buttons)
    assert not any("моего" in b or "мои " in b for b in chat.buttons), chat.buttons


def test_no_clumsy_gendered_endings_in_the_russian_texts() -> None:
    import yaml

    import dialogs

    texts = yaml.safe_load(
        (Path(dialogs.__file__).parent / "data" / "texts.yaml").read_text(encoding="utf-8")
    )
    clumsy = [key for key, value in texts.items()
              if isinstance(value, dict) and "(а)" in str(value.get("ru", ""))]
    assert clumsy == []
