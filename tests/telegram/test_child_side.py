"""The children's side of the Telegram channel: buttons, content kinds and platform limits."""

from __future__ import annotations

from typing import Any

import pytest

from dialogs.messages import Address, Button, Outbound
from storage.repositories import Repos

from .conftest import CHILD, Harness
from .fake_api import STAFF_CHAT


async def test_commands_are_registered_in_both_locales(tg: Harness) -> None:
    menus = {c.get("language_code"): c for c in tg.fake.calls_of("setMyCommands")
             if "scope" not in c.params}
    assert set(menus) >= {"ru", "en"}
    ru = {c["command"]: c["description"] for c in menus["ru"]["commands"]}
    en = {c["command"]: c["description"] for c in menus["en"]["commands"]}
    assert set(ru) == set(en) == {"start", "menu", "help", "lang", "forget"}
    assert ru["forget"] == "Стереть всё обо мне" and en["lang"] == "Language / Язык"
    staff = [c for c in tg.fake.calls_of("setMyCommands") if "scope" in c.params]
    assert staff and all(c["scope"] == {"type": "chat", "chat_id": STAFF_CHAT} for c in staff)


async def test_the_language_comes_from_telegram(tg: Harness) -> None:
    await tg.fake.child_says(CHILD, "hello", lang="en")
    await tg.fake.text_to(CHILD, "I'm the help-line bot")
    await tg.fake.text_to(CHILD, "Who are you?")


async def test_a_forged_button_is_answered_and_changes_nothing(tg: Harness) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    for forged in ("cr|where|vk", "st|menu|nonsense", "garbage"):
        query = await tg.fake.child_presses(CHILD, forged)
        await tg.fake.answer_to(query)
        await tg.fake.text_to(CHILD, "Эта кнопка уже не действует")
    user = await tg.child_user()
    assert user is not None
    async with tg.app.db.session() as session:
        conv = await Repos(session).conversations.for_user(user.id)
        assert conv is not None and (conv.flow, conv.state) == ("start", "menu")


@pytest.mark.parametrize("content", [
    {"sticker": {"file_id": "S1", "file_unique_id": "s1", "type": "regular", "width": 512,
                 "height": 512, "is_animated": False, "is_video": False}},
    {"voice": {"file_id": "V1", "file_unique_id": "v1", "duration": 3}},
    {"location": {"latitude": 55.75, "longitude": 37.61}},
], ids=["sticker", "voice", "location"])
async def test_content_the_bot_cannot_read_gets_a_kind_answer(
    tg: Harness, content: dict[str, Any]
) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_sends(CHILD, content)
    await tg.fake.text_to(CHILD, "Я пока понимаю только текст, фото и документы")


async def test_a_flood_limit_answer_is_waited_out_and_retried(tg: Harness) -> None:
    tg.fake.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1,
                 match=lambda p: p.get("chat_id") == str(CHILD))
    await tg.fake.child_says(CHILD, "привет")
    notice = await tg.fake.text_to(CHILD, "Привет! Я бот линии помощи")
    refused = [c for c in tg.fake.calls_of("sendMessage", chat_id=CHILD) if c.status == 429]
    assert len(refused) == 1 and refused[0].text == notice.text
    assert notice.at - refused[0].at >= 0.95
    await tg.fake.text_to(CHILD, "Кто ты")


async def test_long_texts_are_split_on_paragraphs_with_buttons_on_the_last(tg: Harness) -> None:
    paragraphs = [f"Абзац {i}. " + "текст " * 150 for i in range(10)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    assert len(text) > 8192
    await tg.channels.sender.send(Outbound(
        to=Address("telegram", str(CHILD)), text=text, buttons=((Button("В меню", "g|menu"),),)))
    parts = tg.fake.sent_to(CHILD)
    assert len(parts) == 3
    assert all(len(p.text) <= 4096 and p.text.startswith("Абзац") for p in parts)
    assert "\n\n".join(p.text for p in parts) == text
    assert [bool(p.buttons) for p in parts] == [False, False, True]


async def test_a_payload_over_64_bytes_is_sent_as_numbered_text(tg: Harness) -> None:
    await tg.channels.sender.send(Outbound(
        to=Address("telegram", str(CHILD)), text="Выбери:",
        buttons=((Button("Первое", "cr|what|" + "x" * 70), Button("Второе", "cr|what|b")),)))
    sent = tg.fake.sent_to(CHILD)[-1]
    assert not sent.buttons
    assert sent.text == "Выбери:\n  1. Первое\n  2. Второе"


async def test_a_photo_caption_is_read_like_text(tg: Harness) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_sends_photo(CHILD, b"jpeg", caption="я хочу умереть")
    told = await tg.fake.text_to(CHILD, "Спасибо, что рассказываешь")
    assert "8-800-2000-122" in told.text and "Я передал это консультанту" in told.text
    topic = await tg.fake.next_call("createForumTopic")
    assert "· CRITICAL" in topic["name"]


async def test_lang_switches_the_language_for_good(tg: Harness) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_says(CHILD, "/lang")
    await tg.press(CHILD, "Выбери язык", "English")
    await tg.fake.text_to(CHILD, "OK, let's talk in English.")
    await tg.fake.child_says(CHILD, "/help")  # Telegram still says "ru": the choice stays
    await tg.fake.text_to(CHILD, "I'm the help-line bot for children and parents")


async def test_every_button_press_is_answered_even_one_no_router_takes(tg: Harness) -> None:
    update = tg.fake.press(CHILD, "g|menu")
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "inline-1"
    await tg.fake.push(update)
    await tg.fake.answer_to(update["callback_query"]["id"])
    assert not tg.fake.sent_to(CHILD)


async def test_an_edited_message_that_adds_danger_reaches_a_counsellor(tg: Harness) -> None:
    await tg.start_as_child()
    await tg.fake.text_to(CHILD, "Чем я могу помочь")
    await tg.fake.child_says(CHILD, "у меня проблема")
    await tg.fake.child_edits(CHILD, "у меня проблема: отчим бьёт меня каждый вечер")
    told = await tg.fake.text_to(CHILD, "8-800-2000-122")
    assert "124" in told.text and "112" in told.text
    assert "Я передал это консультанту" in told.text
    async with tg.app.db.session() as session:
        [case] = await Repos(session).cases.queue()
    assert case.risk == "critical" and case.category == "abuse"
