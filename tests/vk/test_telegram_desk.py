"""Across channels: a VK child's case appears in the Telegram staff group, and the counsellor who
takes it there talks with the child in VK, neither side seeing the other's account.

The Telegram side is the real aiogram channel polling the fake Bot API of `tests/telegram`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from knowledge_base import KnowledgeBase
from storage.db import Database
from tests.telegram.conftest import ANNA
from tests.telegram.conftest import start_channel as start_telegram
from tests.telegram.conftest import stop_channel as stop_telegram
from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram
from tests.vk.conftest import TEST_KEYS, VkChild, start_channel, stop_channel, until
from tests.vk.fake_vk import GROUP_ID, TOKEN, FakeVk


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    yield api
    await api.stop()


async def test_a_counsellor_in_the_telegram_staff_group_helps_a_vk_child(
    fake_tg: FakeTelegram, fake_vk: FakeVk, tmp_path: Path, db: Database, kb: KnowledgeBase
) -> None:
    tg, tg_task = await start_telegram(
        fake_tg,
        tmp_path,
        db,
        kb,
        vk_token=TOKEN,
        vk_group_id=GROUP_ID,
        vk_api_url=fake_vk.base_url,
        keys_file=tmp_path / "keys.json",
        **TEST_KEYS,
    )
    vk, vk_task = await start_channel(tg.app, fake_vk)
    try:
        child = VkChild(fake_vk, vk, peer_id=7007)
        await child.say("привет")
        await child.press("ребёнок")
        await child.press("Поговорить с человеком")
        case_id = int(child.text.split("№")[1].split()[0])

        # The case opens a topic in the Telegram staff group.
        topic = await fake_tg.next_call("createForumTopic", chat_id=STAFF_CHAT)
        assert topic["name"].startswith(f"#{case_id} ")
        thread = next(t for t, name in fake_tg.topics.items() if name == topic["name"])
        card = await fake_tg.next_call("sendMessage", chat_id=STAFF_CHAT, message_thread_id=thread)
        assert f"#{case_id}" in card.text
        assert str(child.peer_id) not in card.text  # the child's VK account is not shown

        # Anna takes it in Telegram: the child hears it in VK.
        await fake_tg.staff_presses(
            ANNA, card.button("Взять"), thread=thread, message_id=card.message_id
        )
        await until(lambda: "Консультант подключился" in fake_vk.sent_to(child.peer_id)[-1].text)

        # Anna writes in the topic; the child reads it in VK, with no name attached.
        await fake_tg.staff_says(ANNA, "Привет! Я здесь. Что случилось?", thread=thread)
        await until(
            lambda: fake_vk.sent_to(child.peer_id)[-1].text == "Привет! Я здесь. Что случилось?"
        )
        # The child answers in VK; it appears in the topic.
        await child.say("в беседе класса надо мной смеются")
        relayed = await fake_tg.text_to(STAFF_CHAT, "надо мной смеются", thread=thread)
        assert str(child.peer_id) not in relayed.text
    finally:
        await stop_channel(vk, vk_task, fake_vk)
        await stop_telegram(tg, tg_task)
