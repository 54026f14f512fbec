"""Fixtures for the VK channel: a fake VK server, an app on a temporary database with the real
knowledge base and triage, the real vk-api client talking to the fake, and a `VkChild` that drives
the channel like a child in the VK app would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.settings import Settings
from bot.vk import RetryPolicy, VkChannel, build_vk
from dialogs.messages import DESK, Outbound
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage import crypto
from tests.conftest import database_url, fresh_database
from tests.vk.fake_vk import GROUP_ID, MODERN_CLIENT, TOKEN, FakeVk, Sent

# Fixed keys: `build_app` configures encryption at rest from settings, and must neither make a
# key file in var/ nor switch to other keys in the middle of a test.
TEST_KEYS = {"encryption_keys": crypto.new_key(), "id_hash_key": "vk-tests-id-hash-key-0123"}
# Short waits so the suite stays fast; the behaviour is the production one.
FAST = RetryPolicy(delays=(0.01, 0.02))


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait (polling) until `condition()` holds; fail the test after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the VK channel")
        await asyncio.sleep(0.01)


class DeskSpy:
    """A desk channel that only records the notices it gets."""

    def __init__(self) -> None:
        self.notices: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        assert message.to.channel == DESK
        self.notices.append(message)


@pytest.fixture
def fake_vk() -> Iterator[FakeVk]:
    fake = FakeVk().start()
    yield fake
    fake.close()


def vk_settings(tmp_path: Path, fake: FakeVk, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url(tmp_path),
        "default_locale": "ru",
        "evidence_dir": tmp_path / "evidence",
        "vk_token": TOKEN,
        "vk_group_id": GROUP_ID,
        "vk_api_url": fake.base_url,
        "telegram_bot_token": None,
        "keys_file": tmp_path / "keys.json",
        **TEST_KEYS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def vk_app(tmp_path: Path, fake_vk: FakeVk, kb: KnowledgeBase) -> AsyncIterator[App]:
    settings = vk_settings(tmp_path, fake_vk)
    db = await fresh_database(settings.database_url)
    app = build_app(settings, db=db, kb=kb)
    # A scripted child types a whole report in a second; a real one never floods like that.
    app.engine.limiter = RateLimiter(burst=1000, per_second=1000.0)
    yield app
    await app.close()


@pytest.fixture
def desk_spy(vk_app: App) -> DeskSpy:
    spy = DeskSpy()
    vk_app.delivery.register_desk(spy)
    return spy


async def start_channel(
    app: App, fake: FakeVk, **kwargs: Any
) -> tuple[VkChannel, asyncio.Task[None]]:
    kwargs.setdefault("policy", FAST)
    channel = build_vk(app, wait=2, backoff=(0.02, 0.05), join_timeout=3, **kwargs)
    task = asyncio.create_task(channel.run())
    await until(lambda: any(p for p in fake.state.polls))
    return channel, task


async def stop_channel(channel: VkChannel, task: asyncio.Task[None], fake: FakeVk) -> None:
    if channel.thread is not None:
        channel.thread.stop()
    fake.wake()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def vk(vk_app: App, fake_vk: FakeVk, desk_spy: DeskSpy) -> AsyncIterator[VkChannel]:
    channel, task = await start_channel(vk_app, fake_vk)
    yield channel
    await stop_channel(channel, task, fake_vk)


class VkChild:
    """One person writing to the community in the VK app."""

    def __init__(
        self,
        fake: FakeVk,
        channel: VkChannel,
        peer_id: int = 1001,
        client_info: dict[str, Any] | None = MODERN_CLIENT,
    ) -> None:
        self.fake = fake
        self.channel = channel
        self.peer_id = peer_id
        self.client_info = client_info
        self.seen = 0
        self.replies: list[Sent] = []

    async def settle(self) -> None:
        """Wait until the channel has handled every event pushed so far."""
        await until(lambda: self.channel.processed >= self.fake.pushed)

    async def push(self, event: dict[str, Any]) -> list[Sent]:
        self.fake.push(event)
        await self.settle()
        return self.take_replies()

    def take_replies(self) -> list[Sent]:
        sent = self.fake.sent_to(self.peer_id)
        self.replies = sent[self.seen :]
        self.seen = len(sent)
        return self.replies

    async def say(self, text: str, **kwargs: Any) -> list[Sent]:
        kwargs.setdefault("client_info", self.client_info)
        return await self.push(self.fake.message_new(self.peer_id, text, **kwargs))

    def button(self, label: str) -> dict[str, Any]:
        for message in reversed(self.replies):
            for action in message.buttons:
                if label.casefold() in str(action["label"]).casefold():
                    return action
        raise AssertionError(f"no button {label!r} in {self.labels}")

    async def press(self, label: str) -> list[Sent]:
        """Press a keyboard button: a callback button sends `message_event`, a text button
        sends its label as a message with the payload."""
        action = self.button(label)
        if action["type"] == "callback":
            return await self.push(
                self.fake.message_event(self.peer_id, json.loads(action["payload"]))
            )
        return await self.say(str(action["label"]), payload=action["payload"])

    @property
    def labels(self) -> list[str]:
        return [label for m in self.replies for label in m.labels]

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.replies)


async def report_insults_for_a_person(child: VkChild, screenshot: dict[str, Any]) -> None:
    """A child reports insults on VK step by step, sends `screenshot` before there is any case
    (kept as a reference for now), and asks for a person: their case is opened."""
    await child.say("привет")
    assert "Кто ты?" in child.text
    await child.press("ребёнок")
    await child.press("Со мной что-то случилось")
    await child.press("Оскорбляют")
    await child.press("ВКонтакте")
    await child.press("Да")  # it goes on
    await child.press("Да")  # safe now
    assert "скриншот" in child.text.lower()
    await child.say("", attachments=[screenshot])
    await child.press("Готово")
    await child.press("Нет")  # no adult knows
    await child.press("Поговорить с человеком")
    assert "обращение №" in child.text


@pytest.fixture
def child(fake_vk: FakeVk, vk: VkChannel) -> VkChild:
    return VkChild(fake_vk, vk)
