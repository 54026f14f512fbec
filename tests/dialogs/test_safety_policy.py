"""One safety policy for every path: every danger source × the state it arrives in × open or
closed hours × child or parent. Each case asserts what the writer sees (the numbers, the
words), what the counsellor gets (a critical, flagged alert) and what is stored (the case and
its risk)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dialogs.engine import DialogEngine
from dialogs.escalation import CaseSummary, Desk
from dialogs.hours import load_hours
from dialogs.messages import DESK, DeskEvent
from dialogs.operations import DeskConfig, DeskPolicy
from storage.models import Counsellor
from tests.conftest import Chat

NUMBERS = ("112", "8-800-2000-122", "124")
CLOSED = """
timezone: Europe/Moscow
weekly: {mon: closed, tue: closed, wed: closed, thu: closed, fri: closed, sat: closed, sun: closed}
"""

Step = Callable[[Chat], Awaitable[object]]


async def _menu(chat: Chat) -> None:
    await chat.say("привет")
    await chat.press("родитель" if chat.user.startswith("parent") else "ребёнок")


async def _flow(chat: Chat) -> None:
    await _menu(chat)
    if chat.user.startswith("parent"):
        await chat.press("волнуюсь")
        await chat.press("травят")
        await chat.press("за ребёнка")  # the report, on the child's behalf
    else:
        await chat.press("случилось")


async def _waiting(chat: Chat) -> None:
    await _menu(chat)
    await chat.press("человеком")


# Sources, each a way of telling us, from wherever the chat stands.
async def _typed(chat: Chat) -> None:
    await chat.say("я больше не хочу жить" if not chat.user.startswith("parent")
                   else "дочь сказала что не хочет жить и режет руки")


async def _caption(chat: Chat) -> None:
    await chat.send_photo("photo-9", caption="он пишет что убьёт меня если я расскажу")


async def _edited(chat: Chat) -> None:
    await chat.edit("мне угрожают, отчим бьёт меня каждый день")


async def _button(chat: Chat) -> None:
    await chat.press("Требуют")  # "they demand photos or money"


SOURCES: dict[str, tuple[Step, str]] = {
    "typed": (_typed, "typed"),
    "caption": (_caption, "caption"),
    "edited": (_edited, "edited"),
}
STATES: dict[str, Step] = {"menu": _menu, "flow": _flow, "waiting": _waiting}


def _closed(engine: DialogEngine, tmp_path: Path) -> None:
    path = tmp_path / "closed.yaml"
    path.write_text(CLOSED, encoding="utf-8")
    engine.policy = DeskPolicy(DeskConfig(hours=load_hours(path)))


def _assert_told(chat: Chat, *, parent: bool, open_now: bool, live: bool = False) -> None:
    text = chat.text
    for number in NUMBERS:
        assert number in text, f"{number} missing from {text!r}"
    assert "зову консультанта" not in text and "calling a counsellor" not in text
    if parent:
        assert "вашему ребёнку угрожает опасность" in text
    elif not live:
        assert "Спасибо, что рассказываешь" in text
    if live:
        assert "Твой консультант видит это сообщение" in text
    elif open_now:
        assert "Я передал это консультанту" in text
    else:
        assert "не на связи" in text and "номерам выше" in text


def _assert_alerted(chat: Chat, source: str, *, critical: bool = True) -> None:
    flagged = [n for n in chat.desk if n.meta.get("danger") == source]
    assert flagged, f"no desk notice flagged {source!r}: {[n.meta for n in chat.desk]}"
    if critical:
        assert all(n.critical for n in flagged)
    assert flagged[0].desk_event in (
        DeskEvent.CASE_OPENED, DeskEvent.CASE_RAISED, DeskEvent.CHILD_MESSAGE
    )


@pytest.mark.parametrize("who", ["child", "parent"])
@pytest.mark.parametrize("open_now", [True, False], ids=["open", "closed"])
@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("source", list(SOURCES))
async def test_every_source_from_every_state_at_any_hour(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    engine: DialogEngine,
    tmp_path: Path,
    source: str,
    state: str,
    open_now: bool,
    who: str,
) -> None:
    chat = chat_factory(user=f"{who}-1")
    if not open_now:
        _closed(engine, tmp_path)
    await STATES[state](chat)
    send, flag = SOURCES[source]
    await send(chat)
    _assert_told(chat, parent=who == "parent", open_now=open_now)
    _assert_alerted(chat, flag)
    [case] = await desk.queue()
    assert case.risk == "critical"
    if not open_now:
        assert all(n.meta.get("page") == "on-call" for n in chat.desk if n.critical)


@pytest.mark.parametrize("who", ["child", "parent"])
@pytest.mark.parametrize("open_now", [True, False], ids=["open", "closed"])
async def test_a_button_that_means_danger(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    engine: DialogEngine,
    tmp_path: Path,
    open_now: bool,
    who: str,
) -> None:
    chat = chat_factory(user=f"{who}-1")
    if not open_now:
        _closed(engine, tmp_path)
    await _flow(chat)
    await _button(chat)
    _assert_told(chat, parent=who == "parent", open_now=open_now)
    _assert_alerted(chat, "flow-answer")
    [case] = await desk.queue()
    assert case.risk == "critical" and case.category == "sextortion"


@pytest.mark.parametrize("open_now", [True, False], ids=["open", "closed"])
async def test_not_safe_right_now(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    engine: DialogEngine,
    tmp_path: Path,
    open_now: bool,
) -> None:
    chat = chat_factory()
    if not open_now:
        _closed(engine, tmp_path)
    await _flow(chat)
    await chat.press("Оскорбляют")
    await chat.press("Telegram")
    await chat.press("Да")
    await chat.press("Нет")  # "are you safe right now?" - no
    _assert_told(chat, parent=False, open_now=open_now)
    _assert_alerted(chat, "not-safe")
    [case] = await desk.queue()
    assert case.risk == "critical" and case.category == "cyberbullying"


@pytest.mark.parametrize("source", ["typed", "caption", "edited"])
async def test_danger_in_a_live_chat_flags_the_counsellor_without_cutting_in(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, source: str
) -> None:
    chat = chat_factory()
    await _waiting(chat)
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    send, flag = SOURCES[source]
    await send(chat)
    _assert_told(chat, parent=False, open_now=True, live=True)
    assert "передал это консультанту" not in chat.text and "очеред" not in chat.text
    [notice] = [n for n in chat.desk if n.meta.get("danger") == flag]
    assert notice.critical and notice.desk_event is DeskEvent.CASE_RAISED
    assert notice.text or notice.attachments
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str) and view.summary.risk == "critical"
    # The counsellor reads what the child was shown: the numbers are in the transcript.
    assert any(line.sender == "bot" and "8-800-2000-122" in line.text
               for line in view.transcript)
    # The child is still in the chat with their counsellor: what they write next reaches them.
    await chat.say("спасибо что ответили")
    assert [n.desk_event for n in chat.desk] == [DeskEvent.CHILD_MESSAGE]
    assert chat.replies == []


async def test_a_friend_in_danger_gets_words_about_the_friend(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await _menu(chat)
    await chat.say("моя подруга сказала что хочет умереть и уже попрощалась со всеми")
    assert "Человек, о котором ты пишешь, сейчас в безопасности?" in chat.text
    assert all(number in chat.text for number in NUMBERS)
    assert chat.desk and chat.desk[0].meta.get("about") == "other"
    [case] = await desk.queue()
    assert case.risk == "critical"


def test_every_emergency_contact_has_a_source_and_a_recent_check() -> None:
    from datetime import date, timedelta

    from dialogs.contacts import contacts, regions, stale

    assert "ru" in regions()
    numbers = [c.number for c in contacts("ru")]
    assert numbers == ["112", "8-800-2000-122", "124"]
    assert all(c.source.startswith("https://") for r in regions() for c in contacts(r))
    assert stale(date(2026, 12, 2)) == []
    assert stale(date(2026, 12, 2) + timedelta(days=400)), "a year-old check is reported"


# Where the chat stands, by button payload (the same in both interface languages).
BY_PAYLOAD: dict[str, tuple[str, ...]] = {
    "start": (),
    "menu": ("st|role|child",),
    "flow": ("st|role|child", "st|menu|report"),
    "waiting": ("st|role|child", "st|menu|person"),
}


async def _typed_from(
    chat: Chat, desk: Desk, state: str, words: str, *, critical: bool = True
) -> CaseSummary:
    """`words` typed from `state`; asserts the danger path (the region's numbers, honest words
    that a counsellor was called, a critical flagged alert) and returns the one case stored."""
    if BY_PAYLOAD[state]:
        await chat.say("/start")
        for payload in BY_PAYLOAD[state]:
            await chat.payload(payload)
    await chat.say(words)
    for number in NUMBERS:
        assert number in chat.text, f"{number} missing from {chat.text!r}"
    ru = chat.locale == "ru"
    assert ("Я передал это консультанту" if ru else "passed this to a counsellor") in chat.text
    _assert_alerted(chat, "typed", critical=critical)
    [case] = await desk.queue()
    return case


@pytest.mark.parametrize("state", list(BY_PAYLOAD))
@pytest.mark.parametrize(
    ("locale", "words"),
    [("ru", "я сейчас не в безопасности"), ("ru", "мне небезопасно дома, помогите"),
     ("en", "i'm not safe"), ("en", "I don't feel safe at home right now"),
     # In the plural, with no subject, afraid to be at home (round 43).
     ("ru", "мы с сестрой не в безопасности"), ("ru", "мне сейчас страшно находиться дома"),
     ("en", "help me not safe"), ("en", "we are not safe, mum's boyfriend is back")],
)
async def test_typing_i_am_not_safe_is_danger_from_any_state(
    chat_factory: Callable[..., Chat], desk: Desk, state: str, locale: str, words: str
) -> None:
    """No category word at all, only "I'm not safe" typed: the same as the button. The child
    sees the region's numbers (the Russian line also in the English interface) and honest
    words that a counsellor was called; the counsellors get a critical, flagged alert; a
    critical case is stored."""
    case = await _typed_from(chat_factory(locale=locale), desk, state, words)
    assert case.risk == "critical"


async def test_what_the_desk_makes_the_bot_tell_the_child_is_in_the_transcript(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    """"A counsellor is here" (after a take) is read by the counsellor as the child read it."""
    chat = chat_factory()
    await _waiting(chat)
    [case] = await desk.queue()
    result = await desk.take(counsellor, case.id)
    assert result.ok
    told = [o.text for o in result.outbound if o.to.channel != DESK and o.text]
    assert told and "консультант" in told[0].lower()
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, str)
    bot_lines = [line.text for line in view.transcript if line.sender == "bot"]
    assert all(text in bot_lines for text in told)


@pytest.mark.parametrize("state", ["menu", "flow", "waiting"])
@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "cut too deep need help"), ("en", "c.u.t t.o.o d.e.e.p n.e.e.d h.e.l.p"),
     ("ru", "порезала слишком глубоко")],
)
async def test_a_cut_too_deep_is_danger_from_any_state(
    chat_factory: Callable[..., Chat], desk: Desk, state: str, locale: str, words: str
) -> None:
    """A cut too deep (round 46), told with no "myself": the region's numbers at once, honest
    words that a counsellor was called, a critical alert, a critical self-harm case."""
    case = await _typed_from(chat_factory(locale=locale), desk, state, words)
    # Waiting for a person, the case asked for is raised, and filed under self-harm now.
    assert case.risk == "critical" and case.category == "self-harm"


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "How do I explain sextortion to my 12-year-old without scaring her? Nothing has "
            "happened, I just read an article."),
     ("ru", "Как поговорить с сыном про шантаж интимными фото? У нас ничего такого не было, "
            "просто хочу заранее.")],
)
async def test_a_parent_asking_ahead_when_nothing_has_happened_is_answered_not_alarmed(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str
) -> None:
    """A parent's question about sextortion "when nothing has happened" (round 46): no
    emergency opening, no "is your child safe right now?", no alert, no case (the answer may
    name the police's numbers, as the article does)."""
    chat = chat_factory(user="parent-7", locale=locale)
    await chat.say("/start")
    await chat.payload("st|role|parent")
    await chat.say(words)
    assert "опасность прямо сейчас" not in chat.text, chat.text
    assert "in danger right now" not in chat.text, chat.text
    assert "8-800-2000-122" not in chat.text, chat.text
    await _assert_answered_not_alarmed(chat, desk)


async def _assert_answered_not_alarmed(chat: Chat, desk: Desk) -> None:
    """No "are you safe right now?" for the writer, no danger alert for the counsellors, no
    case stored."""
    assert "в безопасности" not in chat.text and "safe right now" not in chat.text, chat.text
    assert not [n for n in chat.desk if n.meta.get("danger")]
    assert await desk.queue() == []


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "I never sent anyone any photos but someone made fake nudes of me and is sharing "
            "them"),
     ("en", "someone used an ai app to make naked pictures of me"),
     ("ru", "прифотошопили моё лицо к голому телу и кидают в беседе класса"),
     ("ru", "нейросетью раздели меня на фото и скинули в общий чат")],
)
async def test_fake_nudes_of_a_child_are_danger(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str
) -> None:
    """Nudes faked from a child's photos (round 47b) are image-based sexual abuse: the
    numbers at once, a counsellor called, a critical sextortion case. "I never sent any
    photos" does not make it a question asked ahead."""
    case = await _typed_from(chat_factory(locale=locale), desk, "menu", words)
    assert case.risk == "critical" and case.category == "sextortion"


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "i swallowed 25 ibuprofen after school, feel ok tho, should i just sleep?"),
     ("ru", "выпила 15 таблеток феназепама, пока ничего не чувствую"),
     # Number words, and "съела" typed in Latin letters (round 52).
     ("en", "took like twenty of my dads heart tablets an hour ago, feel a bit dizzy"),
     ("ru", "час назад съела двадцать таблеток бабушкиного лекарства от давления"),
     ("ru", "ya s'ela pachku paracetamola vchera, segodnya toshnit")],
)
async def test_tablets_by_number_or_name_are_an_overdose(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str
) -> None:
    """Tablets told by number or by name (rounds 48 and 52), "I feel fine": the numbers at once,
    a counsellor called, a critical substance-use case."""
    case = await _typed_from(chat_factory(locale=locale), desk, "menu", words)
    assert case.risk == "critical" and case.category == "substance-use"


@pytest.mark.parametrize(
    ("locale", "words"),
    [("en", "our dog has cancer and the vet says we have to put her to sleep tomorrow, how do i "
            "say goodbye to her?"),
     ("ru", "нашего кота завтра будут усыплять, ветеринар сказал что он очень мучается и уже не "
            "ест, как с ним попрощаться?"),
     # First aid learnt (round 54).
     ("en", "we did a first aid day at school with paramedics, learned CPR on a dummy and what to "
            "do if someone is not breathing"),
     ("ru", "на курсах первой помощи учили что делать если человек без сознания и не дышит, было "
            "интересно")],
)
async def test_a_pet_at_the_vet_or_first_aid_learnt_is_answered_not_alarmed(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str
) -> None:
    """A pet that is dying or put down (round 49), first aid learnt (round 54): no emergency
    opening and no numbers, no "are you safe?", no alert, no case; the child gets a reply."""
    chat = chat_factory(locale=locale)
    await chat.say("/start")
    await chat.payload("st|role|child")
    await chat.say(words)
    assert chat.text, "the child gets a reply"
    for number in NUMBERS:
        assert number not in chat.text, chat.text
    await _assert_answered_not_alarmed(chat, desk)


@pytest.mark.parametrize(
    ("locale", "words", "category"),
    [  # The pet-at-vet frame (round 49) never hides the child's own danger.
     ("en", "our cat was put down at the vet today and i want to die too", "suicide"),
     ("ru", "кота усыпили у ветеринара, не хочу жить без него", "suicide"),
     # A pet hurt and the child told they are next (round 50).
     ("en", "my stepdad kicked our dog across the kitchen and said i'm next if i cry", "abuse"),
     ("ru", "отчим утопил котёнка и сказал что со мной будет так же", "abuse"),
     # The first-aid frame (round 54) never hides danger now or the child's own.
     ("ru", "нас учили первой помощи, но сейчас мой друг без сознания после таблеток, помогите",
      "substance-use"),
     ("ru", "мы на обж проходили первую помощь, а я вчера наглоталась таблеток", "suicide"),
     ("en", "we did first aid at school today but i want to die, i have my mums pills ready",
      "suicide"),
     # Schoolwork, an accident and recovery (round 61) never hide danger now.
     ("en", "i have a presentation tomorrow and i want to kill myself", "suicide"),
     ("ru", "нашла у дочки порезы на руках, говорит, что случайно порезалась", "self-harm"),
     ("en", "i relapsed and cut myself last night after being clean for a year", "self-harm"),
     # ...nor a recovery counted in time or "I'm not cutting" (round 64)
     ("ru", "полгода без порезов, а вчера снова порезала руки", "self-harm"),
     ("en", "im not cutting myself, i want to die tonight", "suicide")],
)
async def test_danger_told_beside_a_pet_or_first_aid_is_danger(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str, category: str
) -> None:
    """The numbers, a counsellor, a critical case of the child's danger (beside a pet, first
    aid, schoolwork, an accident or a recovery)."""
    case = await _typed_from(chat_factory(locale=locale), desk, "menu", words)
    assert case.risk == "critical" and case.category == category


@pytest.mark.parametrize(
    ("locale", "words", "category"),
    [  # What held-out v24 missed, as forms (round 53).
     ("ru", "vtyz pfgthkb d rjvyfnt", "abuse"),  # "меня заперли в комнате", English layout
     ("ru", "отчим запирает меня в ванной на всю ночь", "abuse"),
     ("en", "a car keeps following me rn, im walking home alone", "threats"),
     ("ru", "за мной идёт какой-то мужик от самой остановки", "threats"),
     ("ru", "короче я всё, выпиливаюсь сегодня", "suicide"),
     ("en", "been cuting myself agen", "self-harm"),
     ("ru", "скоро в шк0л3 будет бойня, я всё решил", "violence"),
     # ...v24 to v26 (round 55)
     ("ru", "я дома одна и кто-то ломится в дверь", "threats"),
     ("en", "someone is banging on the door and yelling my name", "threats"),
     ("en", "im locked in the basement and cant get out", "threats"),
     ("en", "these boys said im dead on friday, they know my bus", "threats"),
     ("en", "my little sister drank bleach from under the sink", "substance-use"),
     ("ru", "нас заставляют воровать в магазинах каждый день", "exploitation"),
     ("ru", "мы заблудились в лесу, уже темнеет и телефон садится", "threats"),
     ("ru", "один пацан сказал что в пятницу всех перебьёт", "violence"),
     # ...and v27 (round 56)
     ("ru", "завтра устрою в школе колумбайн", "violence"),
     ("ru", "mama menya bet kazhdyj den shnurom, boyus idti domoj", "abuse"),
     ("ru", "в субботу идём на руфинг на недострой", "dangerous-challenge"),
     ("en", "going train surfing tonight with the older boys", "dangerous-challenge"),
     # ...and v28 (round 57)
     ("en", "my moms bf beat me up again, got a black eye lol", "abuse"),
     ("en", "theres a man in our garden looking in the windows, parents are out", "threats"),
     ("en", "h-e-l-p s-o-m-e-o-n-e i-s h-e-r-e", "threats"),
     ("en", "it wont stop bleeding, i went too deep", "self-harm"),
     ("ru", "меня зовут на зацепинг в субботу", "dangerous-challenge"),
     # ...and v29 (round 59): leet runs, "1" for "ь", the choking game, the day first, a
     # drug courier held, "ur dead", "you're next", "won't wake up"
     ("ru", "п4п4 б1ёт м3ня р3мн3м", "abuse"),
     ("en", "h3lp 50m30n3 15 7ry1ng 70 g37 1n", "threats"),
     ("ru", "брат играит в собачий кайф с пацанами", "dangerous-challenge"),
     ("ru", "сегодня руфинг на высотке, без страховки", "dangerous-challenge"),
     ("ru", "работаю закладчиком, уйти не дают, говорят должен", "exploitation"),
     ("en", "they texted me ur dead after school tomorrow", "threats"),
     ("en", "he drowned the cat and told me you're next", "abuse"),
     ("en", "my friend drank way too much vodka at the party and she won't wake up",
      "substance-use"),
     # ...and v30 (round 60): hiding cuts, pills as a drug, not fed as a punishment, a card
     # for someone's money, a fire now, lost with the phone dying, "i don't think i'll be
     # alive", a head slammed
     ("ru", "как спрятать порезы от родителей летом", "self-harm"),
     ("ru", "вчера закинулись колёсами с пацанами, щас трясёт", "substance-use"),
     ("ru", "за тройку мама не кормит меня до вечера", "abuse"),
     ("ru", "мне дали чужую карту для обнала, мне 13", "exploitation"),
     ("ru", "у нас пожар в подъезде, помогите", "threats"),
     ("ru", "заблудилась в горах, заряда 5 процентов", "threats"),
     ("en", "theres a fire in the kitchen and we cant get out", "threats"),
     ("en", "i dont think ill be alive by christmas", "suicide"),
     ("en", "got my head smashed against the wall again", "abuse"),
     # ...and v31 (round 62): a younger child not home at night
     ("ru", "сестрёнка 9 лет до сих пор не вернулась из школы, уже темно, телефон недоступен",
      "threats"),
     ("en", "my little brother never came back from the park, its dark and he wont answer",
      "threats"),
     # ...and v32 (round 63): a shooting told object first, a beating promised at school, a
     # courier's job, a curator waiting, "help, they're after me", a relapse in emoji, someone
     # in the house, "wet up", pills with the heart pounding
     ("ru", "всех в школе перестреляю", "violence"),
     ("ru", "за школой меня изобьют старшеклассники сегодня", "threats"),
     ("ru", "подрабатываю закладчиком, мне 14", "exploitation"),
     ("ru", "куратор ждёт отчёт до утра", "dangerous-challenge"),
     ("ru", "помогите, за мной гонятся", "threats"),
     ("en", "did it again 🩸", "self-harm"),
     ("en", "someones in the house, im hiding", "threats"),
     ("en", "they said im getting wet up after school", "threats"),
     ("en", "took a couple pills and my heart is going mad", "substance-use"),
     # ...and v33 (round 65): a man's age beside a child's, through the ice, foam at the
     # mouth, "им конец" at school, a last message, "can't stop", a sibling hit, a whole strip
     ("ru", "мне 14, а ему 31, он зовёт в гости", "grooming"),
     ("ru", "сестра провалилась под лёд на пруду", "threats"),
     ("ru", "у друга пена изо рта после энергетиков и таблеток", "substance-use"),
     ("ru", "завтра в школе им всем конец, я решил", "violence"),
     ("en", "this is my last message. goodbye everyone", "suicide"),
     ("en", "i cant stop hurting myself", "self-harm"),
     ("en", "mum punched my little brother again", "abuse"),
     ("en", "took a whole strip of them", "substance-use"),
     ("en", "someone in my room", "threats"),
     # ...and what the blind sets keep telling (round 66)
     ("ru", "меня поджидают у школы, боюсь выходить", "threats"),
     ("en", "somebody is following me", "threats"),
     ("en", "he found where i live", "threats"),
     # ...and v34 (round 67): not breathing after a drug, a money mule threatened, fallen
     # into a manhole, "can't do it ... goodbye", cutting again and bleeding, smoke a floor
     # away, a stranger's van, and a pill's name in leet past the reader's first readings
     ("ru", "после мефа задыхаюсь", "substance-use"),
     ("ru", "я дропом стал, теперь угрожают", "exploitation"),
     ("ru", "брат свалился в люк на стройке", "threats"),
     ("ru", "выпил п4чку ф3н4з3п4м4", "substance-use"),
     ("en", "i can't do it anymore. goodbye", "suicide"),
     ("en", "cut again, bleeding a lot", "self-harm"),
     ("en", "smoke downstairs!! help", "threats"),
     ("en", "my friend just got in a strangers van", "threats"),
     # ...and v35 (round 68): hurting people at school, a hit list, a jump for a video,
     # sniffing gas in a bag, a last message with a sorry
     ("en", "im going to stab people at school tomorrow", "violence"),
     ("en", "there's a hit list with names from my class", "violence"),
     ("en", "jumping off the quarry edge for a tiktok later", "dangerous-challenge"),
     ("ru", "зовут нюхать газ из баллончика в пакете", "dangerous-challenge"),
     ("ru", "это последнее смс, простите", "suicide"),
     # ...and v36 (round 69): a school to be mined, a power line's tower, a car driving after
     # a girl, gone swimming at night, an address posted with a threat, trapped in a car's
     # boot, "or my photos go on", a self-harm emoji with "again"
     ("ru", "завтра заминирую гимназию, всё решено", "violence"),
     ("ru", "брат залез на опору ЛЭП, уже высоко", "dangerous-challenge"),
     ("ru", "за мной от остановки едет какая-то машина, я одна", "threats"),
     ("ru", "сестра пошла ночью плавать в реке и не вернулась", "threats"),
     ("ru", "слили мой адрес в телегу и пишут что приедут", "threats"),
     ("en", "help we are trapped in the boot of a car", "threats"),
     ("en", "send more or my photos go on the school story", "sextortion"),
     ("en", "🩸 again tonight", "self-harm"),
     # ...and v37 (round 70): train-surfing on a freight train, a gunman in the school, a
     # little sister not back after dark, a jump off a harbour wall for a video, a school to
     # be blown up, a class that "will pay", trap lines run for others
     ("ru", "пацаны зовут на зацеп на товарняке прямо щас", "dangerous-challenge"),
     ("ru", "в школе мужик с ружьём, мы спрятались в классе", "violence"),
     ("ru", "сестрёнка ушла к подруге днём и до сих пор нет, уже темно, трубку не берёт",
      "threats"),
     ("en", "jumping off the harbour wall for a tiktok rn", "dangerous-challenge"),
     ("en", "im going to blow up our school friday", "violence"),
     ("en", "everybody in my class will pay tomorrow", "violence"),
     ("en", "they force me to run trap lines every weekend", "exploitation"),
     # ...and v38 (round 71): an attack planned in the first person, a roof climbed for a
     # video, skull breaker, "we know your address", left in a hot car, through the ice
     ("ru", "готовлю нападение на гимназию, всё продумал", "violence"),
     ("ru", "лезу на крышу ради тиктока, там высоко", "dangerous-challenge"),
     ("en", "theyre doing skull breaker on me at lunch", "dangerous-challenge"),
     ("en", "they messaged we know your address, see you tonight", "threats"),
     ("en", "we got left in the car in the heat for hours", "threats"),
     ("en", "my friend fell through the ice on the lake", "threats"),
     # round 69's "i am locked in a car" as one pattern (its first form never matched)
     ("en", "she is trapped in his car", "threats"),
     # ...and v39 (round 72): thin ice as a dare, tracked down, a score settled "as on the
     # news", a fire in the flat, leet slang ("щ4с"), a relapse in emoji, a dare from a
     # bridge, thrown out by the hour, lost in the forest, a flat on fire, "can't talk now"
     ("ru", "пойдём прыгать по тонкому льду на пруду, на спор", "dangerous-challenge"),
     ("ru", "нас выследили, стоят у подъезда", "threats"),
     ("ru", "в пятницу отомщу им всем, как в новостях было", "violence"),
     ("ru", "пожар в квартире, мы внутри", "threats"),
     ("ru", "н4м щ4с н3б3з0п4сн0", "threats"),
     ("en", "relapsed tonight 🔪", "self-harm"),
     ("en", "the year 11s dared me to jump off the quarry into the lake tonight",
      "dangerous-challenge"),
     ("en", "mum threw me out at 2am and its pouring", "abuse"),
     ("en", "we are lost in the forest and its cold", "threats"),
     ("en", "flat on fire and im stuck in my room", "threats"),
     ("en", "cant talk now, she is watching", "threats"),
     # ...and v40 (round 73): pictures to be sent to everyone, locked in a pantry, stuck in
     # a lift at night, a little brother not home (misspelt), a frozen lake for a dare,
     # someone breaking in, a lift filling with smoke
     ("ru", "он разошлёт фото одноклассникам 😭", "sextortion"),
     ("ru", "отчим запер меня в кладовой, я тут с обеда", "abuse"),
     ("ru", "мы застряли в лифте, темно, 12 ночи", "threats"),
     ("ru", "сестра ушла в 6 и до сих пор нету, уже 10 ночи, трубку не берёт", "threats"),
     ("en", "we're going across the frozen lake for a bet", "threats"),
     ("en", "someone is breaking into our flat", "threats"),
     ("en", "im stuck in the elevator and i can smell smoke", "threats"),
     # ...and v41 (round 74): a contest on cracking ice, thrown out into the frost, nothing
     # to eat for days, shooting in the school, pills "закинул" by number, "help, I don't
     # know where I am", "bye everyone, i'm done", "ur dead 2morrow", getting jumped, a lift
     # alone in the dark
     ("ru", "на пруду лёд трещит, кто дальше зайдёт тот крутой, я иду", "dangerous-challenge"),
     ("ru", "отчим выставил меня на улицу, а там мороз", "abuse"),
     ("ru", "есть нечего уже 4 дня, папа пьёт", "abuse"),
     ("ru", "у нас в школе стрельба, мы под партами", "violence"),
     ("ru", "закинула 20 таблеток ибупрофена", "substance-use"),
     ("ru", "спасите, не знаю где я нахожусь", "threats"),
     ("en", "i am done. bye everyone", "suicide"),
     ("en", "they said ur dead 2moro", "threats"),
     ("en", "im getting jumped after school today", "threats"),
     ("en", "stuck in the elevator alone and its dark", "threats"),
     # the slot check's repairs: phrases once written among one-word alternatives
     ("ru", "нас не отпускают из квартиры, забрали телефоны", "exploitation"),
     ("en", "i cant talk right now, he is listening", "threats"),
     # v42's misses as forms (round 76), and Russian in Latin letters with "v"
     ("ru", "опять резала ляжки лезвием, кровь не останавливается", "self-harm"),
     ("ru", "стоим на рельсах, кто последний отпрыгнет от электрички", "dangerous-challenge"),
     ("ru", "мы с пацанами залезли на кран на стройке", "dangerous-challenge"),
     ("ru", "уже 12 таблеток парацетамола, тошнит", "substance-use"),
     ("ru", "zastryal v lifte, tut dym", "threats"),
     ("en", "these boys jumped me behind the bus stop", "threats"),
     ("en", "my mate got jumped on the way to the park and hes not moving", "threats"),
     # v43's misses as forms (round 77)
     ("ru", "без меня маме будет легче, я всё решила", "suicide"),
     ("ru", "сестра ходит в пластырях и говорит что кошка, но у нас нет кошки", "self-harm"),
     ("ru", "пойдём на лёд на озере, кто дальше пройдёт", "dangerous-challenge"),
     ("ru", "брата заставляют разносить закладки", "exploitation"),
     ("en", "how do i hide the marks on my arms for swimming", "self-harm"),
     ("en", "we're riding on top of the train tonight", "dangerous-challenge"),
     ("en", "the frozen pond later, ice looks thin but whatever", "threats"),
     ("en", "the coach plays a secret game with us and told us not to tell", "grooming"),
     ("en", "he gave me a sim so we can text without my parents knowing", "grooming"),
     ("en", "i burn myslef when it gets bad", "self-harm"),
     ("en", "swalowed 20 paracetemol", "substance-use"),
     # v44's misses as forms (round 79), told in other words
     ("ru", "однокласник завтра пырнет классную, у него нож", "violence"),
     ("ru", "наглотался табеток от головы", "substance-use"),
     ("ru", "помогите он пришёл", "threats"),
     ("en", "i just want to stop exisiting", "suicide"),
     ("en", "going on the river tomorrow, the ice is cracking a bit", "threats"),
     ("en", "someone keeps sending me you are dead tonight", "threats"),
     ("en", "making a bomb for school, they will see", "violence"),
     ("en", "someone's breaking in right now", "threats"),
     ("en", "cant leave please", "exploitation")],
)
async def test_danger_in_the_forms_v24_to_v43_missed_is_danger(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str, category: str
) -> None:
    """Locked in, followed or broken in on now, a death threat with a day, suicide and
    self-harm in slang, typos and leet, bleach, made to steal, lost at night, a school attack,
    a stunt planned, a courier held, a friend who won't wake, cuts hidden, pills as a drug,
    food withheld, a child's card used for cash, a fire, a little sister not home after dark, a
    beating promised, someone in the house, pills and a racing heart, thighs cut, a train
    dared, a crane climbed, a lift with smoke in Latin letters, a boy jumped, a burden, a cat
    that is not there, ice, a courier made to, marks hidden, a train's roof, a secret game, a
    phone kept from parents, typos of a burn and of pills: the numbers at once, a counsellor
    called, a critical case of that danger."""
    case = await _typed_from(chat_factory(locale=locale), desk, "menu", words)
    assert case.risk == "critical" and case.category == category


@pytest.mark.parametrize(
    ("locale", "words"),
    [# days without food counted towards a goal weight (round 63)
     ("en", "5 days without food, ugw is so close"),
     # "eaten nothing in five days" (round 67)
     ("en", "ive eaten nothing in 5 days"),
     # days of starving counted (round 71)
     ("en", "day 4 no eating, aiming for 7"),
     # weight lost by the kilo with the body's alarms ("8kg" read as a number and its unit;
     # round 73)
     ("en", "dropped 7kg in a month and i keep getting dizzy"),
     # purging told as a meal thrown up again (round 74), also in Russian (round 77)
     ("en", "threw up my lunch again"),
     ("ru", "опять вырвала обед специально"),
     # fainting from skipped meals (round 77)
     ("en", "passed out at school cos i skipped meals again"),
     # a day counted by an ordinal word (round 79), and fainting is no joke
     ("ru", "не ела уже третий день"),
     ("en", "day 5 of only water, fainted at school lol")],
)
async def test_eating_disorders_with_a_danger_sign_reach_a_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk, locale: str, words: str
) -> None:
    """An eating disorder with a danger sign: the numbers and a counsellor at once, the line
    flagged, a high-risk eating-disorder case."""
    case = await _typed_from(chat_factory(locale=locale), desk, "menu", words, critical=False)
    assert case.risk == "high" and case.category == "eating-disorder"


async def test_laxatives_by_a_number_word_reach_a_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    """Laxatives counted in words (round 70): the numbers and a counsellor at once, the desk
    told with the line flagged, a high-risk eating-disorder case."""
    case = await _typed_from(chat_factory(locale="en"), desk, "menu",
                             "took my mums laxatives, like twelve", critical=False)
    assert case.risk == "high" and case.category == "eating-disorder"


async def test_laxatives_by_number_reach_a_counsellor(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    """Laxatives by number (round 50), an eating disorder with a danger sign: the numbers and
    a counsellor at once, the desk told with the line flagged, a high-risk case."""
    case = await _typed_from(
        chat_factory(locale="en"), desk, "menu",
        "taking laxatives to lose weight, im up to 9 a day now", critical=False)
    assert case.risk == "high" and case.category == "eating-disorder"
