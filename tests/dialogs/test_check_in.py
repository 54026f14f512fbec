"""The check-in band: when triage is unsure, the bot asks directly, as counsellors do; and the
whole conversation is read: danger over several messages, or late in a very long one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dialogs.desk.results import CaseSummary
from dialogs.escalation import Desk
from dialogs.triage import assess
from storage.models import Counsellor
from tests.conftest import Chat, Clock

UNSURE = "мне так плохо, всё бессмысленно"
UNSURE_EN = "i feel like nothing matters anymore"
ASK = "ты сейчас в безопасности?"


def test_the_phrases_used_here_are_in_the_check_in_band() -> None:
    for text, locale in ((UNSURE, "ru"), (UNSURE_EN, "en")):
        verdict = assess(text, locale)
        assert verdict.check_in and not verdict.danger, (text, verdict)


async def _in_report(chat: Chat) -> None:
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.press("Оскорбляют")


def _asked_with_three_buttons(chat: Chat, question: str) -> None:
    """The bot asked directly, with the three answers, and showed no numbers yet."""
    assert question in chat.text
    assert chat.buttons == ["Да, всё в безопасности", "Нет, не в безопасности",
                            "Поговорить с человеком"]
    assert "8-800-2000-122" not in chat.text


async def _answer_not_safe(chat: Chat, desk: Desk) -> CaseSummary:
    """"Not safe" pressed: the child sees the numbers and that a counsellor was told; the
    counsellors get a critical alert flagged as a check-in; one case is open."""
    await chat.press("Нет, не в безопасности")
    for number in ("112", "8-800-2000-122", "124"):
        assert number in chat.text
    assert "Я передал это консультанту" in chat.text
    [notice] = chat.desk
    assert notice.critical and notice.meta["danger"] == "check-in"
    [case] = await desk.queue()
    return case


async def test_asked_directly_with_three_buttons_and_nothing_opened(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say(UNSURE)
    _asked_with_three_buttons(chat, f"{ASK} Ты думаешь о том, чтобы причинить себе вред?")
    assert chat.desk == [] and await desk.queue() == []


async def test_safe_goes_back_where_the_child_was(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say(UNSURE)
    await chat.press("Да, всё в безопасности")
    assert "Спасибо за ответ" in chat.text
    assert "Где это происходит" in chat.text and "Telegram" in chat.buttons
    assert await desk.queue() == []
    await chat.press("Telegram")  # the report goes on as before
    assert "продолжается?" in chat.text


async def test_not_safe_takes_the_danger_path(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say(UNSURE)
    case = await _answer_not_safe(chat, desk)
    assert case.risk == "critical"


async def test_talk_to_a_person_takes_the_danger_path_too(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory(locale="en")
    await chat.start_as_child()
    await chat.say(UNSURE_EN)
    assert "are you safe right now?" in chat.text
    await chat.press("Talk to a person")
    assert "8-800-2000-122" in chat.text and "I've passed this to a counsellor" in chat.text
    [case] = await desk.queue()
    assert case.risk == "high"


async def test_a_call_for_help_typed_alone_is_asked_directly(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    """"помогите" and nothing else (round 77): the bot asks directly whether someone is
    threatening or hurting the child, with the three buttons, and nothing is opened yet; "not
    safe" then takes the danger path."""
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say("помогите")
    _asked_with_three_buttons(
        chat, "тебе кто-то угрожает или делает больно? Ты сейчас в безопасности?")
    assert chat.desk == []
    case = await _answer_not_safe(chat, desk)
    assert case.risk == "critical"


async def test_help_spelt_out_alone_asks_and_help_with_homework_does_not(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    asked = chat_factory(locale="en")
    await asked.start_as_child()
    await asked.say("h e l p")
    assert "is someone threatening or hurting you? Are you safe right now?" in asked.text
    assert "Talk to a person" in asked.buttons and asked.desk == []
    homework = chat_factory(user="child-2", locale="en")
    await homework.start_as_child()
    await homework.say("can you help me with my maths homework")
    assert "safe right now?" not in homework.text
    assert homework.desk == [] and await desk.queue() == []


async def test_a_relapse_typed_alone_is_asked_about_and_a_relapse_on_sugar_is_not(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    """"r.e.l.a.p.s.e.d" and nothing else (round 79): the bot asks directly about hurting
    oneself, nothing is opened yet; "not safe" then opens a self-harm case at once."""
    asked = chat_factory(locale="en")
    await asked.start_as_child()
    await asked.say("r.e.l.a.p.s.e.d")
    assert "Are you thinking about hurting yourself?" in asked.text
    assert asked.buttons == ["Yes, safe", "No, not safe", "Talk to a person"]
    assert asked.desk == [] and await desk.queue() == []
    await asked.press("No, not safe")
    assert "8-800-2000-122" in asked.text and "I've passed this to a counsellor" in asked.text
    [notice] = asked.desk
    assert notice.critical and notice.meta["danger"] == "check-in"
    [case] = await desk.queue()
    assert case.category == "self-harm"
    sugar = chat_factory(user="child-2", locale="en")
    await sugar.start_as_child()
    await sugar.say("relapsed on sugar today lol")
    assert "safe right now?" not in sugar.text and sugar.desk == []


async def test_at_most_one_check_in_per_half_hour(
    chat_factory: Callable[..., Chat], clock: Clock
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say(UNSURE)
    await chat.press("Да, всё в безопасности")
    await chat.say("всё равно всё бессмысленно и плохо")
    assert ASK not in chat.text
    clock.now += timedelta(minutes=31)
    await chat.say(UNSURE)
    assert ASK in chat.text


async def test_never_in_a_live_chat_the_counsellor_sees_a_flag(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    await chat.say(UNSURE)
    assert chat.replies == []
    [notice] = chat.desk
    assert notice.meta.get("check_in") == "1" and notice.text == UNSURE


async def test_signals_over_three_messages_add_up(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    texts = ["раздала свои вещи", "удалила все соцсети и попрощалась",
             "это моё последнее сообщение"]
    assert not any(assess(t, "ru").danger for t in texts), "each alone is not danger"
    assert assess(texts[2], "ru", texts[:2]).layers == ("context",)
    chat = chat_factory()
    await chat.start_as_child()
    for text in texts:
        await chat.say(text)
        assert ASK not in chat.text
    assert "8-800-2000-122" in chat.text and "Я передал это консультанту" in chat.text
    [case] = await desk.queue()
    assert case.risk == "critical"


async def test_a_danger_phrase_after_the_4000th_character_escalates(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    story = "сегодня в школе была контрольная по алгебре и потом мы пошли в столовую. " * 60
    assert len(story) > 4000
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say(story + "а вечером отчим опять избил меня ремнём")
    assert "только начало" in chat.text  # the transcript keeps the first 4,000 characters
    assert "8-800-2000-122" in chat.text
    [case] = await desk.queue()
    assert case.risk == "critical" and case.category == "abuse"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    assert all(len(line.text) <= 4000 for line in view.transcript)


async def test_the_half_hour_holds_across_a_change_of_flow(
    chat_factory: Callable[..., Chat], clock: Clock
) -> None:
    chat = chat_factory()
    await _in_report(chat)
    await chat.say(UNSURE)
    await chat.press("Да, всё в безопасности")
    await chat.press("В меню")
    await chat.press("спросить")  # another flow, the same conversation
    await chat.say(UNSURE)
    assert ASK not in chat.text
    clock.now += timedelta(minutes=31)
    await chat.say(UNSURE)
    assert ASK in chat.text


# A photo sent and feared: no danger word at all ("убьёт" is hyperbole), but where sextortion
# starts. A lexicon concern that asks (intimate-images.sent-scared): the bot asks directly.
SENT_SCARED = "мама меня убьёт если узнает что я отправила фото тому парню"


async def test_a_photo_sent_in_fear_is_asked_about_and_not_safe_reaches_a_person(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    verdict = assess(SENT_SCARED, "ru")
    assert verdict.check_in and not verdict.danger and verdict.category == "intimate-images"
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say(SENT_SCARED)
    # Asked about what was told, without blame: not "are you thinking of hurting yourself?"
    assert "Твоей вины здесь нет" in chat.text and "просит ещё фото или деньги" in chat.text
    assert "Ты сейчас в безопасности?" in chat.text and "причинить себе вред" not in chat.text
    assert chat.buttons == ["Да, всё в безопасности", "Нет, не в безопасности",
                            "Поговорить с человеком"]
    assert "8-800-2000-122" not in chat.text
    assert chat.desk == [] and await desk.queue() == []
    case = await _answer_not_safe(chat, desk)
    assert case.risk == "critical" and case.category == "intimate-images"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    assert any(SENT_SCARED in line.text for line in view.transcript)


async def test_a_photo_sent_in_fear_answered_safe_opens_nothing(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory(locale="en")
    await chat.start_as_child()
    await chat.say("if my dad finds out i sent him those photos im dead")
    assert "None of this is your fault" in chat.text and "Are you safe right now?" in chat.text
    assert "112" not in chat.text
    await chat.press("Yes, safe")
    assert "Thank you for answering" in chat.text
    assert chat.desk == [] and await desk.queue() == []


async def test_a_handled_request_raises_no_alarm_and_what_goes_on_does(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    # Told as handled (blocked, told mum): no alarm and no case; the same request going on
    # after the block is danger at once.
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say("какой-то взрослый просил у меня фотки, я его заблокировала и рассказала маме")
    assert "Чем я могу помочь?" in chat.text, "answered as any message is"
    assert "8-800-2000-122" not in chat.text
    assert chat.desk == [] and await desk.queue() == []
    await chat.say("но он опять пишет с другого акка и просит фото")
    assert "8-800-2000-122" in chat.text and "112" in chat.text
    assert chat.desk and chat.desk[0].critical
    assert (await desk.queue())[0].risk == "critical"


async def test_fear_is_asked_about_in_its_own_words_and_not_safe_opens_a_threats_case(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say("помогите мне страшно")
    assert "тебе кто-то угрожает или делает больно?" in chat.text
    assert "Ты сейчас в безопасности?" in chat.text and "8-800-2000-122" not in chat.text
    case = await _answer_not_safe(chat, desk)
    assert case.risk == "critical" and case.category == "threats"


async def test_no_food_at_home_is_asked_about_home(chat_factory: Callable[..., Chat]) -> None:
    chat = chat_factory(locale="en")
    await chat.start_as_child()
    await chat.say("nobody feeds us, mum is gone again")
    assert "Is there an adult at home looking after you?" in chat.text
    assert chat.buttons == ["Yes, safe", "No, not safe", "Talk to a person"]


async def test_a_parent_is_asked_about_their_child_whatever_the_topic(
    chat_factory: Callable[..., Chat]
) -> None:
    chat = chat_factory()
    await chat.say("привет")
    await chat.press("родитель")
    await chat.say("помогите мне страшно")
    assert "ваш ребёнок сейчас в безопасности?" in chat.text
    assert "угрожает" not in chat.text
