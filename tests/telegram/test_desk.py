"""The counsellors' side: the staff forum, its buttons and commands, and its accidents."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from bot.evidence import read_evidence
from dialogs.messages import Channel, Inbound, Outbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor
from storage.repositories import Repos

from .conftest import (
    ANNA,
    BORIS,
    CHILD,
    STRANGER,
    Harness,
    start_channel,
    stop_channel,
)
from .fake_api import STAFF_CHAT, FakeTelegram

SVETA = 503  # a supervisor, registered by the tests that need one


async def test_someone_who_is_not_a_counsellor_cannot_take_a_case(tg: Harness) -> None:
    case_id, thread, card = await tg.open_case()
    query = await tg.fake.staff_presses(STRANGER, card.button("Взять"), thread=thread,
                                        message_id=card.message_id)
    answer = await tg.fake.answer_to(query)
    assert answer["text"] == "Это могут делать только зарегистрированные консультанты."
    assert answer["show_alert"] == "true"
    # Commands and messages in the topic are refused too, and nothing reaches the child.
    await tg.fake.staff_says(STRANGER, "/close advice-given", thread)
    await tg.fake.text_to(STAFF_CHAT, "только зарегистрированные", thread=thread)
    await tg.fake.staff_says(STRANGER, "привет, это я", thread)
    await tg.fake.text_to(STAFF_CHAT, "только зарегистрированные", thread=thread)
    case = await tg.case(case_id)
    assert (case.status, case.owner_id) == ("waiting", None)
    assert not [c for c in tg.fake.sent_to(CHILD) if "привет, это я" in c.text]
    assert "taken" not in await tg.audit(case_id)


async def test_two_counsellors_pressing_take_at_once_give_one_owner(tg: Harness) -> None:
    case_id, thread, card = await tg.open_case()
    data = card.button("Взять")
    presses = [tg.fake.press(who, data, chat_id=STAFF_CHAT, thread=thread,
                             message_id=card.message_id) for who in (ANNA, BORIS)]
    await tg.fake.push(*presses)
    answers = [await tg.fake.answer_to(p["callback_query"]["id"]) for p in presses]
    await tg.fake.text_to(STAFF_CHAT, "взял(а) обращение", thread=thread)
    case = await tg.case(case_id)
    async with tg.app.db.session() as session:
        owner = await Repos(session).counsellors.get(case.owner_id or 0)
    assert case.status == "active" and owner is not None
    assert sorted(a["text"] for a in answers) == [
        "Обращение ваше.", f"Обращение уже взял(а) {owner.name}."]
    assert (await tg.audit(case_id)).count("taken") == 1
    await tg.fake.text_to(CHILD, "Консультант подключился")
    assert len([c for c in tg.fake.sent_to(CHILD) if "подключился" in c.text]) == 1


async def test_a_child_who_blocked_the_bot_is_unreachable_and_the_counsellor_told(
    tg: Harness,
) -> None:
    case_id, thread, _ = await tg.open_case()
    await tg.take(case_id, thread)
    tg.fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user",
                 match=lambda p: p.get("chat_id") == str(CHILD))
    await tg.fake.staff_says(ANNA, "Ты здесь?", thread)
    await tg.fake.text_to(STAFF_CHAT, "заблокировал бота", thread=thread)
    user = await tg.child_user()
    assert user is not None and user.unreachable
    # Writing again makes them reachable: the engine clears the flag.
    await tg.fake.child_says(CHILD, "я тут")
    await tg.fake.text_to(STAFF_CHAT, "🧒 я тут", thread=thread)
    user = await tg.child_user()
    assert user is not None and not user.unreachable


async def test_a_deleted_topic_is_created_again_with_its_card(tg: Harness) -> None:
    case_id, thread, _ = await tg.open_case()
    tg.fake.delete_topic(thread)
    await tg.fake.child_says(CHILD, "я ещё здесь")
    topic = await tg.fake.next_call("createForumTopic",
                                    where=lambda c: c["name"].startswith(f"#{case_id} "))
    new_thread = next(t for t, name in tg.fake.topics.items() if name == topic["name"])
    assert new_thread != thread
    card = await tg.fake.next_call("sendMessage", chat_id=STAFF_CHAT,
                                   message_thread_id=new_thread)
    assert f"Обращение #{case_id}" in card.text and card.buttons
    await tg.fake.text_to(STAFF_CHAT, "🧒 я ещё здесь", thread=new_thread)
    assert (await tg.case(case_id)).desk_thread_id == new_thread
    assert (await tg.audit(case_id)).count("card_posted") >= 2


async def test_service_messages_are_not_relayed_and_edits_are(tg: Harness) -> None:
    case_id, thread, _ = await tg.open_case()
    await tg.take(case_id, thread)
    await tg.fake.push(tg.fake.staff_message(
        ANNA, thread, forum_topic_edited={"name": "renamed"}))
    await tg.fake.push(tg.fake.staff_message(
        ANNA, thread, pinned_message={"message_id": 1, "date": 0,
                                      "chat": {"id": STAFF_CHAT, "type": "supergroup"}}))
    desk_id = await tg.fake.staff_says(ANNA, "Првиет, я на связи", thread)
    first = await tg.fake.text_to(CHILD, "Првиет")
    await tg.fake.push(tg.fake.staff_message(ANNA, thread, edited=True, message_id=desk_id,
                                             text="Привет, я на связи"))
    edit = await tg.fake.next_call("editMessageText", chat_id=CHILD)
    assert edit["text"] == "Привет, я на связи"
    assert int(edit["message_id"]) == first.message_id
    to_child = [c.text for c in tg.fake.sent_to(CHILD)]
    assert "renamed" not in " ".join(to_child)
    assert [t for t in to_child if "на связи" in t] == ["Првиет, я на связи"]


async def test_a_counsellors_files_reach_a_telegram_child_by_file_id(tg: Harness) -> None:
    case_id, thread, _ = await tg.open_case()
    await tg.take(case_id, thread)
    doc, _ = tg.fake.add_file(b"%PDF memo")
    await tg.fake.push(tg.fake.staff_message(
        ANNA, thread, caption="Памятка: как сохранить переписку",
        document={"file_id": doc, "file_unique_id": "d", "file_name": "memo.pdf",
                  "mime_type": "application/pdf", "file_size": 9}))
    sent = await tg.fake.next_call("sendDocument", chat_id=CHILD)
    assert sent["document"] == doc
    assert sent["caption"] == "Памятка: как сохранить переписку"
    assert "forward" not in " ".join(sent.params)


async def test_a_counsellor_must_take_a_case_before_writing_to_the_child(tg: Harness) -> None:
    _, thread, _ = await tg.open_case()
    await tg.fake.staff_says(ANNA, "Привет!", thread)
    await tg.fake.text_to(STAFF_CHAT, "сначала возьмите", thread=thread)
    await tg.fake.staff_says(ANNA, "стикер", thread)  # a second try, still refused
    await tg.fake.text_to(STAFF_CHAT, "сначала возьмите", thread=thread)
    assert not [c for c in tg.fake.sent_to(CHILD) if c.text == "Привет!"]


async def test_notes_risk_release_and_the_queue(tg: Harness) -> None:
    case_id, thread, card = await tg.open_case()
    assert (await tg.case(case_id)).risk == "medium"
    # Raising needs no note; the topic's name follows.
    query = await tg.fake.staff_presses(ANNA, card.button("Риск ↑"), thread=thread,
                                        message_id=card.message_id)
    await tg.fake.answer_to(query)
    await tg.fake.text_to(STAFF_CHAT, "Риск: СРЕДНИЙ → ВЫСОКИЙ (anna)", thread=thread)
    assert tg.fake.topics[thread].endswith("· HIGH")
    # Lowering is for the holder or a supervisor (issue 17), and needs a note.
    query = await tg.fake.staff_presses(ANNA, card.button("Риск ↓"), thread=thread)
    assert "/risk" in (await tg.fake.answer_to(query))["text"]
    await tg.fake.staff_says(ANNA, "/risk low ребёнок в безопасности", thread)
    await tg.fake.text_to(STAFF_CHAT, "сначала возьмите", thread=thread)
    assert (await tg.case(case_id)).risk == "high"
    await tg.take(case_id, thread)
    await tg.fake.staff_says(ANNA, "/risk low", thread)
    await tg.fake.text_to(STAFF_CHAT, "Чтобы понизить риск, нужна заметка", thread=thread)
    await tg.fake.staff_says(ANNA, "/risk low ребёнок в безопасности, фото удалены", thread)
    await tg.fake.text_to(STAFF_CHAT, "ВЫСОКИЙ → НИЗКИЙ", thread=thread)
    assert (await tg.case(case_id)).risk == "low"
    # A note is never sent to the child.
    await tg.fake.staff_says(ANNA, "/note звонила мама, всё в порядке", thread)
    await tg.fake.text_to(STAFF_CHAT, "Заметка сохранена", thread=thread)
    assert not [c for c in tg.fake.sent_to(CHILD) if "мама" in c.text]
    # The queue lists waiting cases; release puts a taken case back.
    await tg.fake.staff_says(ANNA, "/queue")
    await tg.fake.text_to(STAFF_CHAT, "Очередь пуста")
    await tg.fake.staff_says(ANNA, "/release", thread)
    await tg.fake.text_to(CHILD, "передал разговор коллеге")
    await tg.fake.text_to(STAFF_CHAT, "вернул(а) обращение в очередь", thread=thread)
    await tg.fake.staff_says(BORIS, "/queue")
    listing = await tg.fake.text_to(STAFF_CHAT, "самые срочные первыми")
    assert f"#{case_id} · information · НИЗКИЙ" in listing.text
    query = await tg.fake.staff_presses(BORIS, listing.button(f"#{case_id}"))
    assert (await tg.fake.answer_to(query))["text"] == "Обращение ваше."
    await tg.fake.text_to(STAFF_CHAT, "boris взял(а)", thread=thread)
    trail = await tg.audit(case_id)
    assert trail.count("risk_changed") == 2 and "note" in trail and "released" in trail


async def test_a_critical_case_is_pinned_in_general_until_taken(tg: Harness) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_says(CHILD, "я хочу умереть")
    await tg.fake.text_to(CHILD, "Спасибо, что рассказываешь")
    announce = await tg.fake.next_call(
        "sendMessage", chat_id=STAFF_CHAT,
        where=lambda c: c.thread is None and "Критическое обращение" in c.text)
    assert "https://t.me/c/1234567890/" in announce.text
    await tg.fake.next_call("pinChatMessage", message_id=announce.message_id)
    assert announce.message_id in tg.fake.pinned
    query = await tg.fake.staff_presses(ANNA, announce.button("Взять"),
                                        message_id=announce.message_id)
    assert (await tg.fake.answer_to(query))["text"] == "Обращение ваше."
    await tg.fake.next_call("unpinChatMessage", message_id=announce.message_id)
    assert announce.message_id not in tg.fake.pinned
    edited = await tg.fake.next_call("editMessageText", message_id=announce.message_id)
    assert "взял(а) anna" in edited.text and not edited.buttons


async def test_files_over_the_evidence_limit_are_refused_kindly_and_not_stored(
    fake: FakeTelegram, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    tg, task = await start_channel(fake, tmp_path, db, kb, evidence_max_bytes=1000)
    try:
        case_id, _, _ = await tg.open_case()
        big = await fake.child_sends_photo(CHILD, b"x" * 5000)
        await fake.text_to(CHILD, "слишком большой")
        small = await fake.child_sends_photo(CHILD, b"y" * 500)
        await fake.next_call("sendPhoto", chat_id=STAFF_CHAT, photo=small)
        async with tg.app.db.session() as session:
            rows = {r.file_ref: r for r in await Repos(session).attachments.for_case(case_id)}
        assert big not in rows, "an oversized file is not stored, not even its reference"
        kept = Path(rows[small].stored_path or "")
        assert await asyncio.to_thread(read_evidence, kept) == b"y" * 500
        assert not fake.calls_of("getFile", file_id=big)
        assert not fake.calls_of("sendPhoto", photo=big)
    finally:
        await stop_channel(tg, task)


async def test_a_vk_child_can_be_helped_from_the_telegram_desk(tg: Harness) -> None:
    class VkOutbox:
        """The "vk" channel as a test double: it keeps what it is given."""

        def __init__(self) -> None:
            self.sent: list[Outbound] = []
            self.changed = asyncio.Condition()

        async def send(self, message: Outbound) -> None:
            async with self.changed:
                self.sent.append(message)
                self.changed.notify_all()

        async def wait_for(self, count: int) -> list[Outbound]:
            """The first `count` counsellor messages to the child (waits for them)."""
            def relayed() -> list[Outbound]:
                return [m for m in self.sent if m.to.chat_id == "vk-77" and m.case_id]

            async with asyncio.timeout(5), self.changed:
                await self.changed.wait_for(lambda: len(relayed()) >= count)
            return relayed()

    vk = VkOutbox()
    tg.app.delivery.register("vk", vk)

    async def vk_child(**kwargs: object) -> None:
        await tg.app.handle(Inbound(channel=Channel.VK, user_id="vk-77", chat_id="vk-77",
                                    locale_hint="ru", update_id=uuid.uuid4().hex,
                                    **kwargs))  # type: ignore[arg-type]

    await vk_child(text="привет")
    await vk_child(payload="st|role|child")
    await vk_child(payload="st|menu|person")
    topic = await tg.fake.next_call("createForumTopic")
    thread = next(t for t, name in tg.fake.topics.items() if name == topic["name"])
    card = await tg.fake.next_call("sendMessage", chat_id=STAFF_CHAT, message_thread_id=thread)
    assert "Канал: vk" in card.text and "vk-77" not in card.text
    await tg.fake.staff_presses(ANNA, card.button("Взять"), thread=thread,
                                message_id=card.message_id)
    await tg.fake.text_to(STAFF_CHAT, "anna взял(а)", thread=thread)
    assert any("Консультант подключился" in m.text for m in vk.sent)
    await tg.fake.staff_says(ANNA, "Привет из Telegram", thread)
    photo, _ = tg.fake.add_file(b"counsellor's picture")
    await tg.fake.push(tg.fake.staff_message(
        ANNA, thread, caption="памятка",
        photo=[{"file_id": photo, "file_unique_id": "p", "width": 1, "height": 1}]))
    await tg.fake.staff_says(ANNA, "/note проверка доставки", thread)
    await tg.fake.text_to(STAFF_CHAT, "Заметка сохранена", thread=thread)
    relayed = await vk.wait_for(2)
    assert [m.text for m in relayed] == ["Привет из Telegram", "памятка"]
    assert relayed[1].attachments[0].file_ref == photo
    assert not tg.fake.sent_to(CHILD)


async def test_forget_erases_the_kept_evidence_and_tells_the_counsellor(tg: Harness) -> None:
    case_id, thread, _ = await tg.open_case()
    await tg.fake.child_sends_photo(CHILD, b"private screenshot")
    await tg.fake.next_call("sendPhoto", chat_id=STAFF_CHAT, message_thread_id=thread)
    folder = tg.channels.evidence.store.case_dir(case_id)

    def kept() -> list[Path]:
        return sorted(folder.glob("*")) if folder.exists() else []

    assert len(await asyncio.to_thread(kept)) == 1
    await tg.fake.child_says(CHILD, "/forget")
    await tg.press(CHILD, "Стереть всё", "Да, стереть")
    # The child: told it is done. The counsellors: told in General, with the case number only;
    # the topic with the child's words, photo and card is deleted, and nothing makes it again.
    await tg.fake.text_to(CHILD, "я всё стёр")
    told = await tg.fake.text_to(STAFF_CHAT, "стёр свои данные")
    assert told.thread is None and f"#{case_id}" in told.text and "удалена" in told.text
    await tg.fake.next_call("deleteForumTopic", chat_id=STAFF_CHAT, message_thread_id=thread)
    assert thread not in tg.fake.topics
    # Stored: the case closed as erased; the evidence files gone.
    case = await tg.case(case_id)
    assert (case.status, case.outcome) == ("closed", "child-erased")
    assert await asyncio.to_thread(kept) == []
    await tg.app.drain()
    assert len(tg.fake.calls_of("createForumTopic")) == 1


async def test_forget_also_deletes_the_topics_of_closed_cases(tg: Harness) -> None:
    """An earlier case, closed and rated, still has the child's words in its topic: /forget
    deletes that topic too."""
    from dialogs.desk.commands import Close, Take

    case_id, thread, _ = await tg.open_case()
    await tg.fake.child_says(CHILD, "меня дразнят в чате класса")
    await tg.fake.text_to(STAFF_CHAT, "дразнят", thread=thread)
    async with tg.app.db.session() as session:
        anna = await Repos(session).counsellors.by_identity("telegram", str(ANNA))
    assert anna is not None
    for command in (Take(case_id), Close(case_id, "advice-given")):
        result = await tg.app.desk.execute(anna, command)
        assert result.ok
        await tg.app.delivery.deliver(result.outbound)
    await tg.fake.next_call("closeForumTopic", message_thread_id=thread)
    await tg.fake.child_says(CHILD, "/forget")
    await tg.press(CHILD, "Стереть всё", "Да, стереть")
    await tg.fake.text_to(CHILD, "я всё стёр")
    await tg.fake.next_call("deleteForumTopic", chat_id=STAFF_CHAT, message_thread_id=thread)
    told = await tg.fake.text_to(STAFF_CHAT, "стёр свои данные")
    assert told.thread is None and f"#{case_id}" in told.text
    assert (await tg.case(case_id)).outcome == "advice-given"  # its outcome is kept (a count)


async def test_canned_replies_transfer_and_block_from_the_staff_group(tg: Harness) -> None:
    case_id, thread, _ = await tg.open_case()
    await tg.take(case_id, thread)
    # A canned reply goes to the child in their language, without the counsellor's name.
    await tg.fake.staff_says(ANNA, "/reply", thread)
    usage = await tg.fake.text_to(STAFF_CHAT, "/reply", thread=thread)
    key = usage.text.rsplit(":", 1)[1].split(",")[0].strip()
    await tg.fake.staff_says(ANNA, f"/reply {key}", thread)
    await tg.fake.text_to(STAFF_CHAT, "Отправлено ребёнку", thread=thread)
    assert tg.fake.sent_to(CHILD)[-1].text and "anna" not in tg.fake.sent_to(CHILD)[-1].text
    await tg.fake.staff_says(ANNA, "/reply no-such-key", thread)
    await tg.fake.text_to(STAFF_CHAT, "Нет такого готового ответа", thread=thread)
    # Handing the case to a colleague.
    await tg.fake.staff_says(ANNA, "/transfer @boris ребёнок просил мужчину-консультанта", thread)
    await tg.fake.text_to(STAFF_CHAT, "Передано: boris", thread=thread)
    view = await tg.app.desk.view(
        await tg.app.desk.identify("telegram", str(BORIS)) or _missing(), case_id
    )
    assert not isinstance(view, str) and view.summary.owner == "boris"
    # Blocking a user who abuses the line closes the case; anyone but staff is refused, and
    # since issue 17 so is a counsellor, even the holder: blocking is a supervisor's action.
    await tg.fake.staff_says(9999, "/block 7d troll", thread)
    await tg.fake.text_to(STAFF_CHAT, "только зарегистрированные консультанты", thread=thread)
    await tg.fake.staff_says(BORIS, "/block 7d оскорбления консультантов", thread)
    await tg.fake.text_to(STAFF_CHAT, "только супервизор", thread=thread)
    await tg.app.desk.add_counsellor("sveta", "telegram", str(SVETA), role="supervisor")
    await tg.fake.staff_says(SVETA, "/block 7d оскорбления консультантов", thread)
    await tg.fake.text_to(STAFF_CHAT, "Пользователь заблокирован", thread=thread)
    assert (await tg.case(case_id)).status == "closed"


async def test_a_block_where_the_child_may_be_the_victim_asks_for_a_confirm_button(
    tg: Harness,
) -> None:
    case_id, thread, _ = await tg.open_case()
    async with tg.app.db.session() as session:
        case = await Repos(session).cases.get(case_id)
        assert case is not None
        case.category = "grooming"
    await tg.app.desk.add_counsellor("sveta", "telegram", str(SVETA), role="supervisor")
    await tg.fake.staff_says(SVETA, "/block 1d пишет гадости", thread)
    ask = await tg.fake.text_to(STAFF_CHAT, "может быть жертвой", thread=thread)
    assert (await tg.case(case_id)).status == "waiting", "nothing happened yet"
    query = await tg.fake.staff_presses(BORIS, ask.button("Да, заблокировать"), thread=thread)
    assert "уже не действует" in (await tg.fake.answer_to(query))["text"]
    assert (await tg.case(case_id)).status == "waiting", "boris never asked: nothing to confirm"
    query = await tg.fake.staff_presses(SVETA, ask.button("Да, заблокировать"), thread=thread)
    assert "Пользователь заблокирован" in (await tg.fake.answer_to(query))["text"]
    notice = await tg.fake.text_to(STAFF_CHAT, "заблокирован до", thread=thread)
    assert notice.text.rstrip(".").endswith("MSK"), "the line's time, labelled"
    case = await tg.case(case_id)
    assert (case.status, case.outcome) == ("closed", "abusive-contact")


def _missing() -> Counsellor:
    raise AssertionError("boris is registered")


async def test_danger_in_a_live_chat_is_flagged_in_the_topic(tg: Harness) -> None:
    case_id, thread, _card = await tg.open_case()
    await tg.take(case_id, thread)
    await tg.fake.child_says(CHILD, "я больше не хочу жить")
    # The child: the numbers, and that their own counsellor sees it (no "calling" cut-in).
    told = await tg.fake.text_to(CHILD, "8-800-2000-122")
    assert "124" in told.text and "Твой консультант видит это сообщение" in told.text
    assert "Я передал" not in told.text
    # The counsellor: the line flagged in the case's topic, and the risk raised.
    flagged = await tg.fake.text_to(STAFF_CHAT, "ОПАСНОСТЬ", thread=thread)
    assert "не хочу жить" in flagged.text
    assert (await tg.case(case_id)).risk == "critical"


async def test_what_a_counsellor_does_on_another_desk_shows_in_the_staff_group(
    tg: Harness,
) -> None:
    """Take and close done on the web console (or the terminal) are published once by the
    desk core, and the staff group renders them like its own: the card, the topic's news, the
    pinned alert."""
    from dialogs.desk.commands import Close, Take

    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_says(CHILD, "я хочу умереть")
    told = await tg.fake.text_to(CHILD, "8-800-2000-122")
    assert "124" in told.text
    announce = await tg.fake.next_call(
        "sendMessage", chat_id=STAFF_CHAT,
        where=lambda c: c.thread is None and "Критическое обращение" in c.text)
    await tg.fake.next_call("pinChatMessage", message_id=announce.message_id)
    async with tg.app.db.session() as session:
        [case] = await Repos(session).desk.open_cases()
        anna = await Repos(session).counsellors.by_identity("telegram", str(ANNA))
    assert anna is not None
    case_id, thread = case.id, case.desk_thread_id
    assert thread is not None

    # Anna takes it on the web console: the alert is unpinned and says who took it; the card
    # and the topic say so too; the child is told.
    taken = await tg.app.desk.execute(anna, Take(case_id))
    await tg.app.delivery.deliver(taken.outbound)
    await tg.fake.next_call("unpinChatMessage", message_id=announce.message_id)
    edited = await tg.fake.next_call("editMessageText", message_id=announce.message_id)
    assert "взял(а) anna" in edited.text and not edited.buttons
    await tg.fake.text_to(STAFF_CHAT, "anna взял(а) обращение", thread=thread)
    await tg.fake.text_to(CHILD, "Консультант подключился")
    assert (await tg.case(case_id)).status == "active"

    # She closes it there: the topic gets the outcome and is closed; nothing is re-announced.
    closed = await tg.app.desk.execute(anna, Close(case_id, "advice-given"))
    await tg.app.delivery.deliver(closed.outbound)
    line = await tg.fake.text_to(STAFF_CHAT, "закрыл(а) обращение", thread=thread)
    assert line.text.startswith("☑️ anna")
    await tg.fake.next_call("closeForumTopic", message_thread_id=thread)
    assert (await tg.case(case_id)).status == "closed"
    assert len(tg.fake.calls_of("pinChatMessage")) == 1
