"""The Bots Long Poll: VK's `failed` answers, network drops and repeated events lose nothing and
repeat nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import App
from bot.vk.longpoll import update_id
from storage.models import Message
from tests.vk.conftest import VkChild, start_channel, stop_channel, until
from tests.vk.fake_vk import GROUP_ID, FakeVk


def refetched_after(fake: FakeVk, failure: str) -> bool:
    """Whether the poll after `failure` asked for the same ts and got the waiting event."""
    answers = fake.state.poll_answers
    at = next(i for i, (_, what) in enumerate(answers) if what == failure)
    return answers[at + 1] == (answers[at][0], "events:1")


async def child_texts(app: App) -> list[str]:
    """What the engine recorded from children, in order: each text exactly once if handled."""
    async with app.db.session() as s:
        rows = await s.execute(select(Message.text).where(Message.sender == "child"))
        return list(rows.scalars())


@pytest.mark.parametrize("failed", [1, 2])
async def test_failed_1_and_2_refetch_from_the_same_ts(
    failed: int, child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    await child.say("привет")
    servers = fake_vk.state.calls.count("groups.getLongPollServer")
    fake_vk.fail_poll(fake_vk.message_new(child.peer_id, "раз"), failed=failed)
    await child.settle()
    await child.say("два")
    assert await child_texts(vk_app) == ["привет", "раз", "два"]
    assert refetched_after(fake_vk, f"failed:{failed}")
    # failed 2: a new key, and the ts we had, so the waiting event still came.
    expected = servers + (1 if failed == 2 else 0)
    assert fake_vk.state.calls.count("groups.getLongPollServer") == expected


async def test_failed_3_takes_a_new_key_and_ts(
    child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    await child.say("привет")
    servers = fake_vk.state.calls.count("groups.getLongPollServer")
    fake_vk.fail_poll(failed=3)
    await until(lambda: fake_vk.state.calls.count("groups.getLongPollServer") == servers + 1)
    await child.say("раз")
    await child.say("два")
    assert await child_texts(vk_app) == ["привет", "раз", "два"]


@pytest.mark.parametrize("how", ["drop", "http"])
async def test_network_drop_refetches_the_same_events(
    how: str, child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    await child.say("привет")
    event = fake_vk.message_new(child.peer_id, "раз")
    if how == "drop":
        fake_vk.fail_poll(event, drop=True)
    else:
        fake_vk.fail_poll(event, http=502)
    await child.settle()
    await child.say("два")
    assert await child_texts(vk_app) == ["привет", "раз", "два"]
    assert refetched_after(fake_vk, "drop" if how == "drop" else "http:502")
    assert child.channel.thread is not None and child.channel.thread.failures == 0


async def test_a_repeated_event_is_handled_once(
    child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    first = await child.say("привет")
    event = fake_vk.message_new(child.peer_id, "мне пишут гадости")
    replies = await child.push(event)
    assert replies
    assert await child.push(event) == []  # VK sent it again: no second answer
    assert await child_texts(vk_app) == ["привет", "мне пишут гадости"]
    assert first


async def test_events_without_event_id_are_named_by_their_place(
    child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    await child.push(fake_vk.message_new(child.peer_id, "привет", event_id=None))
    await child.push(fake_vk.message_new(child.peer_id, "привет", event_id=None))
    assert await child_texts(vk_app) == ["привет", "привет"]
    assert update_id({}, GROUP_ID, "17", 2) == f"{GROUP_ID}:17:2"
    assert update_id({"event_id": "abc"}, GROUP_ID, "17", 2) == "abc"


async def test_the_long_poll_server_is_retried_when_vk_is_down(
    vk_app: App, fake_vk: FakeVk
) -> None:
    fake_vk.fail("groups.getLongPollServer", http=503)
    fake_vk.fail("groups.getLongPollServer", error=10)
    channel, task = await start_channel(vk_app, fake_vk)
    try:
        child = VkChild(fake_vk, channel)
        assert await child.say("привет")
        assert fake_vk.state.calls.count("groups.getLongPollServer") == 3
    finally:
        await stop_channel(channel, task, fake_vk)


async def test_stop_ends_the_thread(vk_app: App, fake_vk: FakeVk) -> None:
    channel, task = await start_channel(vk_app, fake_vk)
    thread = channel.thread
    assert thread is not None and thread.daemon and thread.is_alive()
    await stop_channel(channel, task, fake_vk)
    assert not thread.is_alive()
