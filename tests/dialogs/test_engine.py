"""The engine's rules that hold in every state: persistence, global commands, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import Channel, ContentKind, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos
from tests.conftest import Chat, Clock


async def test_a_new_engine_continues_every_conversation(
    db: Database, kb: KnowledgeBase, engine: DialogEngine
) -> None:
    first = Chat(engine)
    await first.start_as_child()
    await first.press("случилось")
    await first.press("Угрожают")
    second = Chat(DialogEngine(db, kb=kb))
    second.replies = first.replies
    await second.press("WhatsApp")
    assert "продолжается" in second.text
    async with db.session() as s:
        user = await Repos(s).users.find("console", "child-1")
        assert user is not None
        conv = await Repos(s).conversations.for_user(user.id)
        assert conv is not None
        assert (conv.flow, conv.state) == ("child_report", "ongoing")
        assert conv.data["what"] == "threats" and conv.data["where"] == "whatsapp"


async def test_repeated_update_is_ignored(engine: DialogEngine) -> None:
    inbound = Inbound(Channel.CONSOLE, "u", "c", text="привет", update_id="42")
    assert await engine.handle(inbound)
    assert await engine.handle(inbound) == []


async def test_stale_and_forged_buttons_are_refused_politely(
    chat_factory: Callable[..., Chat],
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    old = chat.button("случилось").payload
    await chat.press("случилось")
    await chat.payload(old)
    assert "кнопка уже не действует" in chat.text
    assert "Что случилось" in chat.text, "and the current question is asked again"
    for forged in ("cr|what|hack", "zz|x|y", "g|forget=yes", "cr|where|vk", "|||", "x" * 500):
        await chat.payload(forged)
        assert "кнопка уже не действует" in chat.text, forged


async def test_free_text_where_a_button_was_expected_is_answered(
    chat_factory: Callable[..., Chat],
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.say("одноклассники скинули мои фотки в общий чат")
    assert "может помочь" in chat.text
    assert "Поговорить с человеком" in chat.buttons
    assert "Что случилось" in chat.text, "the question is asked again"
    await chat.say("абракадабра")
    assert "не совсем понял" in chat.text


async def test_typed_label_counts_as_the_button(chat_factory: Callable[..., Chat]) -> None:
    chat = chat_factory()
    await chat.say("привет")
    await chat.say("Я ребёнок или подросток")
    assert "Чем я могу помочь" in chat.text


async def test_global_commands_in_any_state(chat_factory: Callable[..., Chat]) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.say("/help")
    assert "/forget" in chat.text and "Что случилось" in chat.text
    await chat.say("/lang")
    await chat.press("English")
    assert "English" in chat.text and "What happened" in chat.text
    await chat.say("/menu")
    assert "How can I help" in chat.text
    await chat.say("/start")
    assert "Who are you" in chat.text
    await chat.say("/frobnicate")
    assert "don't know that command" in chat.text


async def test_forget_erases_transcript_answers_and_evidence(
    chat_factory: Callable[..., Chat], db: Database, desk: Desk
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("случилось")
    await chat.press("Оскорбляют")
    await chat.press("ВКонтакте")
    await chat.press("Да")
    await chat.press("Да")
    await chat.send_photo("secret-screenshot")
    await chat.press("Готово")
    await chat.press("Нет")
    await chat.press("человеком")
    [case] = await desk.queue()
    await chat.say("/forget")
    await chat.press("Нет, оставить")
    assert "ничего не стираю" in chat.text
    await chat.say("/forget")
    await chat.press("Да, стереть")
    assert "всё стёр" in chat.text
    async with db.session() as s:
        repos = Repos(s)
        assert await repos.users.find("console", "child-1") is None
        assert list(await repos.messages.for_case(case.id)) == []
        assert list(await repos.attachments.for_case(case.id)) == []
        kept = await repos.cases.get(case.id)
        assert kept is not None and kept.answers == {} and kept.user_id is None
        assert kept.category == "cyberbullying", "anonymous counts stay"
    await chat.say("привет")
    assert "сохраняю" in chat.text, "a new start, with the notice again"


async def test_forget_drops_the_texts_kept_in_memory(
    chat_factory: Callable[..., Chat], engine: DialogEngine
) -> None:
    """What a child typed is kept in memory only to be read once (triage's texts read alone,
    the danger lane's verdicts): /forget drops those copies too."""
    import importlib

    # The package's `assess` is the function; its module holds the process's `Triage`.
    kept = importlib.import_module("dialogs.triage.assess")._TRIAGE
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("спросить")
    await chat.say("меня зовут Маша, я живу на улице Ленина 5, меня травят в классе")
    assert kept._lexicon_alone.cache_info().currsize > 0
    assert kept._score_alone.cache_info().currsize > 0
    await chat.say("/forget")
    await chat.press("Да, стереть")
    assert "всё стёр" in chat.text
    assert kept._lexicon_alone.cache_info().currsize == 0
    assert kept._score_alone.cache_info().currsize == 0
    assert engine._reads_as_danger.cache_info().currsize == 0


async def test_long_silence_offers_to_continue_or_restart(
    chat_factory: Callable[..., Chat], clock: Clock
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("спросить")
    await chat.say("меня травят")
    clock.now += timedelta(hours=7)
    await chat.say("а ещё вопрос")
    assert "Давно не виделись" in chat.text
    await chat.press("Продолжить")
    assert chat.buttons
    clock.now += timedelta(hours=7)
    await chat.say("у меня вопрос про вк")
    await chat.press("Начать сначала")
    assert "Чем я могу помочь" in chat.text


async def test_unsupported_content_and_huge_text(chat_factory: Callable[..., Chat]) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    for kind in (ContentKind.STICKER, ContentKind.VOICE, ContentKind.LOCATION, ContentKind.POLL):
        await chat.send_kind(kind)
        assert "только текст" in chat.text
    await chat.press("спросить")
    await chat.say("травля " * 2000)
    assert "очень длинное" in chat.text


async def test_a_flood_gets_one_calm_reply_and_does_not_slow_others(
    engine: DialogEngine,
) -> None:
    import time

    replies = []
    flood_started = time.perf_counter()
    for n in range(200):
        replies.append(
            await engine.handle(
                Inbound(Channel.CONSOLE, "flooder", "f", text=f"спам {n}", update_id=f"f{n}")
            )
        )
    waits = [r for r in replies if r and "очень быстро" in r[0].text]
    assert len(waits) == 1, "one calm 'please wait', not two hundred"
    # The burst, plus what the bucket refilled (one a second) while the flood was handled.
    refilled = (time.perf_counter() - flood_started) * engine.config.flood_per_second
    assert sum(1 for r in replies if r) <= engine.config.flood_burst + 1 + int(refilled) + 1
    started = time.perf_counter()
    other = await engine.handle(
        Inbound(Channel.CONSOLE, "calm", "c", text="привет", update_id="c1")
    )
    assert other and time.perf_counter() - started < 0.5
    danger = await engine.handle(
        Inbound(Channel.CONSOLE, "flooder", "f", text="я хочу умереть", update_id="f-danger")
    )
    assert any("8-800-2000-122" in o.text for o in danger), "danger always gets through"


async def test_texts_waiting_to_be_read_are_paced_unless_nothing_else_waits(
    engine: DialogEngine,
) -> None:
    """A flooder's refused long text stamped to be read later waits its turn (paced) while
    other work waits, and is read at once when nothing else does (the app's `idle`)."""
    import asyncio

    import pytest

    from dialogs import stages

    story = "мы гуляли в парке и смотрели на уток " * 20
    loop = asyncio.get_running_loop()

    def stamped(n: int) -> Inbound:
        return Inbound(Channel.TELEGRAM, "flooder", "f", text=f"{n} {story}", locale_hint="ru",
                       update_id=f"r{n}", flood=stages.READ)

    engine._next_read = loop.time() + 30.0  # as if a long read had just finished
    with pytest.raises(TimeoutError):  # others' work waits: this read waits its turn
        await asyncio.wait_for(engine.handle(stamped(1)), 0.5)
    engine.idle = lambda inbound: inbound.user_id == "flooder"  # nothing else waits
    assert await asyncio.wait_for(engine.handle(stamped(2)), 5) == [], "read at once, let go"


async def test_an_attachment_over_the_limit_is_refused_and_not_stored(
    engine: DialogEngine, db: Database
) -> None:
    from dialogs.messages import Attachment

    chat = Chat(engine)
    await chat.start_as_child()
    huge = Attachment(ContentKind.DOCUMENT, "huge-video", engine.config.max_attachment_bytes + 1)
    await chat._send(attachments=(huge,), kind=ContentKind.DOCUMENT)
    assert "слишком большой" in chat.text and chat.buttons, "told plainly, and the menu again"
    async with db.session() as s:
        user = await Repos(s).users.find("console", "child-1")
        assert user is not None
        assert list(await Repos(s).attachments.for_user(user.id)) == []


async def test_a_long_flood_is_told_to_slow_down_once_not_each_time_a_token_frees(
    db: Database, kb: KnowledgeBase
) -> None:
    """A child who keeps sending past the limit hears "please wait" once for the whole flood,
    though a token frees every second (each lets one message through); after a real pause a
    new flood gets its own word."""
    from dialogs.ratelimit import RateLimiter

    now = [0.0]
    engine = DialogEngine(db, kb=kb)
    engine.limiter = RateLimiter(burst=5, per_second=1.0, clock=lambda: now[0])
    seen: list[str] = []
    for n in range(60):  # three messages a second for twenty seconds
        now[0] = n / 3
        out = await engine.handle(
            Inbound(Channel.CONSOLE, "flooder", "f", text=f"спам {n}", update_id=f"f{n}"))
        seen += [o.text for o in out]
    assert sum("очень быстро" in t for t in seen) == 1, "once for the whole flood"
    now[0] = 60.0  # a pause long enough to refill
    for n in range(60, 70):
        out = await engine.handle(
            Inbound(Channel.CONSOLE, "flooder", "f", text=f"спам {n}", update_id=f"f{n}"))
        seen += [o.text for o in out]
    assert sum("очень быстро" in t for t in seen) == 2, "a new flood, a new word"


async def test_a_flooding_child_who_presses_not_safe_is_heard(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    """The flood limit lets danger through however it is told: a "not safe" button too, not
    only danger words (the press was dropped as flood before)."""
    from dialogs.ratelimit import RateLimiter

    chat = chat_factory()
    await chat.start_as_child()
    for label in ("случилось", "Угрожают", "Telegram", "Да"):
        await chat.press(label)
    chat.engine.limiter = RateLimiter(burst=1, per_second=0.0, clock=lambda: 0.0)
    chat.engine.limiter.check("console:child-1")  # the flood has used every token
    assert chat.engine.limiter.check("console:child-1") == "warn"
    await chat.press("Нет")  # not safe right now
    assert "8-800-2000-122" in chat.text and "124" in chat.text and "112" in chat.text
    [case] = await desk.queue()
    assert case.risk == "critical"
    assert chat.desk and chat.desk[0].critical
