"""Evidence the same from every channel: a VK child's screenshot appears in the case's Telegram
topic like a Telegram child's (the kept copy uploaded, since a VK file means nothing to
Telegram), at the case's opening and when sent later; a file that was not kept is counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Attachment
from tests.telegram.conftest import make_settings
from tests.telegram.conftest import start_channel as start_telegram
from tests.telegram.conftest import stop_channel as stop_telegram
from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram
from tests.vk.conftest import VkChild, report_insults_for_a_person
from tests.vk.conftest import start_channel as start_vk
from tests.vk.conftest import stop_channel as stop_vk
from tests.vk.fake_vk import GROUP_ID, FakeVk
from tests.vk.fake_vk import TOKEN as VK_TOKEN

SCREENSHOT = b"\xff\xd8\xff\xe0 the insults, as a VK screenshot"
LATER = b"\xff\xd8\xff\xe0 one more, sent in the chat"


async def test_a_vk_childs_screenshots_are_shown_in_the_staff_topic(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    tg_fake, vk_fake = FakeTelegram(), FakeVk().start()
    await tg_fake.start()
    overrides: dict[str, Any] = {"vk_token": VK_TOKEN, "vk_group_id": GROUP_ID,
                                 "vk_api_url": vk_fake.base_url}
    url = make_settings(tg_fake, tmp_path, **overrides).database_url
    await asyncio.to_thread(upgrade, url)
    tg, tg_task = await start_telegram(tg_fake, tmp_path, Database(url), kb, **overrides)
    vk, vk_task = await start_vk(tg.app, vk_fake)
    child = VkChild(vk_fake, vk, peer_id=4242)
    try:
        # The child: the case opened, with its number.
        await report_insults_for_a_person(child, vk_fake.photo("insults.jpg", SCREENSHOT))

        # The counsellors: the topic shows the screenshot itself, uploaded from the kept copy.
        topic = await tg_fake.next_call("createForumTopic")
        thread = next(t for t, n in tg_fake.topics.items() if n == topic["name"])
        first = await tg_fake.next_call("sendPhoto", chat_id=STAFF_CHAT,
                                        message_thread_id=thread)
        assert tg_fake.uploads[0][2] == SCREENSHOT
        assert "прислал(а) файл" in first.text
        assert not [c for c in tg_fake.sent_to(STAFF_CHAT) if "файлов:" in c.text]

        # Sent later, in the chat: shown too.
        await child.say("", attachments=[vk_fake.photo("more.jpg", LATER)])
        await tg_fake.next_call("sendPhoto", chat_id=STAFF_CHAT, message_thread_id=thread)
        assert [u[2] for u in tg_fake.uploads] == [SCREENSHOT, LATER]

        # Stored: both kept encrypted with the case; nothing of VK's addresses in the topic.
        async with tg.app.db.session() as s:
            kept = (await s.execute(select(Attachment))).scalars().all()
        assert len(kept) == 2 and all(a.stored_path and a.case_id for a in kept)
        assert not [c for c in tg_fake.calls if "4242" in str(c.params.get("text", ""))]
    finally:
        await stop_vk(vk, vk_task, vk_fake)
        await stop_telegram(tg, tg_task)
        await tg.app.close()
        vk_fake.close()
        await tg_fake.stop()
