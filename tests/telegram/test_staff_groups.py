"""Several staff groups (TELEGRAM_STAFF_CHAT_ID="A,B"): each case lives in one group, chosen
with its first topic (the emptiest, ties to the first) and stored on the case row; everything of
the case happens there, and nothing done in one group touches a case of another, even where
their thread ids collide (Telegram numbers topics per group: the fake does too, from 50)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.pacing import Pacer
from bot.settings import Settings
from bot.telegram.desk import CLAIM_STALE
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

from .conftest import (
    ANNA,
    BORIS,
    CHILD,
    Harness,
    restart_channel,
    start_channel,
    stop_channel,
)
from .fake_api import STAFF_CHAT, Call, FakeTelegram

GROUP_A = STAFF_CHAT  # -1001234567890, the first group
GROUP_B = -1009876543210
GROUPS = f"{GROUP_A},{GROUP_B}"
CHILD_2, CHILD_3, CHILD_4 = 9002, 9003, 9004
DANGER = "я хочу умереть"
OTHER_GROUP = "ведётся в другой группе консультантов"


@pytest.fixture
async def two(fake: FakeTelegram, tmp_path: Path, db: Database,
              kb: KnowledgeBase) -> AsyncIterator[Harness]:
    """The channel with two staff groups, A (first) and B."""
    fake.add_group(GROUP_B)
    harness, task = await start_channel(fake, tmp_path, db, kb, telegram_staff_chat_id=GROUPS)
    try:
        yield harness
    finally:
        await stop_channel(harness, task)


async def open_case(tg: Harness, child: int) -> tuple[int, int, int, Call]:
    """The child asks for a person: (case id, its group, its thread, its card)."""
    await tg.start_as_child(child)
    await tg.press(child, "Чем я могу помочь", "Поговорить с человеком")
    waiting = await tg.fake.text_to(child, "Я передал твоё обращение")
    case_id = int(waiting.text.split("№")[1].split()[0])
    chat, thread = await topic_of(tg.fake, case_id)
    card = await tg.fake.next_call("sendMessage", chat_id=chat, message_thread_id=thread,
                                   where=lambda c: f"Обращение #{case_id}" in c.text)
    return case_id, chat, thread, card


async def topic_of(fake: FakeTelegram, case_id: int) -> tuple[int, int]:
    """The (group, thread) of the next topic made for the case."""
    topic = await fake.next_call("createForumTopic",
                                 where=lambda c: c["name"].startswith(f"#{case_id} "))
    assert topic.chat_id is not None
    return topic.chat_id, int(topic.result["message_thread_id"])


def seen_in(fake: FakeTelegram, chat: int) -> str:
    """Everything the bot did in a group: each call's method and parameters."""
    return "\n".join(f"{c.method} {c.params}" for c in fake.calls if c.chat_id == chat)


def announcements(fake: FakeTelegram, chat: int) -> list[Call]:
    return [c for c in fake.calls_of("sendMessage", chat_id=chat)
            if c.status == 200 and c.thread is None and "Критическое обращение" in c.text]


async def stored(tg: Harness, case_id: int) -> tuple[Any, ...]:
    case = await tg.case(case_id)
    return case.desk_chat_id, case.desk_thread_id, case.status


# ---------------------------------------------------------------------- the setting
def test_the_setting_takes_one_group_or_a_list_and_refuses_a_malformed_one() -> None:
    def chats(value: object) -> tuple[int, ...]:
        settings = Settings(_env_file=None, telegram_staff_chat_id=value)  # type: ignore[call-arg]
        return settings.telegram_staff_chat_ids

    assert chats(str(GROUP_A)) == (GROUP_A,)
    assert chats(GROUP_A) == (GROUP_A,)
    assert chats(f" {GROUP_A} , {GROUP_B} ") == (GROUP_A, GROUP_B)
    assert chats("") == () and chats(None) == ()
    one = Settings(_env_file=None, telegram_staff_chat_id=GROUPS)  # type: ignore[call-arg]
    assert one.telegram_staff_chat_id == GROUP_A, "the first group, for code that needs one"
    for bad in (f"{GROUP_A},", f"{GROUP_A};{GROUP_B}", "desk", f"{GROUP_A},{GROUP_A}"):
        with pytest.raises(ValidationError, match="telegram_staff_chat_id"):
            chats(bad)


def test_the_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_STAFF_CHAT_ID", GROUPS)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.telegram_staff_chat_ids == (GROUP_A, GROUP_B)
    monkeypatch.setenv("TELEGRAM_STAFF_CHAT_ID", f"{GROUP_A},x")
    with pytest.raises(ValidationError, match="comma-separated list of chat ids"):
        Settings(_env_file=None)  # type: ignore[call-arg]


# ---------------------------------------------------------------------- (a) spread
async def test_cases_spread_across_the_groups_and_stay_in_their_own(two: Harness) -> None:
    tg, fake = two, two.fake
    one, chat_1, thread_1, card_1 = await open_case(tg, CHILD)
    two_, chat_2, thread_2, card_2 = await open_case(tg, CHILD_2)
    three, chat_3, thread_3, _ = await open_case(tg, CHILD_3)
    # Counsellors: the first case in A (a tie goes to the first), the second in the emptier B,
    # the third in A again (one each: a tie). Thread ids are per group: the first two collide.
    assert (chat_1, chat_2, chat_3) == (GROUP_A, GROUP_B, GROUP_A)
    assert thread_1 == thread_2 == 50 and thread_3 == 51
    assert f"Обращение #{one}" in card_1.text and f"Обращение #{two_}" in card_2.text
    assert fake.topics_of(GROUP_B) == {thread_2: f"#{two_} · information · MEDIUM"}
    # Stored: each case's group, next to its topic.
    assert await stored(tg, one) == (GROUP_A, thread_1, "waiting")
    assert await stored(tg, two_) == (GROUP_B, thread_2, "waiting")
    assert await stored(tg, three) == (GROUP_A, thread_3, "waiting")

    # Each child's lines reach their case's topic in its group, and nowhere else.
    await fake.child_says(CHILD, "у меня вопрос про школу")
    await fake.text_to(GROUP_A, "🧒 у меня вопрос про школу", thread=thread_1)
    await fake.child_says(CHILD_2, DANGER)
    told = await fake.text_to(CHILD_2, "8-800-2000-122")  # the child: the numbers at once
    assert "124" in told.text
    flagged = await fake.text_to(GROUP_B, "ОПАСНОСТЬ", thread=thread_2)
    assert DANGER in flagged.text
    # The alert of the now critical case: in B's General topic, pinned there.
    alert = await fake.next_call("sendMessage", chat_id=GROUP_B,
                                 where=lambda c: c.thread is None and "Критическое" in c.text)
    assert f"#{two_} " in alert.text and f"https://t.me/c/9876543210/{thread_2}" in alert.text
    await fake.next_call("pinChatMessage", chat_id=GROUP_B, message_id=alert.message_id)
    assert "школу" not in seen_in(fake, GROUP_B)
    assert DANGER not in seen_in(fake, GROUP_A) and not announcements(fake, GROUP_A)
    assert f"#{two_} " not in seen_in(fake, GROUP_A)
    assert not fake.calls_of("pinChatMessage", chat_id=GROUP_A)
    case = await tg.case(two_)
    assert (case.desk_chat_id, case.risk) == (GROUP_B, "critical")
    assert case.desk_announcement_message_id == alert.message_id


# ---------------------------------------------------------------------- (b) a whole case in B
async def test_a_case_is_taken_and_closed_in_its_group_by_its_buttons(two: Harness) -> None:
    tg, fake = two, two.fake
    first, _, thread_a, _ = await open_case(tg, CHILD)
    case_id, chat, thread, card = await open_case(tg, CHILD_2)
    assert chat == GROUP_B and thread == thread_a, "the same thread id in both groups"
    before = len(seen_in(fake, GROUP_A))

    query = await fake.staff_presses(ANNA, card.button("Взять"), chat=GROUP_B, thread=thread,
                                     message_id=card.message_id)
    assert (await fake.answer_to(query))["text"] == "Обращение ваше."
    await fake.text_to(CHILD_2, "Консультант подключился")
    await fake.text_to(GROUP_B, "anna взял(а)", thread=thread)
    taken = await fake.next_call("editMessageText", chat_id=GROUP_B, message_id=card.message_id)
    assert "ведёт anna" in taken.text

    await fake.staff_says(ANNA, "Привет, я на связи", thread, chat=GROUP_B)
    assert (await fake.text_to(CHILD_2, "я на связи")).text == "Привет, я на связи"

    query = await fake.staff_presses(ANNA, taken.button("Закрыть"), chat=GROUP_B,
                                     thread=thread, message_id=card.message_id)
    await fake.answer_to(query)
    picker = await fake.text_to(GROUP_B, "Чем закончилось", thread=thread)
    await fake.staff_presses(ANNA, picker.button("Дан совет"), chat=GROUP_B, thread=thread,
                             message_id=picker.message_id)
    await fake.text_to(CHILD_2, "Оцени, пожалуйста")  # the child: the close, and a rating
    await fake.next_call("closeForumTopic", chat_id=GROUP_B, message_thread_id=thread)
    await fake.text_to(GROUP_B, "anna закрыл(а) обращение", thread=thread)
    await fake.next_call("editMessageReplyMarkup", chat_id=GROUP_B,
                         message_id=picker.message_id)  # the used picker loses its buttons

    # Stored: the case closed by anna, in B; the case in A with the same thread untouched.
    case = await tg.case(case_id)
    assert (case.desk_chat_id, case.status, case.outcome) == (GROUP_B, "closed", "advice-given")
    assert await stored(tg, first) == (GROUP_A, thread_a, "waiting")
    assert (await tg.case(first)).owner_id is None
    # Group A saw nothing of it, and its child heard nothing.
    assert len(seen_in(fake, GROUP_A)) == before
    assert not fake.calls_of("closeForumTopic", chat_id=GROUP_A)
    assert not [c for c in fake.sent_to(CHILD) if "я на связи" in c.text
                or "Консультант подключился" in c.text]


# ---------------------------------------------------------------------- (c) collisions
async def test_nothing_done_in_one_group_touches_a_case_of_the_other(two: Harness) -> None:
    tg, fake = two, two.fake
    case_a, _, thread, card_a = await open_case(tg, CHILD)
    case_b, chat, thread_b, card_b = await open_case(tg, CHILD_2)
    assert chat == GROUP_B and thread_b == thread

    # Boris presses, in A's topic with B's thread id, the Take button of B's case (a stale or
    # forged button): refused kindly, nothing changes.
    query = await fake.staff_presses(BORIS, card_b.button("Взять"), chat=GROUP_A,
                                     thread=thread, message_id=card_a.message_id)
    answer = await fake.answer_to(query)
    assert OTHER_GROUP in answer["text"] and answer["show_alert"] == "true"
    for data in (f"dk|close|{case_b}", f"dk|up|{case_b}"):
        query = await fake.staff_presses(BORIS, data, chat=GROUP_A, thread=thread)
        assert OTHER_GROUP in (await fake.answer_to(query))["text"]
    assert (await tg.case(case_b)).risk == "medium"
    assert await stored(tg, case_b) == (GROUP_B, thread, "waiting")
    assert "taken" not in await tg.audit(case_b)

    # Anna takes B's case in B; then writes and runs commands in A's topic with that thread id:
    # they are about A's case (not hers), never about hers.
    await fake.staff_presses(ANNA, card_b.button("Взять"), chat=GROUP_B, thread=thread,
                             message_id=card_b.message_id)
    await fake.text_to(GROUP_B, "anna взял(а)", thread=thread)
    await fake.text_to(CHILD_2, "Консультант подключился")
    await fake.staff_says(ANNA, "Это для ребёнка из группы B", thread, chat=GROUP_A)
    await fake.text_to(GROUP_A, "сначала возьмите", thread=thread)
    await fake.staff_says(ANNA, "/close advice-given", thread, chat=GROUP_A)
    await fake.text_to(GROUP_A, "сначала возьмите", thread=thread)
    await fake.staff_says(ANNA, "/note заметка в теме группы A", thread, chat=GROUP_A)
    await fake.text_to(GROUP_A, "Заметка сохранена", thread=thread)

    # The children: B's child heard only that a counsellor joined; A's child nothing.
    assert not [c for c in fake.sent_to(CHILD_2) if "группы B" in c.text]
    assert not [c for c in fake.sent_to(CHILD) if "группы B" in c.text
                or "подключился" in c.text]
    # Stored: B's case held by anna and open, with no note; the note went to A's case.
    case = await tg.case(case_b)
    assert (case.desk_chat_id, case.status, case.outcome) == (GROUP_B, "active", None)
    assert "note" not in await tg.audit(case_b) and "note" in await tg.audit(case_a)
    assert await stored(tg, case_a) == (GROUP_A, thread, "waiting")
    # Group B saw none of it.
    assert "группы" not in seen_in(fake, GROUP_B)


# ---------------------------------------------------------------------- (d) critical
async def test_a_critical_case_is_announced_and_pinned_in_its_own_group(two: Harness) -> None:
    tg, fake = two, two.fake
    first, _, _, _ = await open_case(tg, CHILD)
    await tg.start_as_child(CHILD_2)
    await fake.text_to(CHILD_2, "Чем я могу помочь")
    await fake.child_says(CHILD_2, DANGER)
    told = await fake.text_to(CHILD_2, "8-800-2000-122")
    assert "124" in told.text
    announce = await fake.next_call(
        "sendMessage", chat_id=GROUP_B,
        where=lambda c: c.thread is None and "Критическое обращение" in c.text)
    case_id = int(announce.text.split("#")[1].split()[0])
    chat, thread = await topic_of(fake, case_id)
    assert chat == GROUP_B
    assert f"https://t.me/c/9876543210/{thread}" in announce.text
    await fake.next_call("pinChatMessage", chat_id=GROUP_B, message_id=announce.message_id)
    case = await tg.case(case_id)
    assert (case.desk_chat_id, case.risk) == (GROUP_B, "critical")
    assert case.desk_announcement_message_id == announce.message_id
    for _ in range(100):  # the pin is saved just after Telegram answered it
        if (await tg.case(case_id)).desk_announcement_pinned_at is not None:
            break
        await asyncio.sleep(0.02)
    assert (await tg.case(case_id)).desk_announcement_pinned_at is not None
    # Nothing of it in A: no announcement, no pin.
    assert not announcements(fake, GROUP_A) and not fake.calls_of("pinChatMessage",
                                                                   chat_id=GROUP_A)

    # Taken from B's General: unpinned and marked taken there.
    query = await fake.staff_presses(ANNA, announce.button("Взять"), chat=GROUP_B,
                                     message_id=announce.message_id)
    assert (await fake.answer_to(query))["text"] == "Обращение ваше."
    await fake.text_to(CHILD_2, "Консультант подключился")
    await fake.next_call("unpinChatMessage", chat_id=GROUP_B, message_id=announce.message_id)
    edited = await fake.next_call("editMessageText", chat_id=GROUP_B,
                                  message_id=announce.message_id)
    assert "взял(а) anna" in edited.text
    assert announce.message_id not in fake.pinned
    case = await tg.case(case_id)
    assert (case.status, case.desk_announcement_message_id) == ("active", None)
    assert not fake.calls_of("unpinChatMessage", chat_id=GROUP_A)
    assert f"#{case_id} " not in seen_in(fake, GROUP_A)
    assert await stored(tg, first) == (GROUP_A, 50, "waiting")


# ---------------------------------------------------------------------- (e) a restart
async def test_after_a_restart_cases_stay_in_their_stored_groups(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    fake.add_group(GROUP_B)
    tg, task = await start_channel(fake, tmp_path, db, kb, telegram_staff_chat_id=GROUPS)
    try:
        one, chat_1, thread_1, _ = await open_case(tg, CHILD)
        two_, chat_2, thread_2, _ = await open_case(tg, CHILD_2)
        three, chat_3, _, _ = await open_case(tg, CHILD_3)
        assert (chat_1, chat_2, chat_3) == (GROUP_A, GROUP_B, GROUP_A)
    finally:
        await stop_channel(tg, task)

    # A new process on the same database: nothing in memory, Telegram's confirmed updates gone.
    tg, task, fresh = await restart_channel(fake, tmp_path, db, kb,
                                           telegram_staff_chat_id=GROUPS)
    try:
        await fake.child_says(CHILD_2, "я всё ещё тут")
        line = await fake.text_to(GROUP_B, "🧒 я всё ещё тут", thread=thread_2)
        assert line.chat_id == GROUP_B
        await fake.child_says(CHILD, "и я тут")
        await fake.text_to(GROUP_A, "🧒 и я тут", thread=thread_1)
        assert "я всё ещё тут" not in seen_in(fake, GROUP_A)
        assert "и я тут" not in seen_in(fake, GROUP_B)
        # The loads are read from the database: A holds two open cases, B one.
        four, chat_4, _, _ = await open_case(tg, CHILD_4)
        assert chat_4 == GROUP_B
        assert [await stored(tg, n) for n in (one, two_, three)] == [
            (GROUP_A, thread_1, "waiting"), (GROUP_B, thread_2, "waiting"),
            (GROUP_A, 51, "waiting")]
        assert (await tg.case(four)).desk_chat_id == GROUP_B
        assert len(fake.calls_of("createForumTopic", chat_id=GROUP_B)) == 2
    finally:
        await stop_channel(tg, task)
        await fresh.dispose()


# ---------------------------------------------------------------------- each group's budget
class CountingPacer(Pacer):
    """Telegram's pace lifted (as in the other tests), counting the waits per staff group."""

    def __init__(self) -> None:
        super().__init__(global_rate=10_000, chat_rate=10_000)
        self.groups: Counter[int] = Counter()

    async def wait(self, chat_id: str, *, urgent: bool = False) -> float:
        if chat_id.startswith("-"):
            self.groups[int(chat_id)] += 1
        return await super().wait(chat_id, urgent=urgent)


async def test_each_groups_posts_take_from_its_own_budget(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    fake.add_group(GROUP_B)
    pacer = CountingPacer()
    tg, task = await start_channel(fake, tmp_path, db, kb, pacer=pacer,
                                   telegram_staff_chat_id=GROUPS)
    try:
        _, chat_1, thread_1, _ = await open_case(tg, CHILD)
        _, chat_2, thread_2, _ = await open_case(tg, CHILD_2)
        await fake.child_says(CHILD_2, "строка для группы B")
        await fake.text_to(GROUP_B, "строка для группы B", thread=thread_2)
        await fake.child_says(CHILD, "строка для группы A")
        await fake.text_to(GROUP_A, "строка для группы A", thread=thread_1)
    finally:
        await stop_channel(tg, task)
    assert (chat_1, chat_2) == (GROUP_A, GROUP_B)

    def posts(chat: int) -> int:  # a new topic, a message or a file in the group
        return len([c for c in fake.calls if c.chat_id == chat and c.status == 200 and c.method
                    in ("createForumTopic", "sendMessage", "sendPhoto", "sendDocument")])

    assert pacer.groups == {GROUP_A: posts(GROUP_A), GROUP_B: posts(GROUP_B)}
    assert posts(GROUP_B) >= 3  # the topic, the card, the child's line


# ---------------------------------------------------------------------- older cases, accidents
async def test_a_case_made_before_groups_were_kept_lives_in_the_first_group(
    two: Harness,
) -> None:
    tg, fake = two, two.fake
    old, _, thread, _ = await open_case(tg, CHILD)
    other, chat, thread_b, _ = await open_case(tg, CHILD_2)
    assert (chat, thread_b) == (GROUP_B, thread)
    async with tg.app.db.session() as session:  # as the migration leaves a case of before
        case = await Repos(session).cases.get(old)
        assert case is not None
        case.desk_chat_id = None
    await fake.child_says(CHILD, "я здесь")
    await fake.text_to(GROUP_A, "🧒 я здесь", thread=thread)
    # Found by its topic in the first group only: B's topic with the same id is B's case.
    await fake.staff_says(ANNA, "/note в теме группы A", thread, chat=GROUP_A)
    await fake.text_to(GROUP_A, "Заметка сохранена", thread=thread)
    await fake.staff_says(ANNA, "/note в теме группы B", thread, chat=GROUP_B)
    await fake.text_to(GROUP_B, "Заметка сохранена", thread=thread)
    async with tg.app.db.session() as session:
        notes = {n: [e.detail for e in await Repos(session).audit.for_case(n)
                     if e.action == "note"] for n in (old, other)}
    assert notes == {old: ["в теме группы A"], other: ["в теме группы B"]}
    assert "я здесь" not in seen_in(fake, GROUP_B)
    assert await stored(tg, old) == (None, thread, "waiting")


async def test_a_deleted_topic_is_made_again_in_the_cases_group(two: Harness) -> None:
    tg, fake = two, two.fake
    await open_case(tg, CHILD)
    case_id, chat, thread, _ = await open_case(tg, CHILD_2)
    assert chat == GROUP_B
    fake.delete_topic(thread, GROUP_B)
    await fake.child_says(CHILD_2, "вы меня видите?")
    again, new_thread = await topic_of(fake, case_id)
    assert again == GROUP_B and new_thread != thread
    card = await fake.next_call("sendMessage", chat_id=GROUP_B, message_thread_id=new_thread)
    assert f"Обращение #{case_id}" in card.text
    await fake.text_to(GROUP_B, "🧒 вы меня видите?", thread=new_thread)
    assert await stored(tg, case_id) == (GROUP_B, new_thread, "waiting")
    assert "видите" not in seen_in(fake, GROUP_A)


async def test_the_queue_lists_the_groups_own_cases(two: Harness) -> None:
    tg, fake = two, two.fake
    case_a, _, _, _ = await open_case(tg, CHILD)
    case_b, _, _, _ = await open_case(tg, CHILD_2)
    await fake.staff_says(BORIS, "/queue", chat=GROUP_B)
    listing = await fake.text_to(GROUP_B, "самые срочные первыми")
    assert f"#{case_b} " in listing.text and f"#{case_a} " not in listing.text
    await fake.staff_says(BORIS, "/queue", chat=GROUP_A)
    listing = await fake.text_to(GROUP_A, "самые срочные первыми")
    assert f"#{case_a} " in listing.text and f"#{case_b} " not in listing.text


# ---------------------------------------------------------------------- start-up, the claim
async def test_the_start_up_check_names_each_group_and_what_to_fix(
    two: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    tg, fake = two, two.fake
    assert await tg.channels.start_up() == []
    fake.non_forums.add(GROUP_B)
    # A case left in a group no longer listed (here: one that was removed from the setting).
    case_id, _, _, _ = await open_case(tg, CHILD)
    async with tg.app.db.session() as session:
        case = await Repos(session).cases.get(case_id)
        assert case is not None
        case.desk_chat_id = -1005555555555
    problems = await tg.channels.start_up()
    assert problems == [
        f"TELEGRAM_STAFF_CHAT_ID group 2 of 2 ({GROUP_B}) is not a forum: in the group's "
        "settings turn on \"Topics\" (this also makes it a supergroup; its id then starts with "
        "-100 and may change).",
        "1 open case(s) live in the staff group -1005555555555, which is no longer in "
        "TELEGRAM_STAFF_CHAT_ID: add it back (at the end of the list) so that counsellors can "
        "work on them there, or handle them in the web console.",
    ]
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert all(any(p in m for m in logged) for p in problems)
    assert str(GROUP_A) not in " ".join(problems)


async def test_the_group_is_chosen_once_under_the_topic_claim(db: Database) -> None:
    """Two workers making one case's topic: the first claim stores its group; a worker taking
    the claim over (stale) with another group's choice gets nothing, with the same group gets
    it. So a case never has topics in two groups."""
    async with db.session() as session:
        case = await Repos(session).cases.open(
            user_id=None, channel="telegram", category="self-harm", risk="high",
            risk_rank=1, answers={}, signals={})
        case_id = case.id
    now = utcnow()
    later = now + CLAIM_STALE + timedelta(seconds=1)
    async with db.session() as session:
        desk = Repos(session).desk
        assert await desk.claim_topic(case_id, None, now, now - CLAIM_STALE, chat=GROUP_B)
        assert not await desk.claim_topic(case_id, None, now, now - CLAIM_STALE, chat=GROUP_B)
        assert not await desk.claim_topic(case_id, None, later, later - CLAIM_STALE,
                                          chat=GROUP_A)
        assert await desk.claim_topic(case_id, None, later, later - CLAIM_STALE, chat=GROUP_B)
        assert await desk.save_topic(case_id, later, 50)
        assert await desk.open_cases_per_group() == {GROUP_B: 1}
    async with db.session() as session:
        case = await Repos(session).cases.get(case_id)
        assert case is not None
        assert (case.desk_chat_id, case.desk_thread_id) == (GROUP_B, 50)
        found = await Repos(session).cases.by_desk_topic(GROUP_A, 50, first=True)
        assert found is None
        found = await Repos(session).cases.by_desk_topic(GROUP_B, 50, first=False)
        assert found is not None and found.id == case_id
