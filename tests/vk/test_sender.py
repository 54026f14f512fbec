"""Replies to VK: retries that never show a message twice, unreachable users, long texts,
keyboards for every kind of client, and callback buttons."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app import App, build_app
from bot.vk.channel import VkChannel
from dialogs.messages import Address, Button, DeskEvent, Outbound
from knowledge_base import KnowledgeBase
from storage.models import OutboxMessage
from storage.repositories import Repos
from tests.vk.conftest import DeskSpy, VkChild, until
from tests.vk.fake_vk import KEYBOARD_ONLY_CLIENT, NO_KEYBOARD_CLIENT, FakeVk


def random_ids_of_calls(fake: FakeVk) -> list[str]:
    return [c["random_id"] for c in fake.state.send_calls]


def assert_shown_once(fake: FakeVk) -> None:
    rids = [m.random_id for m in fake.state.sent]
    assert len(rids) == len(set(rids)), "a message was shown twice"


async def vk_outbox(app: App) -> list[OutboxMessage]:
    async with app.db.session() as s:
        stmt = select(OutboxMessage).where(OutboxMessage.channel == "vk")
        return list((await s.execute(stmt.order_by(OutboxMessage.id))).scalars())


async def worker_pass(app: App) -> int:
    """What the outbox worker of `helpline run` does on its next pass, without the wait."""
    async with app.db.session() as s:
        await s.execute(update(OutboxMessage).values(next_attempt_at=None))
    return await app.delivery.flush_due()


@pytest.mark.parametrize(
    "failure",
    [
        {"http": 502},
        {"error": 6},  # too many requests per second
        {"error": 9},  # flood control
        {"http": 500, "deliver_first": True},  # VK showed it, but the answer was lost
    ],
    ids=["5xx", "error-6", "error-9", "lost-answer"],
)
async def test_a_failed_send_is_retried_with_the_same_random_id(
    failure: dict[str, Any], child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    fake_vk.fail("messages.send", **failure)
    replies = await child.say("привет")
    calls = random_ids_of_calls(fake_vk)
    assert calls[0] == calls[1], "the retry must carry the same random_id"
    assert [r.text.split("\n")[0] for r in replies] == [
        "Привет! Я бот линии помощи. Пара слов, прежде чем начнём:",
        "Кто ты?",
    ]
    assert_shown_once(fake_vk)
    assert all(row.delivered_at is not None for row in await vk_outbox(vk_app))


async def test_a_send_that_keeps_failing_goes_back_to_the_outbox(
    child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    # One send tries three times (FAST has two retries): then the outbox worker takes over.
    fake_vk.fail("messages.send", http=503, times=3)
    await child.say("привет")
    assert child.replies == [], "the question waits for the notice: order per chat holds"
    notice, question = await vk_outbox(vk_app)
    assert notice.delivered_at is None and notice.failed_at is None
    assert question.delivered_at is None
    assert (notice.attempts, notice.last_error) == (1, "http_503")
    assert await worker_pass(vk_app) == 2
    child.take_replies()
    assert child.text.startswith("Привет! Я бот линии помощи.")
    assert child.text.endswith("Кто ты?")
    assert_shown_once(fake_vk)
    assert len(set(random_ids_of_calls(fake_vk))) == 2  # every try of one message: one id
    assert all(row.delivered_at is not None for row in await vk_outbox(vk_app))


async def test_a_long_text_retried_after_a_part_failed_shows_each_part_once(
    vk: VkChannel, fake_vk: FakeVk, vk_app: App
) -> None:
    text = "\n\n".join(f"Абзац {i}: " + "слово " * 120 for i in range(12))
    fake_vk.fail("messages.send", http=502, times=3, after=1)  # part 1 goes, part 2 does not
    await vk_app.delivery.deliver([Outbound(Address("vk", "2002"), text)])
    assert len(fake_vk.sent_to(2002)) == 1
    assert await worker_pass(vk_app) == 1
    parts = fake_vk.sent_to(2002)
    assert len(parts) == 3, "part 1 was sent again with its random_id: VK did not show it twice"
    assert all(len(p.text) <= 4096 for p in parts)
    assert "\n\n".join(p.text for p in parts) == text
    assert all(p.text.startswith("Абзац") for p in parts)
    assert len({p.random_id for p in parts}) == 3
    assert random_ids_of_calls(fake_vk).count(str(parts[0].random_id)) == 2


async def reach_counsellor(child: VkChild, app: App) -> tuple[int, Any]:
    await child.say("привет")
    await child.press("ребёнок")
    await child.press("Поговорить с человеком")
    [case] = await app.desk.queue()
    counsellor = await app.desk.add_counsellor("anna", "console", "anna")
    taken = await app.desk.take(counsellor, case.id)
    await app.delivery.deliver(taken.outbound)
    assert "Консультант подключился" in child.fake.sent_to(child.peer_id)[-1].text
    return case.id, counsellor


async def test_901_marks_the_child_unreachable_and_tells_the_desk(
    child: VkChild, fake_vk: FakeVk, vk_app: App, desk_spy: DeskSpy
) -> None:
    case_id, counsellor = await reach_counsellor(child, vk_app)
    fake_vk.forbid(child.peer_id)
    result = await vk_app.desk.reply(counsellor, case_id, "Я здесь. Расскажи, что случилось?")
    await vk_app.delivery.deliver(result.outbound)
    assert fake_vk.state.send_calls[-1]["message"] == "Я здесь. Расскажи, что случилось?"
    assert fake_vk.sent_to(child.peer_id)[-1].text != "Я здесь. Расскажи, что случилось?"
    async with vk_app.db.session() as s:
        user = await Repos(s).users.find("vk", str(child.peer_id))
        assert user is not None and user.unreachable
    notice = desk_spy.notices[-1]
    assert notice.desk_event is DeskEvent.UNREACHABLE and notice.case_id == case_id
    reply_row = (await vk_outbox(vk_app))[-1]
    assert reply_row.failed_at is not None and reply_row.last_error == "vk_901"
    # The child writes again: reachable again (VK lets the community answer now).
    fake_vk.allow(child.peer_id)
    await child.say("я тут")
    async with vk_app.db.session() as s:
        user = await Repos(s).users.find("vk", str(child.peer_id))
        assert user is not None and not user.unreachable


async def test_a_callback_button_is_answered(child: VkChild, fake_vk: FakeVk) -> None:
    await child.say("привет")
    button = child.button("ребёнок")
    assert button["type"] == "callback"
    assert json.loads(button["payload"]) == {"p": "st|role|child"}
    await child.press("ребёнок")
    [answer] = fake_vk.state.answers
    assert answer["user_id"] == answer["peer_id"] == str(child.peer_id)
    assert answer["event_id"].startswith("btn")
    assert "Со мной что-то случилось в сети" in child.labels


async def test_a_client_without_keyboards_gets_numbered_text(
    child: VkChild, fake_vk: FakeVk, vk_app: App
) -> None:
    child.client_info = NO_KEYBOARD_CLIENT
    await child.say("привет")
    question = child.replies[-1]
    assert question.keyboard is None
    assert question.text == (
        "Кто ты?\n  1. Я ребёнок или подросток\n  2. Я родитель или взрослый"
        "\n  3. Поговорить с человеком"
    )
    await child.say("1")  # the option's number
    assert child.replies[-1].keyboard is None
    assert "3. Поговорить с человеком" in child.replies[-1].text
    await child.say("поговорить с человеком")  # or its label
    assert "обращение №" in child.text
    assert len(await vk_app.desk.queue()) == 1


async def test_an_old_client_gets_a_one_time_keyboard_of_text_buttons(
    child: VkChild, fake_vk: FakeVk
) -> None:
    child.client_info = KEYBOARD_ONLY_CLIENT
    await child.say("привет")
    keyboard = child.replies[-1].keyboard
    assert keyboard is not None and keyboard["one_time"] and not keyboard["inline"]
    assert {b["type"] for b in child.replies[-1].buttons} == {"text"}
    await child.press("ребёнок")  # sends the label as text, with the payload
    assert "Со мной что-то случилось в сети" in child.labels
    assert fake_vk.state.answers == []


async def test_a_refused_keyboard_is_sent_as_numbered_text(
    child: VkChild, fake_vk: FakeVk
) -> None:
    fake_vk.fail("messages.send", error=911, after=1)  # the notice goes, the keyboard does not
    await child.say("привет")
    question = child.replies[-1]
    assert question.keyboard is None and "1. Я ребёнок или подросток" in question.text


async def test_a_message_to_a_peer_never_seen_is_plain_text(
    vk: VkChannel, fake_vk: FakeVk, vk_app: App
) -> None:
    """After a restart the bot knows no client's keyboard: the options go as text."""
    rows = ((Button("Да", "cs|rating|5"),),)
    await vk_app.delivery.deliver([Outbound(Address("vk", "3003"), "Оцени помощь", rows)])
    [message] = fake_vk.sent_to(3003)
    assert message.keyboard is None and message.text == "Оцени помощь\n  1. Да"


async def test_a_desk_in_another_process_queues_and_the_channel_sends(
    child: VkChild, fake_vk: FakeVk, vk_app: App, kb: KnowledgeBase
) -> None:
    """`helpline desk` in a terminal does not run the VK channel: its replies to a VK child wait
    in the outbox, and the process running the channel sends them on its worker's next pass."""
    case_id, _ = await reach_counsellor(child, vk_app)
    child.take_replies()
    desk_process = build_app(vk_app.settings, kb=kb)  # its own engine and delivery, same database
    try:
        anna = await desk_process.desk.identify("console", "anna")
        assert anna is not None
        reply = await desk_process.desk.reply(anna, case_id, "Я рядом, пиши.")
        await desk_process.delivery.deliver(reply.outbound)
        assert child.take_replies() == []
        assert await vk_app.delivery.flush_due() == 1
        await until(lambda: bool(child.take_replies()))
        assert child.text == "Я рядом, пиши."
    finally:
        await desk_process.close()
